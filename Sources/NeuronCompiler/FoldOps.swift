import NeuronNEFF

/// Evaluation of nodes at compile time.
extension Lowering {
    static let foldableOps: Set<String> = [
        "Shape", "Size", "ConstantOfShape", "Range", "Equal", "Where", "Cast", "Identity", "Reshape", "Flatten",
        "Squeeze", "Unsqueeze", "Transpose", "Concat", "Gather", "Slice", "Expand", "Add", "Sub", "Mul", "Div",
        "Neg", "Sqrt", "Max", "Min", "Sum",
    ]

    /// Evaluate `node` when its inputs are known (a Shape needs only its
    /// input's shape); false when it must run on the NeuronCore.
    func fold(_ node: Node) throws(NeuronCompilerError) -> Bool {
        guard Lowering.foldableOps.contains(node.op) else { return false }
        if node.op == "Shape" || node.op == "Size" {
            let shape = try shape(0)
            if node.op == "Size" {
                guard let size = NEFFTensor.elementCount(of: shape) else { throw shapeError("the shape \(shape) has no size") }
                set(0, .constant(.integers([size], shape: [])))
                return true
            }
            let rank = shape.count
            func bound(_ value: Int) -> Int { max(0, min(rank, value < 0 ? value + rank : value)) }
            let start = bound(try int("start", 0))
            let end = current.attributes["end"] == nil ? rank : bound(try int("end", rank))
            set(0, .constant(.integers(Array(shape[start..<max(start, end)]))))
            return true
        }
        var inputs: [ConstantTensor?] = []
        for index in node.inputs.indices {
            if node.inputs[index].isEmpty {
                inputs.append(nil)
                continue
            }
            guard let tensor = constant(index) else { return false }
            // Shapes come from the model's bytes: a negative dimension, or
            // an empty tensor whose other dimensions multiply past the
            // largest tensor, is refused before anything reads them.
            guard let bound = NEFFTensor.elementCount(of: tensor.shape.map { Swift.max($0, 1) }),
                  bound <= Lowering.maxTensorElements, tensor.shape.allSatisfy({ $0 >= 0 }),
                  tensor.bytes.count == tensor.count * tensor.type.size else {
                throw shapeError("input \(index) has the shape \(tensor.shape)")
            }
            inputs.append(tensor)
        }
        guard let first = inputs.first ?? nil else { return false }
        let result: ConstantTensor
        switch node.op {
        case "ConstantOfShape":
            let shape = first.integers() ?? []
            var value = ConstantTensor.make(.float32, [], [0])
            if case .tensor(let tensor)? = node.attributes["value"] { value = tensor }
            guard value.count == 1, value.bytes.count == value.type.size else {
                throw invalid("ConstantOfShape's value must hold one element")
            }
            let count = try foldedCount(shape, what: "ConstantOfShape")
            result = ConstantTensor(type: value.type, shape: shape,
                                    bytes: Array([[UInt8]](repeating: value.bytes, count: count).joined()))
        case "Range":
            guard inputs.count == 3, let limit = inputs[1]?.doubles().first, let delta = inputs[2]?.doubles().first,
                  let start = first.doubles().first, delta != 0 else { throw invalid("Range takes start, limit, delta") }
            let steps = ((limit - start) / delta).rounded(.up)
            guard !steps.isNaN, steps <= Double(1 << 24) else { throw unsupported("Range of \(steps) elements") }
            let count = steps <= 0 ? 0 : Int(steps)
            result = .make(first.type, [count], (0..<count).map { start + Double($0) * delta })
        case "Cast":
            let to = try GraphReader(directory: nil, opset: graph.opset).elementType(Int32(clamping: try int("to", 0)), what: "Cast's target")
            result = first.type == to ? first : .make(to, first.shape, first.doubles())
        case "Identity":
            result = first
        case "Reshape", "Flatten", "Squeeze", "Unsqueeze":
            var copy = first
            copy.shape = try reshapedShape(node, first.shape)
            guard copy.count == first.count else { throw shapeError("cannot reshape \(first.shape) to \(copy.shape)") }
            result = copy
        case "Transpose":
            let perm = try permutation(rank: first.shape.count)
            let outShape = perm.map { first.shape[$0] }
            _ = try foldedCount(outShape, what: "Transpose")
            let strides = View.rowMajor(first.shape)
            var indices: [Int] = []
            forEachIndex(outShape) { index in
                indices.append(zip(index, perm).reduce(0) { $0 + $1.0 * strides[$1.1] })
            }
            result = first.picking(indices, shape: outShape)
        case "Concat":
            let parts = inputs.compactMap { $0 }
            let a = try axis(try int("axis", 0), rank: first.shape.count)
            var shape = first.shape
            shape[a] = parts.reduce(0) { $0 + ($1.shape.count > a ? $1.shape[a] : 0) }
            guard parts.allSatisfy({ part in
                part.type == first.type && part.shape.count == first.shape.count
                    && part.shape.indices.allSatisfy { $0 == a || part.shape[$0] == first.shape[$0] }
            }) else {
                throw shapeError("cannot concatenate \(parts.map(\.shape))")
            }
            _ = try foldedCount(shape, what: "Concat")
            let outer = shape.prefix(a).reduce(1, *)
            var bytes: [UInt8] = []
            for o in 0..<outer {
                for part in parts {
                    let row = part.shape[a...].reduce(1, *) * part.type.size
                    bytes += part.bytes[(o * row)..<((o + 1) * row)]
                }
            }
            result = ConstantTensor(type: first.type, shape: shape, bytes: bytes)
        case "Gather":
            guard inputs.count >= 2, let indexTensor = inputs[1], let indices = indexTensor.integers() else {
                throw invalid("Gather's indices must be integers")
            }
            let a = try axis(try int("axis", 0), rank: first.shape.count)
            _ = try foldedCount(Array(first.shape.prefix(a)) + indexTensor.shape + Array(first.shape.dropFirst(a + 1)),
                                what: "Gather")
            let dim = first.shape[a]
            let outer = first.shape.prefix(a).reduce(1, *), inner = first.shape.dropFirst(a + 1).reduce(1, *)
            var picks: [Int] = []
            for o in 0..<outer {
                for raw in indices {
                    let i = raw < 0 ? raw + dim : raw
                    guard (0..<dim).contains(i) else { throw invalid("Gather index \(raw) is outside 0..<\(dim)") }
                    for j in 0..<inner { picks.append((o * dim + i) * inner + j) }
                }
            }
            result = first.picking(picks, shape: Array(first.shape.prefix(a)) + indexTensor.shape + Array(first.shape.dropFirst(a + 1)))
        case "Slice":
            let view = try slice(View(buffer: -1, type: .float32, dims: first.shape))
            _ = try foldedCount(view.dims, what: "Slice")
            var picks: [Int] = []
            forEachIndex(view.dims) { index in
                picks.append(view.offset + zip(index, view.strides).reduce(0) { $0 + $1.0 * $1.1 })
            }
            result = first.picking(picks, shape: view.dims)
        case "Expand":
            guard inputs.count >= 2, let target = inputs[1]?.integers(), let shape = broadcastShape(first.shape, target) else {
                throw shapeError("cannot expand \(first.shape)")
            }
            _ = try foldedCount(shape, what: "Expand")
            var picks: [Int] = []
            forEachIndex(shape) { picks.append(broadcastIndex($0, into: first.shape)) }
            result = first.picking(picks, shape: shape)
        case "Neg", "Sqrt":
            let values = first.doubles().map { node.op == "Neg" ? -$0 : $0.squareRoot() }
            result = .make(first.type, first.shape, values)
        case "Where":
            guard inputs.count == 3, let x = inputs[1], let y = inputs[2],
                  let shape = broadcastShape(first.shape, x.shape).flatMap({ broadcastShape($0, y.shape) }) else {
                throw shapeError("Where's inputs do not broadcast")
            }
            _ = try foldedCount(shape, what: "Where")
            let c = first.doubles(), xs = x.doubles(), ys = y.doubles()
            var out: [Double] = []
            forEachIndex(shape) { index in
                out.append(c[broadcastIndex(index, into: first.shape)] != 0
                           ? xs[broadcastIndex(index, into: x.shape)] : ys[broadcastIndex(index, into: y.shape)])
            }
            result = .make(x.type, shape, out)
        default: // Add, Sub, Mul, Div, Equal, Max, Min, Sum
            var acc = first
            for next in inputs.dropFirst() {
                guard let next else { continue }
                guard let shape = broadcastShape(acc.shape, next.shape) else {
                    throw shapeError("shapes \(acc.shape) and \(next.shape) do not broadcast")
                }
                _ = try foldedCount(shape, what: node.op)
                let xs = acc.doubles(), ys = next.doubles()
                let integral = !acc.type.isFloatingPoint
                var out: [Double] = []
                forEachIndex(shape) { index in
                    let x = xs[broadcastIndex(index, into: acc.shape)], y = ys[broadcastIndex(index, into: next.shape)]
                    switch node.op {
                    case "Add", "Sum": out.append(x + y)
                    case "Sub": out.append(x - y)
                    case "Mul": out.append(x * y)
                    case "Div": out.append(integral ? (y == 0 ? 0 : (x / y).rounded(.towardZero)) : x / y)
                    case "Equal": out.append(x == y ? 1 : 0)
                    case "Max": out.append(x.isNaN || y.isNaN ? .nan : Swift.max(x, y))
                    default: out.append(x.isNaN || y.isNaN ? .nan : Swift.min(x, y))
                    }
                }
                acc = .make(node.op == "Equal" ? .bool : acc.type, shape, out)
            }
            result = acc
        }
        set(0, .constant(result))
        return true
    }
}
