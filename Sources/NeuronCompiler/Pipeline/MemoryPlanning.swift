/// Memory planning, after copy elision: every temporary buffer gets an
/// offset in one scratch arena, buffers alive at the same time apart.
struct ArenaPlan {
    /// Byte offsets in the arena, by buffer.
    var offsets: [Int: Int]
    /// The arena: the most intermediate bytes alive at once.
    var bytes: Int
    /// What the temporaries would take without reuse.
    var unplannedBytes: Int

    /// The plan for `lowering`'s temporaries, by the lifetimes of its instructions.
    init(_ lowering: Lowering) {
        let buffers = lowering.buffers
        let (first, last) = lowering.lifetimes()
        let temps = buffers.indices.filter { buffers[$0].kind == .temp && last[$0] >= 0 }
        let placement = MemoryPlanner.plan(temps.map { (id: $0, bytes: buffers[$0].bytes, first: first[$0], last: last[$0]) },
                                           alignment: Lowering.alignment)
        offsets = placement.offsets
        bytes = placement.peak
        unplannedBytes = temps.reduce(0) { $0 + (buffers[$1].bytes + Lowering.alignment - 1) / Lowering.alignment * Lowering.alignment }
    }
}

/// Packs buffers into one arena so that buffers alive at the same time
/// never overlap: largest first, each at the lowest offset that clears
/// every placed buffer whose lifetime meets its own.
enum MemoryPlanner {
    static func plan(_ buffers: [(id: Int, bytes: Int, first: Int, last: Int)], alignment: Int)
        -> (offsets: [Int: Int], peak: Int) {
        var placed: [(offset: Int, end: Int, first: Int, last: Int)] = []
        var offsets: [Int: Int] = [:]
        var peak = 0
        let order = buffers.sorted { ($0.bytes, $1.first) > ($1.bytes, $0.first) }
        for buffer in order {
            let size = (buffer.bytes + alignment - 1) / alignment * alignment
            let conflicts = placed.filter { $0.first <= buffer.last && buffer.first <= $0.last }
                .sorted { $0.offset < $1.offset }
            var offset = 0
            for other in conflicts where other.offset < offset + size {
                if other.end > offset { offset = (other.end + alignment - 1) / alignment * alignment }
            }
            placed.append((offset, offset + size, buffer.first, buffer.last))
            offsets[buffer.id] = offset
            peak = max(peak, offset + size)
        }
        return (offsets, peak)
    }
}
