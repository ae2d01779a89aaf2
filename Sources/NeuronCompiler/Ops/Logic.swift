import NeuronISA

/// Comparisons, logic, bits and selection (ISA 1.4): COMPARE into bool,
/// BINARY and UNARY on bool and integers, SELECT; each folded when its
/// inputs are known.
extension ONNXOps {
    static let logic: [ONNXOp] = [
        compare("Equal", .eq, takes: numeric + [.bool]), compare("Less", .lt), compare("LessOrEqual", .le),
        compare("Greater", .gt), compare("GreaterOrEqual", .ge),
        ONNXOp("Not", takes: [.bool]) { l in try l.unary(.not) },
        logical("And", .and), logical("Or", .or), logical("Xor", .xor),
        ONNXOp("BitwiseNot", takes: integers) { l in try l.unary(.not) },
        bitwise("BitwiseAnd", .and), bitwise("BitwiseOr", .or), bitwise("BitwiseXor", .xor),
        // Integers shifted by the second input, LEFT or RIGHT (arithmetic
        // for signed types); a shift of the width or more, or a negative
        // one, gives 0 (RIGHT of a negative signed value: -1).
        ONNXOp("BitShift", takes: integers) { l in
            let op: NeuronBinaryOp
            switch try l.string("direction", "") {
            case "LEFT": op = .shl
            case "RIGHT": op = .shr
            case let other: throw l.invalid("direction=\"\(other)\"; ONNX defines LEFT and RIGHT")
            }
            let (a, b) = try l.sameTyped(0, 1)
            l.set(0, .tensor(try l.binary(op, a, b)))
        },
        // Remainders: the divisor's sign (fmod=0, Python's %) or the
        // dividend's (fmod=1, C's fmod); an integer by 0 gives 0, a float NaN.
        ONNXOp("Mod", takes: numeric) { l in
            let (a, b) = try l.sameTyped(0, 1)
            l.set(0, .tensor(try l.binary(try l.int("fmod", 0) != 0 ? .fmod : .mod, a, b)))
        },
        ONNXOp("Where", fold: whenKnown { l, first, inputs in
            guard inputs.count == 3, let x = inputs[1], let y = inputs[2],
                  let shape = broadcastShape(first.shape, x.shape).flatMap({ broadcastShape($0, y.shape) }) else {
                throw l.shapeError("Where's inputs do not broadcast")
            }
            _ = try l.foldedCount(shape, what: "Where")
            let c = first.doubles(), xs = x.doubles(), ys = y.doubles()
            var out: [Double] = []
            forEachIndex(shape) { index in
                out.append(c[broadcastIndex(index, into: first.shape)] != 0
                           ? xs[broadcastIndex(index, into: x.shape)] : ys[broadcastIndex(index, into: y.shape)])
            }
            return .make(x.type, shape, out)
        }) { l in
            let condition = try l.typedTensor(0)
            guard condition.type == .bool else {
                throw l.invalid("the condition \(l.current.inputs[0]) is \(condition.type.name); Where takes bool")
            }
            let (a, b) = try l.sameTyped(1, 2)
            l.set(0, .tensor(try l.select(condition, a, b)))
        },
        // values[1] where the index (negative: from the end) meets the
        // position along the new axis, values[0] elsewhere (an index out of
        // range meets none).
        ONNXOp("OneHot", takes: numeric, typedInputs: 1) { l in
            var indices = try l.typedTensor(0)
            // depth: one number of any type (a float is truncated, as ONNX says).
            guard let given = l.constant(1)?.doubles() else {
                throw l.unsupported("depth (input 1) must be known at compile time (a constant or an initializer)")
            }
            guard given.count == 1, given[0] >= 1, given[0] < Double(1 << 24) else {
                throw l.invalid("depth must be one number from 1 to 2^24")
            }
            let depth = [Int(given[0])]
            let a = try l.axis(try l.int("axis", -1), rank: indices.rank + 1)
            if indices.type != .int64 {
                let wide = try l.temp(.int64, indices.dims)
                l.emit(.cast(wrap: false), [wide, indices])   // floats toward zero, as ONNX's reference
                indices = wide
            }
            let size = try l.weightView(.make(.int64, [], [Double(depth[0])]), name: "\(l.current.name)#depth")
            let zero = try l.weightView(.make(.int64, [], [0]), name: "\(l.current.name)#zero")
            indices = try l.select(try l.compare(.lt, indices, zero), try l.binary(.add, indices, size), indices)
            var expanded = indices
            expanded.dims.insert(1, at: a)
            expanded.strides.insert(0, at: a)
            var positionDims = [Int](repeating: 1, count: indices.rank + 1)
            positionDims[a] = depth[0]
            let positions = try l.weightView(.make(.int64, positionDims, (0..<depth[0]).map(Double.init)),
                                             name: "\(l.current.name)#positions")
            let hit = try l.compare(.eq, expanded, positions)
            let values = try l.typedTensor(2)
            guard values.count == 2 else { throw l.invalid("values must be [off, on]") }
            let flat = try l.reshapeView(values, to: [2])
            var off = flat, on = flat
            off.dims = []; off.strides = []
            on.dims = []; on.strides = []
            on.offset += flat.strides[0]
            l.set(0, .tensor(try l.select(hit, on, off)))
        },
        // x where x > alpha, else 0.
        ONNXOp("ThresholdedRelu", takes: [.float32]) { l in
            let x = try l.floatTensor(0)
            let above = try l.compare(.gt, x, try l.scalar(try l.float("alpha", 1), "alpha"))
            l.set(0, .tensor(try l.select(above, x, try l.scalar(0, "zero"))))
        },
        // x + bias below -lambd, x - bias above lambd, 0 between.
        ONNXOp("Shrink", takes: [.float32]) { l in
            let x = try l.floatTensor(0)
            let lambd = try l.float("lambd", 0.5), bias = try l.float("bias", 0)
            let below = try l.compare(.lt, x, try l.scalar(-lambd, "-lambd"))
            let above = try l.compare(.gt, x, try l.scalar(lambd, "lambd"))
            let b = try l.scalar(bias, "bias")
            let high = try l.select(above, try l.binary(.sub, x, b), try l.scalar(0, "zero"))
            l.set(0, .tensor(try l.select(below, try l.binary(.add, x, b), high)))
        },
        // x != x, as NOT (x == x).
        ONNXOp("IsNaN", takes: [.float32]) { l in
            let x = try l.floatTensor(0)
            l.set(0, .tensor(try l.apply(.not, try l.compare(.eq, x, x))))
        },
        // x == +inf and/or x == -inf, as detect_positive and detect_negative say.
        ONNXOp("IsInf", takes: [.float32]) { l in
            let x = try l.floatTensor(0)
            let positive = try l.int("detect_positive", 1) != 0, negative = try l.int("detect_negative", 1) != 0
            var result: View?
            for (wanted, value) in [(positive, Float.infinity), (negative, -Float.infinity)] where wanted {
                let hit = try l.compare(.eq, x, try l.scalar(value, value > 0 ? "inf" : "-inf"))
                result = try result.map { (r: View) throws(NeuronCompilerError) -> View in try l.binary(.or, r, hit) } ?? hit
            }
            if let result {
                l.set(0, .tensor(result))
            } else {
                let none = try l.temp(.bool, x.dims)
                l.emit(.fill(0), [none])
                l.set(0, .tensor(none))
            }
        },
    ]

    /// A comparison of two inputs of one type into bool, broadcast.
    static func compare(_ name: String, _ op: NeuronCompareOp, takes: [NeuronDType] = numeric) -> ONNXOp {
        ONNXOp(name, takes: takes, fold: foldElementwise(name)) { l in
            let (a, b) = try l.sameTyped(0, 1)
            l.set(0, .tensor(try l.compare(op, a, b)))
        }
    }

    /// And, Or or Xor of two bool inputs, broadcast.
    static func logical(_ name: String, _ op: NeuronBinaryOp) -> ONNXOp {
        ONNXOp(name, takes: [.bool], fold: foldElementwise(name)) { l in
            let (a, b) = try l.sameTyped(0, 1)
            l.set(0, .tensor(try l.binary(op, a, b)))
        }
    }

    /// A bitwise op of two integer inputs of one type, broadcast.
    static func bitwise(_ name: String, _ op: NeuronBinaryOp) -> ONNXOp {
        ONNXOp(name, takes: integers) { l in
            let (a, b) = try l.sameTyped(0, 1)
            l.set(0, .tensor(try l.binary(op, a, b)))
        }
    }
}

extension Lowering {
    /// a op b into bool, broadcast; a and b of one type.
    func compare(_ op: NeuronCompareOp, _ a: View, _ b: View) throws(NeuronCompilerError) -> View {
        let (x, y, shape) = try broadcast(a, b)
        guard x.type == y.type else {
            throw invalid("operands of \(x.type.name) and \(y.type.name); \(current.op) compares one type")
        }
        let out = try temp(.bool, shape)
        emit(.compare(op), [out, x, y])
        return out
    }

    /// condition ? a : b, all three broadcast to one shape.
    func select(_ condition: View, _ a: View, _ b: View) throws(NeuronCompilerError) -> View {
        guard let shape = broadcastShape(condition.dims, a.dims).flatMap({ broadcastShape($0, b.dims) }), shape.count <= 6,
              let c = condition.broadcast(to: shape), let x = a.broadcast(to: shape), let y = b.broadcast(to: shape) else {
            throw shapeError("shapes \(condition.dims), \(a.dims) and \(b.dims) do not broadcast")
        }
        let out = try temp(a.type, shape)
        emit(.select, [out, c, x, y])
        return out
    }
}
