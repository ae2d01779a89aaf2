import NeuronISA

/// Normalisations over a last axis: SOFTMAX and LAYERNORM (the CNN
/// normalisations, BatchNormalization and LRN, are in CNN.swift).
extension ONNXOps {
    static let normalization: [ONNXOp] = [
        ONNXOp("Softmax", takes: [.float32]) { l in
            let x = try l.floatTensor(0)
            let axis = try l.axis(try l.int("axis", -1), rank: x.rank)
            guard l.graph.opset >= 13 else { throw l.unsupported("Softmax before opset 13") }
            var perm = Array(0..<x.rank)
            perm.remove(at: axis)
            perm.append(axis)
            let out = try l.temp(.float32, x.dims)
            l.emit(.softmax, [out.permuted(perm), x.permuted(perm)])
            l.set(0, .tensor(out))
        },
        ONNXOp("LayerNormalization", takes: [.float32]) { l in try l.lowerLayerNorm() },
    ]
}

extension Lowering {
    func lowerLayerNorm() throws(NeuronCompilerError) {
        let x = try floatTensor(0)
        let a = try axis(try int("axis", -1), rank: x.rank)
        let epsilon = try float("epsilon", 1e-5)
        let span = x.dims[a...].reduce(1, *)
        let rows = try reshapeView(x, to: Array(x.dims[..<a]) + [span])
        let scale = try reshapeView(try floatTensor(1), to: [span])
        let bias = hasInput(2) ? try reshapeView(try floatTensor(2), to: [span])
            : try weightView(.make(.float32, [span], [Double](repeating: 0, count: try foldedCount([span], what: "a zero bias"))),
                             name: "\(current.name)#zero")
        let out = try temp(.float32, rows.dims)
        emit(.layerNorm(epsilon: epsilon), [out, rows, scale, bias])
        set(0, .tensor(try reshapeView(out, to: x.dims)))
        // The optional Mean and InvStdDev outputs: x's shape with the
        // normalized axes 1.
        let statsDims = Array(x.dims[..<a]) + [Int](repeating: 1, count: x.rank - a)
        let wantsMean = current.outputs.count > 1 && !current.outputs[1].isEmpty
        let wantsInv = current.outputs.count > 2 && !current.outputs[2].isEmpty
        guard wantsMean || wantsInv else { return }
        let mean = try temp(.float32, Array(rows.dims.dropLast()) + [1])
        emit(.reduce(.mean), [mean, rows])
        set(1, .tensor(try reshapeView(mean, to: statsDims)))
        guard wantsInv else { return }
        let centered = try binary(.sub, rows, mean)
        let variance = try temp(.float32, mean.dims)
        emit(.reduce(.mean), [variance, try binary(.mul, centered, centered)])
        let shifted = try binary(.add, variance, try weightView(.make(.float32, [], [Double(epsilon)]), name: "\(current.name)#epsilon"))
        let inverse = try temp(.float32, mean.dims)
        emit(.unary(.rsqrt, alpha: 0), [inverse, shifted])
        set(2, .tensor(try reshapeView(inverse, to: statsDims)))
    }
}
