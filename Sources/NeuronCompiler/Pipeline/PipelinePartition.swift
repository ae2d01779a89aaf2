/// Pipeline partitioning (--neuroncore-pipeline-cores): the bound
/// instructions split into contiguous stages of about equal estimated
/// work, one per NeuronCore.
enum PipelinePartition {
    /// Contiguous runs of the instructions, one per NeuronCore, whose
    /// largest estimated work is as small as can be (the pipeline runs at
    /// the pace of its slowest stage). Fewer stages when there are fewer
    /// instructions than cores.
    static func stages(_ instructions: [BoundInstruction], cores: Int) -> [(range: Range<Int>, work: Double)] {
        guard cores > 1, instructions.count > 1 else { return [(0..<instructions.count, 0)] }
        let work = instructions.map { estimatedWork($0) }
        return partition(work, parts: min(cores, work.count))
    }

    /// Time an instruction takes on the engine, roughly in cycles of one
    /// CPU, calibrated on its kernels: a multiply-add of MATMUL and CONV2D
    /// costs about 1/8 (two vector FMAs a cycle, most of the time), with
    /// positions of a convolution rounded up to the 16 of its register
    /// block and its weights read once per part (about 2.5 a weight, as
    /// late layers' large weights stream from memory; 1 when packed, read
    /// in place); other instructions
    /// about 2 an element, and each one 64 more.
    static func estimatedWork(_ insn: BoundInstruction) -> Double {
        func count(_ dims: ArraySlice<UInt32>) -> Double { dims.reduce(1.0) { $0 * Double($1) } }
        let out = insn.views.first.map { count($0.dims[...]) } ?? 1
        switch insn.kind {
        case .conv(_, _, _, _, .winograd(let t), _):
            // (t + 2)² products per t x t tile and input channel, tiles by 16; transforms.
            let o = insn.views[0].dims, w = insn.views[2].dims
            guard o.count == 4, w.count == 4, t > 0 else { return out * 2 + 64 }
            let size = UInt32(t), xis = Double((t + 2) * (t + 2))
            let tiles = (Double((o[2] + size - 1) / size * ((o[3] + size - 1) / size)) / 16).rounded(.up) * 16
            let co = Double(o[1]), ci = Double(w[2])
            return Double(o[0]) * tiles * (xis * co * ci / 8 + 1.5 * xis * ci + xis * co) + 64
        case .conv(_, _, _, _, let weights, _):
            let packed = weights == .packed
            let o = insn.views[0].dims, w = insn.views[2].dims
            guard o.count == 4, w.count == (packed ? 5 : 4) else { return out * 2 + 64 }
            let taps = count(w[1...3]), positions = (Double(o[2]) * Double(o[3]) / 16).rounded(.up) * 16
            return Double(o[0]) * (Double(o[1]) * positions * taps / 8 + (packed ? 1 : 2.5) * Double(o[1]) * taps) + 64
        case .matmul:
            let a = insn.views[1].dims, o = insn.views[0].dims   // B may be in panels: N is out's
            let k = Double(a.last ?? 1), n = Double(o.last ?? 1)
            return out * k / 8 + 2.5 * k * n + 64
        case .reduce, .softmax, .layerNorm:
            return count(insn.views[1].dims[...]) * 3 + 64
        case .pool(_, let kernel, _, _):
            return out * Double(kernel.h * kernel.w) + 64
        default:
            return out * 2 + 64
        }
    }

    /// Split `work` into `parts` contiguous non-empty runs minimising the
    /// largest sum: a binary search on that sum, each probe a greedy fill.
    static func partition(_ work: [Double], parts: Int) -> [(range: Range<Int>, work: Double)] {
        func cuts(limit: Double) -> [Range<Int>]? {
            var runs: [Range<Int>] = [], start = 0, sum = 0.0
            for (index, item) in work.enumerated() {
                if item > limit { return nil }
                // Leave at least one instruction for each later run.
                let remainingRuns = parts - runs.count - 1
                if index > start && (sum + item > limit || work.count - index <= remainingRuns) {
                    runs.append(start..<index)
                    start = index
                    sum = 0
                }
                sum += item
            }
            runs.append(start..<work.count)
            return runs.count <= parts ? runs : nil
        }
        var low = work.max() ?? 0, high = work.reduce(0, +)
        for _ in 0..<60 where high - low > high * 1e-6 {
            let mid = (low + high) / 2
            if cuts(limit: mid) != nil { high = mid } else { low = mid }
        }
        var runs = cuts(limit: high) ?? [0..<work.count]
        // Every core gets a stage: split the longest runs while there are too few.
        while runs.count < parts, let longest = runs.indices.max(by: { runs[$0].count < runs[$1].count }),
              runs[longest].count > 1 {
            let run = runs[longest], middle = run.lowerBound + run.count / 2
            runs.replaceSubrange(longest...longest, with: [run.lowerBound..<middle, middle..<run.upperBound])
        }
        return runs.map { ($0, work[$0].reduce(0, +)) }
    }
}
