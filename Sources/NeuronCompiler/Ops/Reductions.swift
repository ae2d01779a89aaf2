import Foundation
import NeuronISA

/// Reductions over any axes: one REDUCE over a view whose reduced axes are
/// merged into one last axis (in place when they are dense, else copied),
/// with the elementwise steps before and after it that ReduceL1, ReduceL2,
/// ReduceSumSquare, ReduceLogSum and ReduceLogSumExp add.
extension ONNXOps {
    static let reductions: [ONNXOp] = [
        reduce("ReduceSum", .plain(.sum)), reduce("ReduceMean", .plain(.mean)),
        reduce("ReduceMax", .plain(.max)), reduce("ReduceMin", .plain(.min)),
        reduce("ReduceL1", .l1), reduce("ReduceL2", .l2), reduce("ReduceSumSquare", .sumSquare),
        reduce("ReduceLogSum", .logSum), reduce("ReduceLogSumExp", .logSumExp), reduce("ReduceProd", .plain(.prod)),
        argReduce("ArgMax", .argmax), argReduce("ArgMin", .argmin),
        ONNXOp("TopK", takes: numeric, typedInputs: 1) { l in try l.lowerTopK() },
    ]

    /// ArgMax or ArgMin over one axis into int64: the first index of the
    /// extreme, or the last with select_last_index; NaN is the extreme.
    static func argReduce(_ name: String, _ op: NeuronReduceOp) -> ONNXOp {
        ONNXOp(name, takes: numeric) { l in
            let x = try l.typedTensor(0)
            let a = try l.axis(try l.int("axis", 0), rank: x.rank)
            let index = try l.indexOfExtreme(op, x, axis: a, last: try l.int("select_last_index", 0) != 0)
            l.set(0, .tensor(try l.int("keepdims", 1) != 0 ? index : try l.reshapeView(index, to: x.dims.enumerated().filter { $0.offset != a }.map(\.element))))
        }
    }

    static func reduce(_ name: String, _ kind: Reduction) -> ONNXOp {
        // Input 1, the axes from opset 13 or 18, is checked as a constant by lowerReduce.
        ONNXOp(name, takes: floats, typedInputs: 1, fold: whenKnown { l, first, _ in try l.foldReduce(kind, first) }) { l in
            try l.lowerReduce(kind)
        }
    }
}

/// What a reduction op computes over the reduced elements.
enum Reduction: Sendable {
    /// One REDUCE: sum, mean, max or min.
    case plain(NeuronReduceOp)
    /// Σ|x|.
    case l1
    /// sqrt(Σx²).
    case l2
    /// Σx².
    case sumSquare
    /// log(Σx).
    case logSum
    /// log(Σexp(x)), as max + log(Σexp(x − max)) so that it does not overflow.
    case logSumExp
}

extension Lowering {
    /// The reduced axes of the current reduction node over a tensor of `rank`.
    func reducedAxes(rank: Int) throws(NeuronCompilerError) -> Set<Int> {
        var axes: [Int]
        if current.op == "ReduceSum" && graph.opset >= 13 || graph.opset >= 18 {
            axes = hasInput(1) ? try integers(1, what: "the axes") : []
        } else {
            axes = try ints("axes") ?? []
        }
        if axes.isEmpty {
            // No axes: all of them, or none with noop_with_empty_axes.
            return try int("noop_with_empty_axes", 0) == 0 ? Set(0..<rank) : []
        }
        var reduced = Set<Int>()
        for raw in axes { reduced.insert(try axis(raw, rank: rank)) }
        return reduced
    }

    /// A reduction of a known tensor (shape arithmetic: ReduceProd of a
    /// Shape's dims), in double; an empty set reduces to the operation's
    /// identity (0, 1, the lowest or highest value, -inf for the logs).
    func foldReduce(_ kind: Reduction, _ x: ConstantTensor) throws(NeuronCompilerError) -> ConstantTensor {
        let reduced = try reducedAxes(rank: x.shape.count)
        let keep = try int("keepdims", 1) != 0
        let outShape = x.shape.enumerated().compactMap { reduced.contains($0.offset) ? (keep ? 1 : nil) : $0.element }
        let count = try foldedCount(outShape, what: current.op)
        let values = x.doubles()
        var groups = [[Double]](repeating: [], count: count)
        let keptShape = x.shape.enumerated().map { reduced.contains($0.offset) ? 1 : $0.element }
        var at = 0
        forEachIndex(x.shape) { index in
            var flat = 0
            for (axis, value) in index.enumerated() { flat = flat * keptShape[axis] + (reduced.contains(axis) ? 0 : value) }
            groups[flat].append(values[at])
            at += 1
        }
        let integral = !x.type.isFloatingPoint
        let results = groups.map { group -> Double in
            switch kind {
            case .plain(.sum): return group.reduce(0, +)
            case .plain(.mean): return group.isEmpty ? .nan : group.reduce(0, +) / Double(group.count)
            case .plain(.prod): return group.reduce(1, *)
            // an empty group: the type's lowest (false) or highest (true)
            case .plain(.max): return group.max() ?? (x.type == .bool ? 0 : integral ? -0x1p63 : -.infinity)
            case .plain(.min): return group.min() ?? (x.type == .bool ? 1 : integral ? 0x1p63 : .infinity)
            case .plain: return .nan
            case .l1: return group.reduce(0) { $0 + abs($1) }
            case .l2: return group.reduce(0) { $0 + $1 * $1 }.squareRoot()
            case .sumSquare: return group.reduce(0) { $0 + $1 * $1 }
            case .logSum: return Foundation.log(group.reduce(0, +))
            case .logSumExp:
                guard let top = group.max(), top.isFinite else { return group.max() ?? -.infinity }
                return top + Foundation.log(group.reduce(0) { $0 + Foundation.exp($1 - top) })
            }
        }
        return .make(x.type, outShape, results)
    }

    func lowerReduce(_ kind: Reduction) throws(NeuronCompilerError) {
        let x = try typedTensor(0)
        let keep = try int("keepdims", 1) != 0
        let reduced = try reducedAxes(rank: x.rank)
        let result: View
        switch kind {
        case .plain(let op):
            guard !reduced.isEmpty else {
                set(0, .tensor(x))
                return
            }
            result = try reduce(op, x, over: reduced)
        case .l1: result = try reduce(.sum, try apply(.abs, x), over: reduced)
        case .l2: result = try apply(.sqrt, try reduce(.sum, try binary(.mul, x, x), over: reduced))
        case .sumSquare: result = try reduce(.sum, try binary(.mul, x, x), over: reduced)
        case .logSum: result = try apply(.log, try reduce(.sum, x, over: reduced))
        case .logSumExp:
            let top = try reduce(.max, x, over: reduced)
            let sum = try reduce(.sum, try apply(.exp, try binary(.sub, x, top)), over: reduced)
            result = try binary(.add, try apply(.log, sum), top)
        }
        let keptDims = (0..<x.rank).filter { !reduced.contains($0) }.map { x.dims[$0] }
        set(0, .tensor(keep ? result : try reshapeView(result, to: keptDims)))
    }

    /// `x` reduced by `op` over the axes `reduced`, which stay as axes of
    /// 1 (an empty set reduces nothing: `x` itself).
    func reduce(_ op: NeuronReduceOp, _ x: View, over reduced: Set<Int>) throws(NeuronCompilerError) -> View {
        guard !reduced.isEmpty else { return x }
        let kept = (0..<x.rank).filter { !reduced.contains($0) }
        var permuted = x.permuted(kept + reduced.sorted())
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
            merged = View(buffer: permuted.buffer, type: x.type, offset: permuted.offset, dims: keptDims + [span])
        }
        let out = try temp(x.type, keptDims + [1])
        emit(.reduce(op), [out, merged])
        return try reshapeView(out, to: (0..<x.rank).map { reduced.contains($0) ? 1 : x.dims[$0] })
    }

    /// TopK: one TOPK (ISA 1.7) over the axis (moved last) and one GATHER
    /// of the values. Equal values come lower index first, NaN before any
    /// number; the result is sorted whatever `sorted` says.
    func lowerTopK() throws(NeuronCompilerError) {
        let x = try typedTensor(0)
        guard let k = (try integers(1, what: "k")).first, k >= 1 else { throw invalid("k must be at least 1") }
        let a = try axis(try int("axis", -1), rank: x.rank)
        let n = x.dims[a]
        guard k <= n else { throw shapeError("k = \(k) is more than axis \(a)'s \(n) elements") }
        let largest = try int("largest", 1) != 0
        var perm = Array(0..<x.rank)
        perm.remove(at: a)
        perm.append(a)
        let rowCount = x.dims.enumerated().filter { $0.offset != a }.map(\.element).reduce(1, *)
        let rows = try reshapeView(contiguous(x.permuted(perm)), to: [rowCount, n])
        // One TOPK picks the indices; one GATHER reads their values from
        // the rows seen as one column (each row's start added).
        let indices = try temp(.int64, [rowCount, k])
        emit(.topK(largest ? .largest : .smallest), [indices, rows])
        let starts = try weightView(.make(.int64, [rowCount, 1], (0..<rowCount).map { Double($0 * n) }), name: "\(current.name)#starts")
        let picked = try temp(x.type, [rowCount, k, 1])
        emit(.gather, [picked, try reshapeView(rows, to: [rowCount * n, 1]),
                       rowCount == 1 ? indices : try binary(.add, indices, starts)])
        let values = try reshapeView(picked, to: [rowCount, k])
        var outDims = perm.map { x.dims[$0] }
        outDims[outDims.count - 1] = k
        var inverse = perm
        for (position, axis) in perm.enumerated() { inverse[axis] = position }
        set(0, .tensor(try reshapeView(values, to: outDims).permuted(inverse)))
        set(1, .tensor(try reshapeView(indices, to: outDims).permuted(inverse)))
    }

    /// ARGMAX or ARGMIN of `x` over `axis` into int64, the axis kept as 1.
    func indexOfExtreme(_ op: NeuronReduceOp, _ x: View, axis a: Int, last: Bool) throws(NeuronCompilerError) -> View {
        var perm = Array(0..<x.rank)
        perm.remove(at: a)
        perm.append(a)
        let rows = x.permuted(perm)
        let out = try temp(.int64, Array(rows.dims.dropLast()) + [1])
        emit(.reduceIndex(op, last: last), [out, rows])
        var dims = x.dims
        dims[a] = 1
        return try reshapeView(out, to: dims)
    }

    /// `x` reduced by `op` over its last axis (kept as an axis of 1).
    func reduceLast(_ op: NeuronReduceOp, _ x: View) throws(NeuronCompilerError) -> View {
        try reduce(op, x, over: [x.rank - 1])
    }
}
