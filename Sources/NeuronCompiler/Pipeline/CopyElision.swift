/// Copy elision, after lowering: copies that only move a value from one
/// temporary buffer to another disappear, the two buffers becoming one.
enum CopyElision {
    /// Where a buffer's elements went: into `buffer`, `shift` elements on.
    struct Place {
        var buffer: Int
        var shift: Int
    }

    /// A COPY from a whole temp whose last use it is is dropped when it
    /// goes
    /// - into a whole buffer it starts: the two become one buffer, the
    ///   output's when the destination is a graph output, else the
    ///   source's (so a residual that a convolution then accumulates into
    ///   stays where it is);
    /// - into a contiguous part of a temp or output buffer (a Concat's
    ///   slice along its first axis that is not 1, or a batch of one's
    ///   channels): the source's producers then write their part of the
    ///   destination directly, provided no instruction from the source's
    ///   first use to the copy touches that part. Chains (DenseNet's
    ///   growing concatenations) fold into the last buffer.
    static func run(_ lowering: Lowering) {
        let (first, last) = lowering.lifetimes()
        let buffers = lowering.buffers
        var renamed: [Int: Place] = [:]
        // The first instruction that uses a buffer or one placed in it.
        var since = first
        // Buffers viewed with elements of more than one size: a shift in
        // elements would mean two things there.
        var sizes: [Int: Int] = [:], mixed = Set<Int>()
        for op in lowering.ops {
            for view in op.operands {
                if let size = sizes[view.buffer], size != view.type.size { mixed.insert(view.buffer) }
                sizes[view.buffer] = view.type.size
            }
        }
        func resolve(_ buffer: Int) -> Place {
            guard let place = renamed[buffer] else { return Place(buffer: buffer, shift: 0) }
            let next = resolve(place.buffer)
            return Place(buffer: next.buffer, shift: next.shift + place.shift)
        }
        func whole(_ view: View) -> Bool {
            view.offset == 0 && view.strides == View.rowMajor(view.dims)
                && buffers[view.buffer].bytes == max(1, view.count) * view.type.size
        }
        /// Whether `view`'s elements lie in row-major order, side by side
        /// (axes of one element have any stride).
        func dense(_ view: View) -> Bool {
            var step = 1
            for (dim, stride) in zip(view.dims, view.strides).reversed() {
                if dim > 1, stride != step { return false }
                step *= dim
            }
            return true
        }
        /// The elements `view` reaches, first and last, where its buffer now lies.
        func extent(_ view: View) -> (buffer: Int, low: Int, high: Int) {
            let place = resolve(view.buffer)
            var low = view.offset + place.shift, high = low
            for (dim, stride) in zip(view.dims, view.strides) where dim > 1 {
                if stride < 0 { low += (dim - 1) * stride } else { high += (dim - 1) * stride }
            }
            return (place.buffer, low, high)
        }
        var kept: [AbstractOp] = []
        for (index, op) in lowering.ops.enumerated() {
            if case .copy = op.kind, op.operands.count == 2 {
                let dst = op.operands[0], src = op.operands[1], from = resolve(src.buffer)
                var output = false
                if case .output = buffers[dst.buffer].kind { output = true }
                let eligible = dst.buffer != src.buffer && from.buffer != resolve(dst.buffer).buffer && whole(src)
                    && dst.type == src.type && dst.dims == src.dims && last[src.buffer] == index
                    && buffers[src.buffer].kind == .temp && buffers[from.buffer].kind == .temp
                    && (output || buffers[dst.buffer].kind == .temp)
                if eligible, whole(dst), first[dst.buffer] == index, from.shift == 0 {
                    if output {
                        renamed[from.buffer] = Place(buffer: dst.buffer, shift: 0)
                        since[dst.buffer] = min(since[dst.buffer], since[from.buffer])
                    } else {
                        renamed[dst.buffer] = from
                    }
                    continue
                }
                if eligible, dense(dst), renamed[dst.buffer] == nil, from.shift == 0,
                   !mixed.contains(from.buffer), !mixed.contains(dst.buffer),
                   untouched(extent(dst), from: since[from.buffer], to: index, lowering.ops, extent) {
                    renamed[from.buffer] = Place(buffer: dst.buffer, shift: dst.offset)
                    since[dst.buffer] = min(since[dst.buffer], since[from.buffer])
                    continue
                }
            }
            kept.append(op)
        }
        for i in kept.indices {
            for j in kept[i].operands.indices {
                let place = resolve(kept[i].operands[j].buffer)
                kept[i].operands[j].buffer = place.buffer
                kept[i].operands[j].offset += place.shift
            }
        }
        lowering.ops = kept
    }

    /// Whether no instruction in `from..<to` reaches the elements `part`
    /// (a buffer's `low...high`), with the buffers as they now lie.
    static func untouched(_ part: (buffer: Int, low: Int, high: Int), from: Int, to: Int, _ ops: [AbstractOp],
                          _ extent: (View) -> (buffer: Int, low: Int, high: Int)) -> Bool {
        guard from <= to else { return false }
        for op in ops[from..<to] {
            for view in op.operands {
                let reach = extent(view)
                if reach.buffer == part.buffer, reach.low <= part.high, part.low <= reach.high { return false }
            }
        }
        return true
    }
}
