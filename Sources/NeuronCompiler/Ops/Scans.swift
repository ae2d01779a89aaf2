import NeuronISA

/// Running sums and products along one axis (CumSum, CumProd), of any
/// numeric type: a log-step scan, each step one BINARY over the axis
/// shifted by 1, 2, 4, ... and a COPY of the part that stays.
extension ONNXOps {
    static let scans: [ONNXOp] = [
        scan("CumSum", .add, identity: 0),
        scan("CumProd", .mul, identity: 1),
    ]

    static func scan(_ name: String, _ op: NeuronBinaryOp, identity: Float) -> ONNXOp {
        ONNXOp(name, takes: numeric, typedInputs: 1) { l in
            let x = try l.typedTensor(0)
            guard let axis = (try l.integers(1, what: "the axis")).first, l.constant(1)?.shape.reduce(1, *) == 1 else {
                throw l.invalid("the axis (input 1) must be one integer")
            }
            let a = try l.axis(axis, rank: x.rank)
            l.set(0, .tensor(try l.scan(op, x, axis: a, identity: identity,
                                        exclusive: try l.int("exclusive", 0) != 0,
                                        reverse: try l.int("reverse", 0) != 0)))
        }
    }
}

extension Lowering {
    /// `view` restricted to [start, start + count) along `axis`.
    func slab(_ view: View, axis: Int, from start: Int, count: Int) -> View {
        var part = view
        part.offset += start * view.strides[axis]
        part.dims[axis] = count
        return part
    }

    /// The inclusive (or exclusive: shifted by one, `identity` first) scan
    /// of `x` by `op` along `axis`, first to last or (reverse) last to
    /// first. ceil(log2 n) steps of two instructions each (Hillis and
    /// Steele), so the sums are grouped as a tree, not left to right.
    func scan(_ op: NeuronBinaryOp, _ x: View, axis a: Int, identity: Float,
              exclusive: Bool, reverse: Bool) throws(NeuronCompilerError) -> View {
        let n = x.dims[a]
        var current = copied(x)
        if exclusive {
            let shifted = temp(x.type, like: x)
            if n > 1 {
                emit(.copy, [slab(shifted, axis: a, from: reverse ? 0 : 1, count: n - 1),
                             slab(current, axis: a, from: reverse ? 1 : 0, count: n - 1)])
            }
            emit(.fill(identity), [slab(shifted, axis: a, from: reverse ? n - 1 : 0, count: 1)])
            current = shifted
        }
        var step = 1
        while step < n {
            let next = temp(x.type, like: x)
            // The first `step` (reverse: last) stay; the others take in the one `step` before (after).
            let keep = reverse ? n - step : 0
            emit(.copy, [slab(next, axis: a, from: keep, count: step), slab(current, axis: a, from: keep, count: step)])
            let moved = reverse ? 0 : step
            emit(.binary(op), [slab(next, axis: a, from: moved, count: n - step),
                               slab(current, axis: a, from: moved, count: n - step),
                               slab(current, axis: a, from: reverse ? step : 0, count: n - step)])
            current = next
            step *= 2
        }
        return current
    }
}
