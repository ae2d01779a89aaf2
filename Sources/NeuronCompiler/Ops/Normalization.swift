import NeuronISA

/// Normalisations: SOFTMAX and LAYERNORM over a last axis, and the ops
/// built from them and from REDUCE (the CNN normalisations,
/// BatchNormalization and LRN, are in CNN.swift).
extension ONNXOps {
    static let normalization: [ONNXOp] = [
        ONNXOp("Softmax", takes: [.float32]) { l in
            try l.overAxis { (x: View) throws(NeuronCompilerError) -> View in
                let out = try l.temp(.float32, x.dims)
                l.emit(.softmax, [out, x])
                return out
            }
        },
        // x - max - log(Σ exp(x - max)) over the axis.
        ONNXOp("LogSoftmax", takes: [.float32]) { l in
            try l.overAxis { (x: View) throws(NeuronCompilerError) -> View in
                let shifted = try l.binary(.sub, x, try l.reduceLast(.max, x))
                let sum = try l.reduceLast(.sum, try l.apply(.exp, shifted))
                return try l.binary(.sub, shifted, try l.apply(.log, sum))
            }
        },
        ONNXOp("LayerNormalization", takes: [.float32]) { l in try l.lowerLayerNorm() },
        // 1 at the first largest element along the axis, 0 elsewhere: its
        // ARGMAX compared with each position's index.
        ONNXOp("Hardmax", takes: [.float32]) { l in
            try l.overAxis { (x: View) throws(NeuronCompilerError) -> View in
                let index = try l.indexOfExtreme(.argmax, x, axis: x.rank - 1, last: false)
                let length = x.dims[x.rank - 1]
                let positions = try l.weightView(.make(.int64, [length], (0..<length).map(Double.init)), name: "\(l.current.name)#iota")
                let hit = try l.compare(.eq, index, positions)
                let out = try l.temp(.float32, hit.dims)
                l.emit(.cast(wrap: false), [out, hit])
                return out
            }
        },
        // Each (instance, channel) normalised over its spatial axes, then
        // scaled and shifted per channel.
        ONNXOp("InstanceNormalization", takes: [.float32]) { l in
            let x = try l.floatTensor(0)
            guard x.rank >= 3 else { throw l.shapeError("the input \(x.dims) needs a batch, a channel and a spatial axis") }
            try l.groupNorm(x, groups: x.dims[1], epsilon: try l.float("epsilon", 1e-5), perChannel: true)
        },
        // The channels in num_groups groups, each (instance, group)
        // normalised over its channels and spatial axes; scale and bias per
        // channel (opset 21) or per group (opset 18).
        ONNXOp("GroupNormalization", takes: [.float32]) { l in
            let x = try l.floatTensor(0)
            guard x.rank >= 3 else { throw l.shapeError("the input \(x.dims) needs a batch, a channel and a spatial axis") }
            let groups = try l.int("num_groups", 0)
            guard groups >= 1, x.dims[1] % groups == 0 else {
                throw l.invalid("num_groups=\(groups) must divide the \(x.dims[1]) channels")
            }
            try l.groupNorm(x, groups: groups, epsilon: try l.float("epsilon", 1e-5), perChannel: l.graph.opset >= 21)
        },
        // (x - mean) / (sqrt(variance) + 1e-9) over the axes (ONNX's function body).
        ONNXOp("MeanVarianceNormalization", takes: [.float32]) { l in
            let x = try l.floatTensor(0)
            var axes = Set<Int>()
            for raw in try l.ints("axes") ?? [0, 2, 3] { axes.insert(try l.axis(raw, rank: x.rank, what: "axes")) }
            let centered = try l.binary(.sub, x, try l.reduce(.mean, x, over: axes))
            let variance = try l.reduce(.mean, try l.binary(.mul, centered, centered), over: axes)
            let deviation = try l.binary(.add, try l.apply(.sqrt, variance), try l.scalar(1e-9, "epsilon"))
            l.set(0, .tensor(try l.binary(.div, centered, deviation)))
        },
        // x / ‖x‖ over the axis, p 1 (Σ|x|) or 2 (sqrt Σx²); 0 where the
        // norm is 0 (the norm raised to the smallest subnormal, 2^-149,
        // which no nonzero norm is below, so that 0 / it is 0).
        ONNXOp("LpNormalization", takes: [.float32]) { l in
            let x = try l.floatTensor(0)
            let a = try l.axis(try l.int("axis", -1), rank: x.rank)
            let norm: View
            switch try l.int("p", 2) {
            case 1: norm = try l.reduce(.sum, try l.apply(.abs, x), over: [a])
            case 2: norm = try l.apply(.sqrt, try l.reduce(.sum, try l.binary(.mul, x, x), over: [a]))
            case let p: throw l.unsupported("p=\(p); ONNX defines 1 and 2")
            }
            l.set(0, .tensor(try l.binary(.div, x, try l.binary(.max, norm, try l.scalar(0x1p-149, "2^-149")))))
        },
        // x / sqrt(mean(x²) + epsilon) · scale, the mean over the axes from `axis` on.
        ONNXOp("RMSNormalization", takes: [.float32]) { l in
            let x = try l.floatTensor(0)
            let a = try l.axis(try l.int("axis", -1), rank: x.rank)
            let epsilon = try l.float("epsilon", 1e-5)
            let meanSquare = try l.reduce(.mean, try l.binary(.mul, x, x), over: Set(a..<x.rank))
            let rms = try l.apply(.sqrt, try l.binary(.add, meanSquare, try l.scalar(epsilon, "epsilon")))
            let normalized = try l.binary(.mul, x, try l.apply(.reciprocal, rms))
            l.set(0, .tensor(try l.binary(.mul, normalized, try l.floatTensor(1))))
        },
    ]
}

extension Lowering {
    /// Output 0 as `body` of input 0 over the axis `axis` (attribute,
    /// default -1), which `body` sees as the last axis of its view. Before
    /// opset 13 (Softmax, LogSoftmax) the input is seen as 2-D instead:
    /// the axes before `axis` (default 1) and those from it on.
    func overAxis(_ body: (View) throws(NeuronCompilerError) -> View) throws(NeuronCompilerError) {
        let x = try floatTensor(0)
        if graph.opset < 13 {
            let a = try axis(try int("axis", 1), rank: x.rank)
            let rows = try reshapeView(x, to: [x.dims[..<a].reduce(1, *), x.dims[a...].reduce(1, *)])
            set(0, .tensor(try reshapeView(try body(rows), to: x.dims)))
            return
        }
        let a = try axis(try int("axis", -1), rank: x.rank)
        var perm = Array(0..<x.rank)
        perm.remove(at: a)
        perm.append(a)
        var inverse = perm
        for (position, axis) in perm.enumerated() { inverse[axis] = position }
        set(0, .tensor(try body(x.permuted(perm)).permuted(inverse)))
    }

    /// x [N, C, ...] normalised over each (instance, group of C / groups
    /// channels) by one LAYERNORM, then times `scale` and plus `bias`
    /// (inputs 1 and 2), each per channel or per group.
    func groupNorm(_ x: View, groups: Int, epsilon: Float, perChannel: Bool) throws(NeuronCompilerError) {
        let n = x.dims[0], c = x.dims[1], spatial = x.dims[2...].reduce(1, *), span = c / groups * spatial
        let rows = try reshapeView(x, to: [n * groups, span])
        let out = try temp(.float32, rows.dims)
        let one = try scalar(1, "one"), zero = try scalar(0, "zero")
        guard let ones = one.broadcast(to: [span]), let zeros = zero.broadcast(to: [span]) else {
            throw shapeError("cannot normalise \(x.dims)")
        }
        emit(.layerNorm(epsilon: epsilon), [out, rows, ones, zeros])
        // [N, groups, C / groups, spatial] against [groups, C / groups, 1].
        let grouped = try reshapeView(out, to: [n, groups, c / groups, spatial])
        func perGroupChannel(_ index: Int) throws(NeuronCompilerError) -> View {
            let v = try floatTensor(index)
            let want = perChannel ? c : groups
            guard v.count == want else {
                throw shapeError("input \(index) has \(v.count) elements; it needs one per \(perChannel ? "channel" : "group") (\(want))")
            }
            let flat = try reshapeView(v, to: [want])
            if perChannel { return try reshapeView(flat, to: [groups, c / groups, 1]) }
            return View(buffer: flat.buffer, type: flat.type, offset: flat.offset, dims: [groups, c / groups, 1],
                        strides: [flat.strides[0], 0, 0])
        }
        let scaled = try binary(.mul, grouped, try perGroupChannel(1))
        let shifted = try binary(.add, scaled, try perGroupChannel(2))
        set(0, .tensor(try reshapeView(shifted, to: x.dims)))
    }

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
