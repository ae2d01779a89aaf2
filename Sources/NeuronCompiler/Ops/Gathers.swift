import NeuronISA

/// GatherElements and GatherND: the position of each picked element (or
/// row) in the data as one flat int64 index, computed on the NeuronCore
/// from the run-time indices (negative ones counted from the end), then one
/// GATHER from the data seen as a column [elements, 1] (or as rows). An
/// index out of its axis becomes one past the table, so that GATHER faults
/// on it as on any index out of range.
extension ONNXOps {
    static let gathers: [ONNXOp] = [
        ONNXOp("GatherElements") { l in try l.lowerGatherElements() },
        ONNXOp("GatherND") { l in try l.lowerGatherND() },
        ONNXOp("ReverseSequence") { l in try l.lowerReverseSequence() },
        ONNXOp("ScatterElements") { l in try l.lowerScatterElements() },
        ONNXOp("Scatter") { l in try l.lowerScatterElements() },   // opset 9-10's name
        ONNXOp("ScatterND") { l in try l.lowerScatterND() },
        ONNXOp("TensorScatter") { l in try l.lowerTensorScatter() },
        ONNXOp("MaxUnpool", takes: [.float32], typedInputs: 1) { l in try l.lowerMaxUnpool() },
        ONNXOp("AffineGrid", takes: [.float32], typedInputs: 1) { l in try l.lowerAffineGrid() },
    ]
}

extension Lowering {
    /// `index` (int64) checked against an axis of `dim`: negative ones
    /// counted from the end, and `valid` (bool) false outside [-dim, dim).
    func normalizedIndex(_ index: View, dim: Int) throws(NeuronCompilerError) -> (index: View, valid: View) {
        let size = try weightView(.make(.int64, [], [Double(dim)]), name: "\(current.name)#dim\(dim)", as: .int64)
        let low = try weightView(.make(.int64, [], [Double(-dim)]), name: "\(current.name)#low\(dim)", as: .int64)
        let zero = try weightView(.make(.int64, [], [0]), name: "\(current.name)#zero", as: .int64)
        let valid = try binary(.and, try compare(.ge, index, low), try compare(.lt, index, size))
        let wrapped = try select(try compare(.lt, index, zero), try binary(.add, index, size), index)
        return (wrapped, valid)
    }

    /// GATHER of the rows `flat` (int64, any shape; invalid ones sent past
    /// the end) of `table` [rows, width].
    func gatherRows(_ table: View, _ flat: View, valid: View) throws(NeuronCompilerError) -> View {
        let rows = table.dims[0]
        let past = try weightView(.make(.int64, [], [Double(rows)]), name: "\(current.name)#past", as: .int64)
        let checked = try select(valid, flat, past)
        let indices = try reshapeView(checked, to: [checked.count])
        let out = try temp(table.type, [checked.count, table.dims[1]])
        emit(.gather, [out, table, indices])
        return out
    }

    func lowerGatherElements() throws(NeuronCompilerError) {
        let data = try tensor(0), given = try tensor(1)
        guard given.type == .int32 || given.type == .int64 else {
            throw unsupported("the indices are \(given.type.name); int32 or int64 are supported")
        }
        guard given.rank == data.rank, data.rank >= 1 else {
            throw shapeError("the indices \(given.dims) and the data \(data.dims) must have the same rank")
        }
        let a = try axis(try int("axis", 0), rank: data.rank)
        for k in 0..<data.rank where k != a && given.dims[k] > data.dims[k] {
            throw shapeError("the indices \(given.dims) pass the data \(data.dims) on axis \(k)")
        }
        set(0, .tensor(try gatherElements(data, converted(given, to: .int64), axis: a)))
    }

    /// out[i...] = data[i... with i[axis] = index[i...]]; `index` int64 of
    /// the output's shape (a view, broadcast or not).
    func gatherElements(_ data: View, _ given: View, axis a: Int) throws(NeuronCompilerError) -> View {
        let (flat, valid) = try elementPositions(dims: data.dims, given, axis: a)
        let column = try reshapeView(contiguous(data), to: [data.count, 1])
        return try reshapeView(try gatherRows(column, flat, valid: valid), to: given.dims)
    }

    /// The flat position in a row-major tensor of `dims` of the element
    /// at i... with i[axis] = index[i...], and whether index was in range.
    func elementPositions(dims: [Int], _ given: View, axis a: Int) throws(NeuronCompilerError) -> (View, View) {
        let (index, valid) = try normalizedIndex(given, dim: dims[a])
        // flat = index * stride(axis) + the position along every other axis.
        let strides = View.rowMajor(dims)
        var base: [Double] = []
        base.reserveCapacity(try foldedCount(given.dims, what: "\(current.op)'s positions"))
        forEachIndex(given.dims) { at in
            base.append(Double(at.enumerated().reduce(0) { $1.offset == a ? $0 : $0 + $1.element * strides[$1.offset] }))
        }
        let offsets = try weightView(.make(.int64, given.dims, base), name: "\(current.name)#positions", as: .int64)
        let stride = try weightView(.make(.int64, [], [Double(strides[a])]), name: "\(current.name)#stride", as: .int64)
        return (try binary(.add, try binary(.mul, index, stride), offsets), valid)
    }

    /// SCATTER of `updates` (one per position of `flat`, int64; invalid
    /// ones sent past the end, where SCATTER faults) onto a copy of `data`.
    func scattered(_ data: View, _ flat: View, valid: View, updates: View) throws(NeuronCompilerError) -> View {
        guard updates.count == flat.count, updates.type == data.type else {
            throw shapeError("updates \(updates.dims) (\(updates.type.name)) do not fit \(flat.count) positions of \(data.type.name)")
        }
        let op: NeuronScatterOp
        switch try string("reduction", "none") {
        case "none": op = .set
        case "add": op = .add
        case "mul": op = .mul
        case "max": op = .max
        case "min": op = .min
        case let other: throw unsupported("reduction=\(other)")
        }
        guard op == .set || data.type != .bool else { throw unsupported("reduction=\(op) of bool") }
        let out = copied(data)
        let past = try int64Scalar(data.count, "past-data")
        let positions = try reshapeView(try select(valid, flat, past), to: [flat.count])
        let values = try reshapeView(contiguous(updates), to: [updates.count])
        // In order, in instructions of at most 2^20 updates (a SCATTER is never cut).
        let target = try reshapeView(out, to: [data.count])
        var start = 0
        while start < flat.count {
            let count = min(1 << 20, flat.count - start)
            emit(.scatter(op), [target, slab(positions, axis: 0, from: start, count: count), slab(values, axis: 0, from: start, count: count)])
            start += count
        }
        return out
    }

    func lowerScatterElements() throws(NeuronCompilerError) {
        let data = try tensor(0), given = try tensor(1), updates = try tensor(2)
        guard given.type == .int32 || given.type == .int64 else {
            throw unsupported("the indices are \(given.type.name); int32 or int64 are supported")
        }
        guard given.rank == data.rank, updates.dims == given.dims else {
            throw shapeError("indices \(given.dims) and updates \(updates.dims) must match and have the data's rank (\(data.dims))")
        }
        let a = try axis(try int("axis", 0), rank: data.rank)
        for k in 0..<data.rank where k != a && given.dims[k] > data.dims[k] {
            throw shapeError("the indices \(given.dims) pass the data \(data.dims) on axis \(k)")
        }
        let (flat, valid) = try elementPositions(dims: data.dims, converted(given, to: .int64), axis: a)
        set(0, .tensor(try scattered(data, flat, valid: valid, updates: updates)))
    }

    func lowerScatterND() throws(NeuronCompilerError) {
        let data = try tensor(0), given = try tensor(1), updates = try tensor(2)
        guard given.type == .int32 || given.type == .int64 else {
            throw unsupported("the indices are \(given.type.name); int32 or int64 are supported")
        }
        guard given.rank >= 1, let k = given.dims.last, k >= 1, k <= data.rank,
              updates.dims == Array(given.dims.dropLast()) + Array(data.dims.dropFirst(k)) else {
            throw shapeError("indices \(given.dims) and updates \(updates.dims) do not index data \(data.dims)")
        }
        let (rows, valid, positions) = try ndRows(converted(given, to: .int64), dims: data.dims, batchDims: 0)
        let inner = data.dims.dropFirst(k).reduce(1, *)
        // Element = row · inner + j.
        let starts = try binary(.mul, try reshapeView(rows, to: [positions.reduce(1, *), 1]), try int64Scalar(inner, "inner"))
        let offsets = try weightView(.make(.int64, [1, inner], (0..<inner).map(Double.init)), name: "\(current.name)#inner", as: .int64)
        let flat = try binary(.add, starts, offsets)
        let ok = try binary(.and, try reshapeView(valid, to: [positions.reduce(1, *), 1]),
                            try weightView(.make(.bool, [1, inner], [Double](repeating: 1, count: inner)), name: "\(current.name)#all", as: .bool))
        set(0, .tensor(try scattered(data, flat, valid: ok, updates: updates)))
    }

    /// ReverseSequence: along the time axis, the first sequence_lens[b]
    /// steps of batch b reversed, the rest kept; the source step
    /// (len − 1 − t or t) computed on the NeuronCore, then GatherElements.
    func lowerReverseSequence() throws(NeuronCompilerError) {
        let data = try tensor(0), lengths = try tensor(1)
        guard data.rank >= 2 else { throw shapeError("the input \(data.dims) needs a batch and a time axis") }
        let b = try int("batch_axis", 1), t = try int("time_axis", 0)
        guard Set([b, t]) == Set([0, 1]) else { throw invalid("batch_axis and time_axis must be 0 and 1, one each") }
        guard lengths.type == .int64 || lengths.type == .int32, lengths.count == data.dims[b] else {
            throw shapeError("sequence_lens has \(lengths.count) values for a batch of \(data.dims[b])")
        }
        var lengthShape = [Int](repeating: 1, count: data.rank), timeShape = lengthShape
        lengthShape[b] = data.dims[b]
        timeShape[t] = data.dims[t]
        let length = try reshapeView(converted(lengths, to: .int64), to: lengthShape)
        let steps = try weightView(.make(.int64, timeShape, (0..<data.dims[t]).map(Double.init)), name: "\(current.name)#steps", as: .int64)
        let one = try weightView(.make(.int64, [], [1]), name: "\(current.name)#one", as: .int64)
        let reversed = try binary(.sub, try binary(.sub, length, one), steps)
        let source = try select(try compare(.lt, steps, length), reversed, steps)
        guard let full = source.broadcast(to: data.dims) else { throw shapeError("sequence_lens does not fit \(data.dims)") }
        set(0, .tensor(try gatherElements(data, full, axis: t)))
    }

    func lowerGatherND() throws(NeuronCompilerError) {
        let data = try tensor(0), given = try tensor(1)
        guard given.type == .int32 || given.type == .int64 else {
            throw unsupported("the indices are \(given.type.name); int32 or int64 are supported")
        }
        let b = try int("batch_dims", 0)
        guard given.rank >= 1, let k = given.dims.last, b >= 0, b < min(given.rank, data.rank),
              k >= 1, b + k <= data.rank, Array(given.dims.prefix(b)) == Array(data.dims.prefix(b)) else {
            throw shapeError("indices \(given.dims) with batch_dims=\(b) do not index data \(data.dims)")
        }
        let picked = Array(given.dims.dropLast())   // one row per picked position
        let inner = Array(data.dims.dropFirst(b + k))
        let (rows, checked, _) = try ndRows(converted(given, to: .int64), dims: data.dims, batchDims: b)
        let table = try reshapeView(contiguous(data), to: [data.dims.prefix(b + k).reduce(1, *), inner.reduce(1, *)])
        let out = try gatherRows(table, rows, valid: checked)
        set(0, .tensor(try reshapeView(out, to: picked + inner)))
    }

    /// For indices [..., k] (int64) into data of `dims` with `batchDims`
    /// batch axes: each position's row of data seen as [prefix(b + k)
    /// flattened, the rest], whether its indices were in range, and the
    /// positions' shape.
    func ndRows(_ indices: View, dims: [Int], batchDims b: Int) throws(NeuronCompilerError) -> (View, View, [Int]) {
        let k = indices.dims[indices.rank - 1]
        let picked = Array(indices.dims.dropLast())
        let positions = picked.isEmpty ? [1] : picked
        var flat: View?, valid: View?
        var stride = 1
        for j in (0..<k).reversed() {
            var component = indices
            component.offset += j * indices.strides[indices.rank - 1]
            component.dims[indices.rank - 1] = 1
            let (index, ok) = try normalizedIndex(try reshapeView(component, to: positions), dim: dims[b + j])
            let scaled = stride == 1 ? index : try binary(.mul, index, try weightView(.make(.int64, [], [Double(stride)]),
                                                                                    name: "\(current.name)#stride\(j)", as: .int64))
            if let sum = flat { flat = try binary(.add, sum, scaled) } else { flat = scaled }
            if let all = valid { valid = try binary(.and, all, ok) } else { valid = ok }
            stride *= dims[b + j]
        }
        guard var rows = flat, let checked = valid else { throw invalid("\(current.op) needs indices") }
        if b > 0 {
            var base: [Double] = []
            let batchStrides = View.rowMajor(Array(dims.prefix(b)))
            base.reserveCapacity(try foldedCount(positions, what: "GatherND's batches"))
            forEachIndex(positions) { at in
                base.append(Double(zip(at.prefix(b), batchStrides).reduce(0) { $0 + $1.0 * $1.1 } * stride))
            }
            rows = try binary(.add, rows, try weightView(.make(.int64, positions, base), name: "\(current.name)#batches", as: .int64))
        }
        return (rows, checked, positions)
    }

    /// AffineGrid: the normalised coordinates of every output position
    /// (x fastest, then y, then z, and 1) as a constant [positions, 3 or
    /// 4], times each batch's theta transposed: one MATMUL.
    func lowerAffineGrid() throws(NeuronCompilerError) {
        let theta = try floatTensor(0)
        let size = try integers(1, what: "the size")
        guard size.count == 4 || size.count == 5, size.allSatisfy({ $0 >= 1 }) else {
            throw invalid("size \(size) must be [N, C, H, W] or [N, C, D, H, W]")
        }
        let spatial = Array(size.dropFirst(2)), rank = spatial.count
        guard theta.dims == [size[0], rank, rank + 1] else {
            throw shapeError("theta is \(theta.dims); for size \(size) it must be [\(size[0]), \(rank), \(rank + 1)]")
        }
        let aligned = try int("align_corners", 0) != 0
        // Each axis's coordinates: the corners' centres at ±1 (align_corners), or the pixels' centres.
        func coordinates(_ n: Int) -> [Double] {
            (0..<n).map { (i: Int) -> Double in
                if !aligned { return -1 + (2 * Double(i) + 1) / Double(n) }
                return n == 1 ? -1 : -1 + 2 * Double(i) / Double(n - 1)
            }
        }
        let axes = spatial.map(coordinates)
        var base: [Double] = []
        base.reserveCapacity(try foldedCount([spatial.reduce(1, *), rank + 1], what: "AffineGrid's base grid"))
        forEachIndex(spatial) { at in
            // (x, y[, z], 1): the last axis first.
            for axis in (0..<rank).reversed() { base.append(axes[axis][at[axis]]) }
            base.append(1)
        }
        let grid = try weightView(.make(.float32, [spatial.reduce(1, *), rank + 1], base), name: "\(current.name)#grid")
        let out = try matmul(grid, theta.permuted([0, 2, 1]), cast: false)
        set(0, .tensor(try reshapeView(out, to: [size[0]] + spatial + [rank])))
    }

    /// TensorScatter: the update's steps written into a copy of the cache
    /// along `axis` from each batch's write index on (modulo the cache's
    /// length in circular mode): one SCATTER of run-time positions.
    func lowerTensorScatter() throws(NeuronCompilerError) {
        let cache = try tensor(0), update = try tensor(1)
        let a = try axis(try int("axis", -2), rank: cache.rank)
        let circular: Bool
        switch try string("mode", "linear") {
        case "linear": circular = false
        case "circular": circular = true
        case let other: throw unsupported("mode=\(other)")
        }
        guard a >= 1, update.rank == cache.rank, update.type == cache.type,
              (0..<cache.rank).allSatisfy({ $0 == a ? update.dims[$0] <= cache.dims[$0] : update.dims[$0] == cache.dims[$0] }) else {
            throw shapeError("update \(update.dims) does not fit cache \(cache.dims) along axis \(a)")
        }
        let (batch, length) = (cache.dims[0], cache.dims[a])
        var batchShape = [Int](repeating: 1, count: cache.rank), stepShape = batchShape
        batchShape[0] = batch
        stepShape[a] = update.dims[a]
        var start: View
        if hasInput(2) {
            let given = try tensor(2)
            guard given.count == batch, given.type == .int64 || given.type == .int32 else {
                throw shapeError("write_indices has \(given.count) values for a batch of \(batch)")
            }
            start = try reshapeView(converted(given, to: .int64), to: batchShape)
        } else {
            start = try weightView(.make(.int64, batchShape, [Double](repeating: 0, count: batch)), name: "\(current.name)#start", as: .int64)
        }
        let steps = try weightView(.make(.int64, stepShape, (0..<update.dims[a]).map(Double.init)), name: "\(current.name)#steps", as: .int64)
        var position = try binary(.add, start, steps)
        if circular { position = try binary(.mod, position, try int64Scalar(length, "length")) }
        let valid = try binary(.and, try compare(.ge, position, try int64Scalar(0, "zero")),
                               try compare(.lt, position, try int64Scalar(length, "length")))
        guard let index = position.broadcast(to: update.dims), let ok = valid.broadcast(to: update.dims) else {
            throw shapeError("write_indices do not fit \(update.dims)")
        }
        let (flat, _) = try elementPositions(dims: cache.dims, index, axis: a)
        set(0, .tensor(try scattered(cache, flat, valid: ok, updates: update)))
    }

    /// MaxUnpool: zeros of the unpooled shape, each value set at its flat
    /// index (MaxPool's Indices: over the whole tensor) by one SCATTER.
    func lowerMaxUnpool() throws(NeuronCompilerError) {
        let x = try floatTensor(0), given = try tensor(1)
        guard given.type == .int64, given.dims == x.dims, x.rank >= 3 else {
            throw shapeError("indices \(given.dims) (\(given.type.name)) must be int64 of the input's shape \(x.dims)")
        }
        let n = x.rank - 2
        guard let kernel = try ints("kernel_shape"), kernel.count == n else { throw invalid("kernel_shape must give \(n) values") }
        let strides = try ints("strides") ?? [Int](repeating: 1, count: n)
        let pads = try ints("pads") ?? [Int](repeating: 0, count: 2 * n)
        guard strides.count == n, pads.count == 2 * n else { throw invalid("strides and pads must give \(n) and \(2 * n) values") }
        // The indices address the unpooled shape; output_shape, when given, holds it at its start.
        let dims = Array(x.dims.prefix(2)) + (0..<n).map { (x.dims[$0 + 2] - 1) * strides[$0] + kernel[$0] - pads[$0] - pads[$0 + n] }
        var shape = dims
        if hasInput(2) {
            shape = try integers(2, what: "output_shape")
            guard shape.count == x.rank, zip(shape, dims).allSatisfy({ $0 >= $1 }), shape.prefix(2).elementsEqual(dims.prefix(2)) else {
                throw invalid("output_shape \(shape) must hold the unpooled shape \(dims)")
            }
        }
        let zeros = try temp(.float32, dims)
        emit(.fill(0), [zeros])
        let total = try int64Scalar(dims.reduce(1, *), "total")
        let valid = try binary(.and, try compare(.ge, given, try int64Scalar(0, "zero")), try compare(.lt, given, total))
        let unpooled = try scattered(zeros, given, valid: valid, updates: x)
        guard shape != dims else {
            set(0, .tensor(unpooled))
            return
        }
        let out = try temp(.float32, shape)
        emit(.fill(0), [out])
        var corner = out
        corner.dims = dims
        emit(.copy, [corner, unpooled])
        set(0, .tensor(out))
    }
}
