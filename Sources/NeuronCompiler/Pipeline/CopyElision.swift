/// Copy elision, after lowering: copies that only move a value from one
/// temporary buffer to another disappear, the two buffers becoming one.
enum CopyElision {
    /// A COPY from a whole temp whose last use it is into a whole buffer
    /// it starts is dropped: the two become one buffer, the output's when
    /// the destination is a graph output, else the source's (so a residual
    /// that a convolution then accumulates into stays where it is).
    static func run(_ lowering: Lowering) {
        let (first, last) = lowering.lifetimes()
        let buffers = lowering.buffers
        var renamed: [Int: Int] = [:]
        func resolve(_ buffer: Int) -> Int { renamed[buffer].map(resolve) ?? buffer }
        func whole(_ view: View) -> Bool {
            view.offset == 0 && view.strides == View.rowMajor(view.dims)
                && buffers[view.buffer].bytes == max(1, view.count) * view.type.size
        }
        var kept: [AbstractOp] = []
        for (index, op) in lowering.ops.enumerated() {
            if case .copy = op.kind, op.operands.count == 2 {
                let dst = op.operands[0], src = op.operands[1], from = resolve(src.buffer)
                var output = false
                if case .output = buffers[dst.buffer].kind { output = true }
                if dst.buffer != src.buffer, from != dst.buffer, whole(dst), whole(src), dst.type == src.type,
                   dst.dims == src.dims, first[dst.buffer] == index, last[src.buffer] == index,
                   buffers[src.buffer].kind == .temp, buffers[from].kind == .temp,
                   output || buffers[dst.buffer].kind == .temp {
                    if output { renamed[from] = dst.buffer } else { renamed[dst.buffer] = from }
                    continue
                }
            }
            kept.append(op)
        }
        for i in kept.indices {
            for j in kept[i].operands.indices { kept[i].operands[j].buffer = resolve(kept[i].operands[j].buffer) }
        }
        lowering.ops = kept
    }
}
