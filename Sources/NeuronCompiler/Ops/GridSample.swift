import NeuronISA

/// GridSample (2-D and 3-D; nearest, linear, cubic; zeros, border and
/// reflection padding): for each spatial axis, the grid's coordinate in
/// pixels, moved by the padding mode, its taps (1, 2 or 4 indices) and
/// their weights, all computed on the NeuronCore; then for each
/// combination of taps one GATHER of every channel's pixel from the input
/// seen as rows [N · positions, C], weighted and summed.
extension ONNXOps {
    static let gridSample: [ONNXOp] = [
        ONNXOp("GridSample", takes: [.float32], typedInputs: 2) { l in try l.lowerGridSample() },
    ]
}

extension Lowering {
    /// One spatial axis's taps: int64 indices in range, float32 weights
    /// (zero where a zeros-padded tap falls outside).
    private struct Taps {
        var indices: [View]
        var weights: [View]
    }

    func lowerGridSample() throws(NeuronCompilerError) {
        let x = try floatTensor(0), grid = try floatTensor(1)
        let spatial = x.rank - 2
        guard spatial == 2 || spatial == 3, grid.rank == x.rank, grid.dims[0] == x.dims[0], grid.dims.last == spatial else {
            throw shapeError("input \(x.dims) and grid \(grid.dims): GridSample takes [N, C, (D,) H, W] and [N, (D,) H, W, \(spatial)]")
        }
        let mode = try string("mode", "linear"), padding = try string("padding_mode", "zeros")
        let aligned = try int("align_corners", 0) != 0
        guard ["nearest", "linear", "cubic", "bilinear", "bicubic"].contains(mode) else { throw unsupported("mode=\(mode)") }
        guard ["zeros", "border", "reflection"].contains(padding) else { throw unsupported("padding_mode=\(padding)") }
        guard !(mode.hasSuffix("cubic") && spatial == 3) else { throw unsupported("cubic mode over three spatial axes") }
        let (batch, channels) = (x.dims[0], x.dims[1])
        let extents = Array(x.dims.dropFirst(2)), outSpatial = Array(grid.dims.dropFirst().dropLast())
        let positions = [batch] + outSpatial   // P: one per output pixel

        var axes: [Taps] = []
        for a in 0..<spatial {
            // The grid's components run x (W), y (H), z (D): axis a is component spatial − 1 − a.
            var g = grid
            g.offset += (spatial - 1 - a) * grid.strides[grid.rank - 1]
            g.dims.removeLast()
            g.strides.removeLast()
            axes.append(try gridTaps(g, length: extents[a], mode: mode, padding: padding, aligned: aligned, name: "\(a)"))
        }
        // The input as rows [N · positions, C]; row = n · Π extents + Σ index_a · stride_a.
        let rows = try reshapeView(contiguous(x.permuted([0] + Array(2..<x.rank) + [1])), to: [x.count / channels, channels])
        let strides = View.rowMajor(extents)
        var batchBase: [Double] = []
        forEachIndex(positions) { at in batchBase.append(Double(at[0] * extents.reduce(1, *))) }
        let base = try weightView(.make(.int64, positions, batchBase), name: "\(current.name)#batch", as: .int64)
        var total: View?
        var combination = [Int](repeating: 0, count: spatial)
        while true {
            var flat = base
            var weight: View?
            for a in 0..<spatial {
                let index = axes[a].indices[combination[a]]
                let scaled = strides[a] == 1 ? index : try binary(.mul, index, try int64Scalar(strides[a], "stride\(a)"))
                flat = try binary(.add, flat, scaled)
                let w = axes[a].weights[combination[a]]
                if let product = weight { weight = try binary(.mul, product, w) } else { weight = w }
            }
            guard let w = weight else { break }
            let picked = try temp(.float32, [flat.count, channels])
            emit(.gather, [picked, rows, try reshapeView(flat, to: [flat.count])])
            let term = try binary(.mul, picked, try reshapeView(w, to: [w.count, 1]))
            if let sum = total { total = try binary(.add, sum, term) } else { total = term }
            // The next combination of taps.
            var a = spatial - 1
            while a >= 0 {
                combination[a] += 1
                if combination[a] < axes[a].indices.count { break }
                combination[a] = 0
                a -= 1
            }
            if a < 0 { break }
        }
        guard let sum = total else { throw invalid("GridSample has no taps") }
        // [P, C] to [N, C, out...].
        let shaped = try reshapeView(sum, to: positions + [channels])
        set(0, .tensor(shaped.permuted([0, shaped.rank - 1] + Array(1..<(shaped.rank - 1)))))
    }

    func int64Scalar(_ value: Int, _ what: String) throws(NeuronCompilerError) -> View {
        try weightView(.make(.int64, [], [Double(value)]), name: "\(current.name)#\(what)", as: .int64)
    }

    /// The taps of one axis of `length` for grid coordinates `g` in [-1, 1].
    private func gridTaps(_ g: View, length: Int, mode: String, padding: String, aligned: Bool,
                          name: String) throws(NeuronCompilerError) -> Taps {
        func f(_ value: Double, _ what: String) throws(NeuronCompilerError) -> View {
            try scalar(Float(value), "\(what)\(name)")
        }
        let n = Double(length)
        // Pixels: (g + 1) / 2 · (n − 1), or ((g + 1) n − 1) / 2.
        let plusOne = try binary(.add, g, try f(1, "one"))
        var c = aligned ? try binary(.mul, plusOne, try f((n - 1) / 2, "half-span"))
                        : try binary(.div, try binary(.sub, try binary(.mul, plusOne, try f(n, "n")), try f(1, "one")), try f(2, "two"))
        if mode == "nearest" { c = try apply(.round, c) }
        let (low, high) = aligned ? (0.0, n - 1) : (-0.5, n - 0.5)
        switch padding {
        case "border":
            let outside = try binary(.or, try compare(.lt, c, try f(low, "low")), try compare(.gt, c, try f(high, "high")))
            c = try select(outside, try binary(.min, try binary(.max, c, try f(0, "zero")), try f(n - 1, "last")), c)
        case "reflection":
            c = try reflect(c, low: low, high: high, name: name)
        default: break
        }
        // Each tap's integer index and weight.
        var starts: [View], weights: [View]
        switch mode {
        case "nearest":
            starts = [converted(c, to: .int64)]   // toward zero, as the reference's int()
            weights = [try f(1, "unit")]
        case "linear", "bilinear":
            let floor = try apply(.floor, c), t = try binary(.sub, c, floor)
            let first = converted(floor, to: .int64)
            starts = [first, try binary(.add, first, try int64Scalar(1, "plus1"))]
            weights = [try binary(.sub, try f(1, "one"), t), t]
        default:   // cubic, Keys with A = −0.75
            let floor = try apply(.floor, c), t = try binary(.sub, c, floor)
            let first = converted(floor, to: .int64)
            starts = []
            for shift in -1...2 { starts.append(try binary(.add, first, try int64Scalar(shift, "shift\(shift + 1)"))) }
            weights = try cubicWeights(t, name: name)
        }
        // Indices in range: zeros padding weighs the others 0; border clamps;
        // reflection reflects the index too.
        var indices: [View] = []
        var kept: [View] = []
        for (index, weight) in zip(starts, weights) {
            switch padding {
            case "zeros":
                let inside = try binary(.and, try compare(.ge, index, try int64Scalar(0, "i0")),
                                        try compare(.lt, index, try int64Scalar(length, "n")))
                indices.append(try select(inside, index, try int64Scalar(0, "i0")))
                kept.append(try select(inside, weight, try f(0, "zero")))
            case "border":
                indices.append(try binary(.min, try binary(.max, index, try int64Scalar(0, "i0")), try int64Scalar(length - 1, "last")))
                kept.append(weight)
            default:
                let reflected = try reflect(converted(index, to: .float32), low: low, high: high, name: name)
                indices.append(try binary(.min, try binary(.max, converted(reflected, to: .int64), try int64Scalar(0, "i0")),
                                          try int64Scalar(length - 1, "last")))
                kept.append(weight)
            }
        }
        // Every index and weight over the whole grid (nearest's weight is one number).
        var full: [View] = [], weighted: [View] = []
        for (index, weight) in zip(indices, kept) {
            guard let i = index.broadcast(to: g.dims), let w = weight.broadcast(to: g.dims) else {
                throw shapeError("GridSample's taps do not fit the grid \(g.dims)")
            }
            full.append(i)
            weighted.append(w)
        }
        return Taps(indices: full, weights: weighted)
    }

    /// x reflected into [low, high] (a triangle wave of period 2 (high − low)).
    private func reflect(_ x: View, low: Double, high: Double, name: String) throws(NeuronCompilerError) -> View {
        let span = high - low
        guard span > 0 else { return try binary(.mul, x, try scalar(0, "flat\(name)")) }
        let t = try binary(.mod, try binary(.sub, x, try scalar(Float(low), "low\(name)")), try scalar(Float(2 * span), "period\(name)"))
        let folded = try select(try compare(.le, t, try scalar(Float(span), "span\(name)")), t,
                                try binary(.sub, try scalar(Float(2 * span), "period\(name)"), t))
        return try binary(.add, folded, try scalar(Float(low), "low\(name)"))
    }

    /// Keys's cubic weights of the taps −1, 0, 1, 2 for the fraction t.
    private func cubicWeights(_ t: View, name: String) throws(NeuronCompilerError) -> [View] {
        let a = -0.75
        func f(_ value: Double, _ what: String) throws(NeuronCompilerError) -> View { try scalar(Float(value), "\(what)\(name)") }
        // Outer taps (distance d in [1, 2]): ((a d − 5a) d + 8a) d − 4a; inner (d in [0, 1]): ((a + 2) d − (a + 3)) d² + 1.
        func outer(_ d: View) throws(NeuronCompilerError) -> View {
            let p = try binary(.sub, try binary(.mul, d, try f(a, "a")), try f(5 * a, "5a"))
            let q = try binary(.add, try binary(.mul, p, d), try f(8 * a, "8a"))
            return try binary(.sub, try binary(.mul, q, d), try f(4 * a, "4a"))
        }
        func inner(_ d: View) throws(NeuronCompilerError) -> View {
            let p = try binary(.sub, try binary(.mul, d, try f(a + 2, "a2")), try f(a + 3, "a3"))
            return try binary(.add, try binary(.mul, try binary(.mul, p, d), d), try f(1, "one"))
        }
        let one = try f(1, "one"), two = try f(2, "two")
        return [try outer(try binary(.add, t, one)), try inner(t), try inner(try binary(.sub, one, t)), try outer(try binary(.sub, two, t))]
    }
}
