import NeuronNEFF

/// Ops neuron-cc evaluates only at compile time: the shape arithmetic
/// exporters emit (Shape, Size, ConstantOfShape, Range) and EyeLike, which
/// needs only its input's shape. Their inputs must be known then.
extension ONNXOps {
    static let foldOnly: [ONNXOp] = [
        // The importer makes Constant nodes constants; this entry names it among the ops.
        ONNXOp("Constant", fold: { l in try GraphReader(directory: nil, opset: l.graph.opset).constantValue(of: l.current) }),
        // Shape and Size need only their input's shape, known for every value.
        ONNXOp("Shape", fold: { l in
            let shape = try l.shape(0)
            let rank = shape.count
            func bound(_ value: Int) -> Int { max(0, min(rank, value < 0 ? value + rank : value)) }
            let start = bound(try l.int("start", 0))
            let end = l.current.attributes["end"] == nil ? rank : bound(try l.int("end", rank))
            return .integers(Array(shape[start..<max(start, end)]))
        }),
        ONNXOp("Size", fold: { l in
            let shape = try l.shape(0)
            guard let size = NEFFTensor.elementCount(of: shape) else { throw l.shapeError("the shape \(shape) has no size") }
            return .integers([size], shape: [])
        }),
        ONNXOp("ConstantOfShape", fold: whenKnown { l, first, _ in
            let shape = first.integers() ?? []
            var value = ConstantTensor.make(.float32, [], [0])
            if case .tensor(let tensor)? = l.current.attributes["value"] { value = tensor }
            guard value.count == 1, value.bytes.count == value.type.size else {
                throw l.invalid("ConstantOfShape's value must hold one element")
            }
            let count = try l.foldedCount(shape, what: "ConstantOfShape")
            return ConstantTensor(type: value.type, shape: shape,
                                  bytes: Array([[UInt8]](repeating: value.bytes, count: count).joined()))
        }),
        // Ones on diagonal k of a 2-D shape (its input's), zeros elsewhere.
        ONNXOp("EyeLike", fold: { l in
            let shape = try l.shape(0)
            guard shape.count == 2 else { throw l.shapeError("EyeLike takes a 2-D input; it is \(shape)") }
            let code = try l.int("dtype", 0)
            let type = code == 0 ? try l.typedTensorType(0)
                : try GraphReader(directory: nil, opset: l.graph.opset).elementType(Int32(clamping: code), what: "dtype")
            let k = try l.int("k", 0)
            let count = try l.foldedCount(shape, what: "EyeLike")
            return .make(type, shape, (0..<count).map { $0 % shape[1] - $0 / shape[1] == k ? 1 : 0 })
        }),
        ONNXOp("Range", fold: whenKnown { l, first, inputs in
            guard inputs.count == 3, let limit = inputs[1]?.doubles().first, let delta = inputs[2]?.doubles().first,
                  let start = first.doubles().first, delta != 0 else { throw l.invalid("Range takes start, limit, delta") }
            let steps = ((limit - start) / delta).rounded(.up)
            guard !steps.isNaN, steps <= Double(1 << 24) else { throw l.unsupported("Range of \(steps) elements") }
            let count = steps <= 0 ? 0 : Int(steps)
            return .make(first.type, [count], (0..<count).map { start + Double($0) * delta })
        }),
    ]
}
