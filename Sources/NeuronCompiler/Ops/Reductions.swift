import NeuronISA

/// Reductions over any axes: one REDUCE over a view whose reduced axes are
/// merged into one last axis (in place when they are dense, else copied).
extension ONNXOps {
    static let reductions: [ONNXOp] = [
        reduce("ReduceSum", .sum), reduce("ReduceMean", .mean), reduce("ReduceMax", .max), reduce("ReduceMin", .min),
    ]

    static func reduce(_ name: String, _ op: NeuronReduceOp) -> ONNXOp {
        // Input 1, the axes from opset 13 or 18, is checked as a constant by lowerReduce.
        ONNXOp(name, takes: [.float32], typedInputs: 1) { l in try l.lowerReduce(op) }
    }
}

extension Lowering {
    func lowerReduce(_ op: NeuronReduceOp) throws(NeuronCompilerError) {
        let x = try floatTensor(0)
        let keep = try int("keepdims", 1) != 0
        var axes: [Int]
        if current.op == "ReduceSum" && graph.opset >= 13 || graph.opset >= 18 {
            axes = hasInput(1) ? try integers(1, what: "the axes") : []
        } else {
            axes = try ints("axes") ?? []
        }
        if axes.isEmpty {
            if try int("noop_with_empty_axes", 0) != 0 {
                set(0, .tensor(x))
                return
            }
            axes = Array(0..<x.rank)
        }
        var reduced = Set<Int>()
        for raw in axes { reduced.insert(try axis(raw, rank: x.rank)) }
        let kept = (0..<x.rank).filter { !reduced.contains($0) }
        let order = kept + reduced.sorted()
        var permuted = x.permuted(order)
        let keptDims = kept.map { x.dims[$0] }, span = reduced.map { x.dims[$0] }.reduce(1, *)
        // The reduced axes as one last axis: in place when they are dense
        // among themselves, else after a copy.
        var merged = permuted
        merged.dims = keptDims + [span]
        let tail = Array(permuted.strides.suffix(reduced.count)), tailDims = Array(permuted.dims.suffix(reduced.count))
        var dense = true
        for i in 0..<max(0, tail.count - 1) where tailDims[i] > 1 && tail[i] != tail[i + 1] * tailDims[i + 1] {
            dense = false
        }
        if dense {
            merged.strides = Array(permuted.strides.prefix(kept.count)) + [tail.last ?? 1]
        } else {
            permuted = contiguous(permuted)
            merged = View(buffer: permuted.buffer, type: .float32, offset: permuted.offset, dims: keptDims + [span])
        }
        let out = try temp(.float32, keptDims + [1])
        emit(.reduce(op), [out, merged])
        let outDims = keep ? (0..<x.rank).map { reduced.contains($0) ? 1 : x.dims[$0] } : keptDims
        set(0, .tensor(try reshapeView(out, to: outDims)))
    }
}
