import NeuronISA
import NeuronNEFF

/// Elementwise ops: one UNARY or BINARY each (numpy broadcasting through
/// stride-0 views), folded in double when their inputs are known.
extension ONNXOps {
    static let elementwise: [ONNXOp] = [
        unary("Relu", .relu, takes: floats), unary("Sigmoid", .sigmoid), unary("Tanh", .tanh), unary("Exp", .exp, takes: floats),
        unary("Log", .log, takes: floats), unary("Abs", .abs, takes: floats + signedIntegers),
        unary("Reciprocal", .reciprocal, takes: floats),
        unary("Erf", .erf), unary("Sqrt", .sqrt, takes: floats, fold: { $0.squareRoot() }),
        unary("Neg", .neg, takes: floats + signedIntegers, fold: { -$0 }),
        unary("Floor", .floor, takes: floats), unary("Ceil", .ceil, takes: floats), unary("Round", .round, takes: floats),
        unary("Sin", .sin), unary("Cos", .cos), unary("Tan", .tan), unary("Asin", .asin),
        unary("Acos", .acos), unary("Atan", .atan), unary("Sinh", .sinh), unary("Cosh", .cosh),
        unary("Asinh", .asinh), unary("Acosh", .acosh), unary("Atanh", .atanh),
        ONNXOp("LeakyRelu", takes: [.float32]) { l in
            _ = try l.floatTensor(0)   // the input's error before the attribute's
            try l.unary(.leakyRelu, alpha: try l.float("alpha", 0.01))
        },
        ONNXOp("Gelu", takes: [.float32]) { l in
            _ = try l.floatTensor(0)
            switch try l.string("approximate", "none") {
            case "none": try l.unary(.geluErf)
            case "tanh": try l.unary(.geluTanh)
            case let other: throw l.unsupported("approximate=\(other); none and tanh are supported")
            }
        },
        // max(0, min(1, alpha x + beta)): a multiply, an add and two clamps.
        ONNXOp("HardSigmoid", takes: [.float32]) { l in
            let x = try l.floatTensor(0)
            l.set(0, .tensor(try l.hardSigmoid(x, alpha: try l.float("alpha", 0.2), beta: try l.float("beta", 0.5))))
        },
        // x hardsigmoid(x) with alpha 1/6 and beta 1/2.
        ONNXOp("HardSwish", takes: [.float32]) { l in
            let x = try l.floatTensor(0)
            l.set(0, .tensor(try l.binary(.mul, x, try l.hardSigmoid(x, alpha: 1 / 6, beta: 0.5))))
        },
        // Activations as short programs of UNARY and BINARY: each branch of
        // a piecewise definition computed on the side it holds for (min or
        // max with 0), so that exactly one branch is nonzero.
        activation("Elu") { l, x in
            // max(x, 0) + alpha (exp(min(x, 0)) - 1)
            try l.elu(x, alpha: try l.float("alpha", 1))
        },
        activation("Selu") { l, x in
            // gamma (max(x, 0) + alpha (exp(min(x, 0)) - 1))
            let alpha = try l.float("alpha", 1.67326319217681884765625)
            let gamma = try l.float("gamma", 1.05070102214813232421875)
            return try l.binary(.mul, try l.elu(x, alpha: alpha), try l.scalar(gamma, "gamma"))
        },
        activation("Celu") { l, x in
            // max(x, 0) + min(0, alpha (exp(x / alpha) - 1))
            let alpha = try l.float("alpha", 1)
            guard alpha != 0, alpha.isFinite else { throw l.invalid("alpha=\(alpha) must be finite and nonzero") }
            let a = try l.scalar(alpha, "alpha")
            let expm1 = try l.binary(.sub, try l.apply(.exp, try l.binary(.div, x, a)), try l.scalar(1, "one"))
            let negative = try l.binary(.min, try l.binary(.mul, expm1, a), try l.scalar(0, "zero"))
            return try l.binary(.add, try l.apply(.relu, x), negative)
        },
        activation("Softplus") { l, x in try l.softplus(x) },
        // a sigmoid(alpha a) b: the Swish gate of a, times b.
        ONNXOp("SwiGLU", takes: [.float32]) { l in
            let a = try l.floatTensor(0), b = try l.floatTensor(1)
            let alpha = try l.float("alpha", 1)
            let gate = alpha == 1 ? try l.apply(.silu, a)
                : try l.binary(.mul, a, try l.apply(.sigmoid, try l.binary(.mul, a, try l.scalar(alpha, "alpha"))))
            l.set(0, .tensor(try l.binary(.mul, gate, b)))
        },
        activation("Softsign") { l, x in
            // x / (1 + |x|)
            try l.binary(.div, x, try l.binary(.add, try l.apply(.abs, x), try l.scalar(1, "one")))
        },
        activation("Mish") { l, x in try l.binary(.mul, x, try l.apply(.tanh, try l.softplus(x))) },
        activation("Swish") { l, x in
            // x sigmoid(alpha x)
            let alpha = try l.float("alpha", 1)
            if alpha == 1 { return try l.apply(.silu, x) }   // one pass, SIGMOID then MUL's bits
            return try l.binary(.mul, x, try l.apply(.sigmoid, try l.binary(.mul, x, try l.scalar(alpha, "alpha"))))
        },
        activation("Sign") { l, x in
            // x scaled past 1 in magnitude (the smallest subnormal, 2^-149,
            // times 2^200 is 2^51), then clamped to [-1, 1]: 0 stays 0, NaN NaN.
            let big = try l.scalar(0x1p100, "2^100")
            let scaled = try l.binary(.mul, try l.binary(.mul, x, big), big)
            return try l.binary(.max, try l.binary(.min, scaled, try l.scalar(1, "one")), try l.scalar(-1, "minus one"))
        },
        // max(x, 0) + slope min(x, 0), the slope broadcast to x.
        ONNXOp("PRelu", takes: [.float32]) { l in
            let x = try l.floatTensor(0), slope = try l.floatTensor(1)
            guard broadcastShape(x.dims, slope.dims) == x.dims else {
                throw l.shapeError("the slope \(slope.dims) does not broadcast to the input \(x.dims)")
            }
            let negative = try l.binary(.mul, try l.binary(.min, x, try l.scalar(0, "zero")), slope)
            l.set(0, .tensor(try l.binary(.add, try l.apply(.relu, x), negative)))
        },
        binary("Add", .add), binary("Sub", .sub), binary("Mul", .mul), binary("Div", .div),
        // x^2, as exporters write the variance of layer norms: one
        // multiplication, the correctly rounded square (pow's own bits
        // may differ from it in the last place).
        // The exponent may be of any numeric type (converted to float32).
        ONNXOp("Pow", takes: [.float32], typedInputs: 1) { l in
            let x = try l.floatTensor(0)
            // Small whole exponents (x^3 of tanh GELU) as products: x·x·x
            // rounds twice where POW rounds once, a few ulp from it.
            if let exponent = l.constant(1), exponent.doubles() == [2] {
                l.set(0, .tensor(try l.binary(.mul, x, x)))
            } else if let exponent = l.constant(1), exponent.doubles() == [3] {
                l.set(0, .tensor(try l.binary(.mul, try l.binary(.mul, x, x), x)))
            } else {
                l.set(0, .tensor(try l.binary(.pow, x, l.converted(try l.typedTensor(1, as: .float32), to: .float32))))
            }
        },
        variadic("Sum", .add), variadic("Max", .max), variadic("Min", .min),
        // The sum, left to right, divided by the count.
        ONNXOp("Mean", takes: [.float32]) { l in
            var sum = try l.floatTensor(0)
            for index in 1..<max(1, l.current.inputs.count) { sum = try l.binary(.add, sum, try l.floatTensor(index)) }
            l.set(0, .tensor(try l.binary(.div, sum, try l.scalar(Float(l.current.inputs.count), "count"))))
        },
        ONNXOp("Clip", takes: numeric) { l in
            var result = try l.typedTensor(0)
            if l.hasInput(1) { result = try l.binary(.max, result, try l.typedTensor(1, as: result.type)) }
            if l.hasInput(2) { result = try l.binary(.min, result, try l.typedTensor(2, as: result.type)) }
            if !l.hasInput(1) && !l.hasInput(2) { result = l.copied(result) }
            l.set(0, .tensor(result))
        },
    ]

    /// An op that is one UNARY of its float32 input (`fold`: its value
    /// per element at compile time, in double).
    static func unary(_ name: String, _ op: NeuronUnaryOp, takes: [NeuronDType] = [.float32],
                      fold: (@Sendable (Double) -> Double)? = nil) -> ONNXOp {
        let lower: ONNXOp.Lower = { l in try l.unary(op) }
        guard let fold else { return ONNXOp(name, takes: takes, lower: lower) }
        return ONNXOp(name, takes: takes, fold: whenKnown { _, first, _ in
            .make(first.type, first.shape, first.doubles().map(fold))
        }, lower: lower)
    }

    /// An op whose output is a program of its one float32 input.
    static func activation(_ name: String, _ program: @escaping @Sendable (Lowering, View) throws -> View) -> ONNXOp {
        ONNXOp(name, takes: [.float32]) { l in l.set(0, .tensor(try program(l, try l.floatTensor(0)))) }
    }

    /// float32, float64 (ISA 1.5: no POW) and the integer types: what
    /// BINARY's arithmetic takes.
    static let numeric: [NeuronDType] = [.float32, .float64] + integers
    /// What UNARY's float64 takes (ISA 1.5).
    static let floats: [NeuronDType] = [.float32, .float64]
    static let integers: [NeuronDType] = [.int8, .uint8, .int16, .uint16, .int32, .uint32, .int64, .uint64]
    static let signedIntegers: [NeuronDType] = [.int8, .int16, .int32, .int64]

    /// An op that is one BINARY of two inputs of one type, broadcast
    /// (integers wrap; integer division truncates, by 0 gives 0).
    static func binary(_ name: String, _ op: NeuronBinaryOp) -> ONNXOp {
        ONNXOp(name, takes: numeric, fold: foldElementwise(name)) { l in
            let (a, b) = try l.sameTyped(0, 1)
            l.set(0, .tensor(try l.binary(op, a, b)))
        }
    }

    /// An op of one or more inputs of one type, combined left to right by one BINARY each.
    static func variadic(_ name: String, _ op: NeuronBinaryOp) -> ONNXOp {
        ONNXOp(name, takes: numeric, fold: foldElementwise(name)) { l in
            var result = try l.typedTensor(0)
            for index in 1..<max(1, l.current.inputs.count) {
                result = try l.binary(op, result, try l.typedTensor(index, as: result.type))
            }
            if l.current.inputs.count == 1 { result = l.copied(result) }
            l.set(0, .tensor(result))
        }
    }

    /// The folds whose result is bool.
    static let booleanResults: Set<String> = ["Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "And", "Or", "Xor"]

    /// Add, Sub, Mul, Div, Max, Min, Sum, the comparisons and the logic
    /// ops of known inputs, broadcast, left to right, in double (integer
    /// division truncates).
    static func foldElementwise(_ name: String) -> ONNXOp.Fold {
        whenKnown { l, first, inputs in
            var acc = first
            for next in inputs.dropFirst() {
                guard let next else { continue }
                guard let shape = broadcastShape(acc.shape, next.shape) else {
                    throw l.shapeError("shapes \(acc.shape) and \(next.shape) do not broadcast")
                }
                _ = try l.foldedCount(shape, what: name)
                let xs = acc.doubles(), ys = next.doubles()
                let integral = !acc.type.isFloatingPoint
                var out: [Double] = []
                forEachIndex(shape) { index in
                    let x = xs[broadcastIndex(index, into: acc.shape)], y = ys[broadcastIndex(index, into: next.shape)]
                    switch name {
                    case "Add", "Sum": out.append(x + y)
                    case "Sub": out.append(x - y)
                    case "Mul": out.append(x * y)
                    case "Div": out.append(integral ? (y == 0 ? 0 : (x / y).rounded(.towardZero)) : x / y)
                    case "Equal": out.append(x == y ? 1 : 0)
                    case "Less": out.append(x < y ? 1 : 0)
                    case "LessOrEqual": out.append(x <= y ? 1 : 0)
                    case "Greater": out.append(x > y ? 1 : 0)
                    case "GreaterOrEqual": out.append(x >= y ? 1 : 0)
                    case "And": out.append(x != 0 && y != 0 ? 1 : 0)
                    case "Or": out.append(x != 0 || y != 0 ? 1 : 0)
                    case "Xor": out.append((x != 0) != (y != 0) ? 1 : 0)
                    case "Max": out.append(x.isNaN || y.isNaN ? .nan : Swift.max(x, y))
                    default: out.append(x.isNaN || y.isNaN ? .nan : Swift.min(x, y))
                    }
                }
                acc = .make(Self.booleanResults.contains(name) ? .bool : acc.type, shape, out)
            }
            return acc
        }
    }
}

extension Lowering {
    /// The current node's output 0 as one UNARY of its float32 input 0.
    func unary(_ op: NeuronUnaryOp, alpha: Float = 0) throws(NeuronCompilerError) {
        set(0, .tensor(try apply(op, try typedTensor(0), alpha: alpha)))
    }

    /// One UNARY of `x`, into a new tensor of its type.
    func apply(_ op: NeuronUnaryOp, _ x: View, alpha: Float = 0) throws(NeuronCompilerError) -> View {
        let out = try temp(x.type, x.dims, layoutOf: [x])
        emit(.unary(op, alpha: alpha), [out, x])
        return out
    }

    /// max(0, min(1, alpha x + beta)), elementwise.
    func hardSigmoid(_ x: View, alpha: Float, beta: Float) throws(NeuronCompilerError) -> View {
        let scaled = try binary(.mul, x, try scalar(alpha, "alpha"))
        let shifted = try binary(.add, scaled, try scalar(beta, "beta"))
        return try binary(.max, try binary(.min, shifted, try scalar(1, "one")), try scalar(0, "zero"))
    }

    /// max(x, 0) + alpha (exp(min(x, 0)) - 1): ELU, and SELU before its gamma.
    func elu(_ x: View, alpha: Float) throws(NeuronCompilerError) -> View {
        let negative = try apply(.exp, try binary(.min, x, try scalar(0, "zero")))
        let expm1 = try binary(.sub, negative, try scalar(1, "one"))
        return try binary(.add, try apply(.relu, x), try binary(.mul, expm1, try scalar(alpha, "alpha")))
    }

    /// log(1 + exp(x)) as max(x, 0) + log(1 + exp(-|x|)), which neither
    /// overflows nor loses large x.
    func softplus(_ x: View) throws(NeuronCompilerError) -> View {
        let tail = try apply(.exp, try apply(.neg, try apply(.abs, x)))
        return try binary(.add, try apply(.relu, x), try apply(.log, try binary(.add, tail, try scalar(1, "one"))))
    }

    /// A float32 scalar constant of the current node, in the weight blob.
    func scalar(_ value: Float, _ what: String) throws(NeuronCompilerError) -> View {
        try weightView(.make(.float32, [], [Double(value)]), name: "\(current.name)#\(what)")
    }

    /// out = a op b with numpy broadcasting, of a's type.
    func binary(_ op: NeuronBinaryOp, _ a: View, _ b: View) throws(NeuronCompilerError) -> View {
        let (x, y, shape) = try broadcast(a, b)
        guard x.type == y.type else {
            throw invalid("operands of \(x.type.name) and \(y.type.name); \(current.op) takes one type")
        }
        let out = try temp(x.type, shape, layoutOf: [x, y])
        emit(.binary(op), [out, x, y])
        return out
    }

    /// a and b broadcast to their common shape (numpy's rules).
    func broadcast(_ a: View, _ b: View) throws(NeuronCompilerError) -> (View, View, [Int]) {
        guard let shape = broadcastShape(a.dims, b.dims), shape.count <= 6,
              let x = a.broadcast(to: shape), let y = b.broadcast(to: shape) else {
            throw shapeError("shapes \(a.dims) and \(b.dims) do not broadcast")
        }
        return (x, y, shape)
    }

}
