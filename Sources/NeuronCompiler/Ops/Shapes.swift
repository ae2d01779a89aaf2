import NeuronISA
import NeuronNEFF

/// Ops that only change how a tensor is seen: each is a strided view of
/// its input, no instruction (a reshape of a view that is not contiguous
/// copies it first), and folds by picking elements when its input is known.
extension ONNXOps {
    static let shapes: [ONNXOp] = [
        ONNXOp("Identity", fold: whenKnown { _, first, _ in first }) { l in try l.passThrough() },
        ONNXOp("Dropout") { l in
            // Inference: the input as it is. Training drops at random, which
            // a compiled model does not do.
            if l.hasInput(2) {
                guard let mode = l.constant(2) else {
                    throw l.unsupported("training_mode must be known at compile time (false: inference)")
                }
                // Training with a ratio of 0 drops nothing: the input as it is too.
                let ratio = l.hasInput(1) ? l.constant(1)?.doubles() : [0.5]
                guard mode.doubles().allSatisfy({ $0 == 0 }) || ratio == [0] else {
                    throw l.unsupported("training_mode=true with a ratio above 0: dropout at training is random; neuron-cc compiles inference")
                }
            }
            try l.passThrough()
        },
        reshape("Reshape"), reshape("Flatten"), reshape("Squeeze"), reshape("Unsqueeze"),
        ONNXOp("Transpose", fold: whenKnown { l, first, _ in
            let perm = try l.permutation(rank: first.shape.count)
            let outShape = perm.map { first.shape[$0] }
            _ = try l.foldedCount(outShape, what: "Transpose")
            let strides = View.rowMajor(first.shape)
            var indices: [Int] = []
            forEachIndex(outShape) { index in
                indices.append(zip(index, perm).reduce(0) { $0 + $1.0 * strides[$1.1] })
            }
            return first.picking(indices, shape: outShape)
        }) { l in
            let x = try l.tensor(0)
            l.set(0, .tensor(x.permuted(try l.permutation(rank: x.rank))))
        },
        ONNXOp("Expand", fold: whenKnown { l, first, inputs in
            guard inputs.count >= 2, let target = inputs[1]?.integers(), let shape = broadcastShape(first.shape, target) else {
                throw l.shapeError("cannot expand \(first.shape)")
            }
            _ = try l.foldedCount(shape, what: "Expand")
            var picks: [Int] = []
            forEachIndex(shape) { picks.append(broadcastIndex($0, into: first.shape)) }
            return first.picking(picks, shape: shape)
        }) { l in
            let x = try l.tensor(0)
            let target = try l.integers(1, what: "the shape")
            guard let shape = broadcastShape(x.dims, target), let view = x.broadcast(to: shape) else {
                throw l.shapeError("cannot expand \(x.dims) to \(target)")
            }
            try l.checkShape(shape, what: "Expand's result")
            l.set(0, .tensor(view))
        },
        ONNXOp("Slice", fold: whenKnown { l, first, _ in
            let view = try l.slice(View(buffer: -1, type: .float32, dims: first.shape))
            _ = try l.foldedCount(view.dims, what: "Slice")
            var picks: [Int] = []
            forEachIndex(view.dims) { index in
                picks.append(view.offset + zip(index, view.strides).reduce(0) { $0 + $1.0 * $1.1 })
            }
            return first.picking(picks, shape: view.dims)
        }) { l in
            l.set(0, .tensor(try l.slice(try l.tensor(0))))
        },
        split, depthToSpace, spaceToDepth,
        // The same bits seen as another type of the same size.
        ONNXOp("BitCast") { l in
            var x = try l.tensor(0)
            let to = try GraphReader(directory: nil, opset: l.graph.opset).elementType(Int32(clamping: try l.int("to", 0)), what: "BitCast's to")
            guard to.size == x.type.size else {
                throw l.unsupported("BitCast from \(x.type.name) to \(to.name), of another size; types of one size are supported")
            }
            x.type = to
            l.set(0, .tensor(x))
        },
    ]

    /// Split: each output a slice of the input along the axis; sizes from
    /// input 1 (opset 13 on) or the `split` attribute, else num_outputs
    /// parts of ceil(n / parts) with a smaller last one (opset 18), else
    /// equal parts.
    static let split = ONNXOp("Split") { l in
        let x = try l.tensor(0)
        let a = try l.axis(try l.int("axis", 0), rank: x.rank)
        let parts = l.current.outputs.count, length = x.dims[a]
        var sizes: [Int]
        if l.hasInput(1) {
            sizes = try l.integers(1, what: "the split sizes")
        } else if let given = try l.ints("split") {
            sizes = given
        } else if l.graph.opset >= 18, try l.int("num_outputs", 0) != 0 {
            let count = try l.int("num_outputs", 0)
            guard count == parts, count >= 1 else {
                throw l.invalid("num_outputs=\(count) but the node has \(parts) outputs")
            }
            let chunk = (length + count - 1) / count
            sizes = (0..<count).map { Swift.max(0, Swift.min(chunk, length - $0 * chunk)) }
        } else {
            guard parts >= 1, length % parts == 0 else {
                throw l.shapeError("axis \(a) of \(x.dims) does not split into \(parts) equal parts")
            }
            sizes = [Int](repeating: length / parts, count: parts)
        }
        guard sizes.count == parts, sizes.allSatisfy({ $0 >= 0 }), sizes.reduce(0, +) == length else {
            throw l.invalid("split sizes \(sizes) must be \(parts) sizes adding up to axis \(a)'s \(length)")
        }
        var start = 0
        for (index, size) in sizes.enumerated() {
            var part = x
            part.offset += start * x.strides[a]
            part.dims[a] = size
            l.set(index, .tensor(part))
            start += size
        }
    }

    /// DepthToSpace: [N, C, H, W] to [N, C / b², H b, W b], the channels
    /// read depth-column-row (DCR, default) or column-row-depth (CRD).
    static let depthToSpace = ONNXOp("DepthToSpace") { l in
        let x = try l.tensor(0)
        let b = try l.int("blocksize", 0)
        guard x.rank == 4, b >= 1, x.dims[1] % (b * b) == 0 else {
            throw l.shapeError("the input \(x.dims) must be [N, C, H, W] with C a multiple of blocksize² (blocksize \(b))")
        }
        let (n, c, h, w) = (x.dims[0], x.dims[1], x.dims[2], x.dims[3])
        let view: View
        switch try l.string("mode", "DCR") {
        case "DCR": view = try l.reshapeView(x, to: [n, b, b, c / (b * b), h, w]).permuted([0, 3, 4, 1, 5, 2])
        case "CRD": view = try l.reshapeView(x, to: [n, c / (b * b), b, b, h, w]).permuted([0, 1, 4, 2, 5, 3])
        case let other: throw l.invalid("mode=\(other); ONNX defines DCR and CRD")
        }
        l.set(0, .tensor(try l.reshapeView(view, to: [n, c / (b * b), h * b, w * b])))
    }

    /// SpaceToDepth: [N, C, H, W] to [N, C b², H / b, W / b], DepthToSpace
    /// undone (DCR, default, or CRD).
    static let spaceToDepth = ONNXOp("SpaceToDepth") { l in
        let x = try l.tensor(0)
        let b = try l.int("blocksize", 0)
        guard x.rank == 4, b >= 1, x.dims[2] % b == 0, x.dims[3] % b == 0 else {
            throw l.shapeError("the input \(x.dims) must be [N, C, H, W] with H and W multiples of blocksize \(b)")
        }
        let (n, c, h, w) = (x.dims[0], x.dims[1], x.dims[2], x.dims[3])
        let blocks = try l.reshapeView(x, to: [n, c, h / b, b, w / b, b])
        let view: View
        switch try l.string("mode", "DCR") {
        case "DCR": view = blocks.permuted([0, 3, 5, 1, 2, 4])
        case "CRD": view = blocks.permuted([0, 1, 3, 5, 2, 4])
        case let other: throw l.invalid("mode=\(other); ONNX defines DCR and CRD")
        }
        l.set(0, .tensor(try l.reshapeView(view, to: [n, c * b * b, h / b, w / b])))
    }

    /// Reshape, Flatten, Squeeze or Unsqueeze: the same elements under a new shape.
    static func reshape(_ name: String) -> ONNXOp {
        ONNXOp(name, fold: whenKnown { l, first, _ in
            var copy = first
            copy.shape = try l.reshapedShape(l.current, first.shape)
            guard copy.count == first.count else { throw l.shapeError("cannot reshape \(first.shape) to \(copy.shape)") }
            return copy
        }) { l in
            let x = try l.tensor(0)
            l.set(0, .tensor(try l.reshapeView(x, to: try l.reshapedShape(l.current, x.dims))))
        }
    }
}

extension Lowering {
    /// Identity and Dropout (inference): the input as it is; Dropout's
    /// optional mask is all true.
    func passThrough() throws(NeuronCompilerError) {
        guard let value = value(0) else { throw invalid("input 0 is missing") }
        set(0, value)
        if current.outputs.count > 1, !current.outputs[1].isEmpty {
            let count = try foldedCount(value.shape, what: "\(current.op)'s mask")
            set(1, .constant(.make(.bool, value.shape, [Double](repeating: 1, count: count))))
        }
    }

    func reshapeView(_ x: View, to dims: [Int]) throws(NeuronCompilerError) -> View {
        guard dims.reduce(1, *) == x.count else {
            throw shapeError("cannot reshape \(x.dims) (\(x.count) elements) to \(dims)")
        }
        guard dims.count <= 6 else { throw shapeError("\(dims) has more than 6 dimensions") }
        if let view = x.reshaped(dims) { return view }
        guard let view = contiguous(x).reshaped(dims) else { throw shapeError("cannot reshape \(x.dims)") }
        return view
    }

    func reshapedShape(_ node: Node, _ dims: [Int]) throws(NeuronCompilerError) -> [Int] {
        switch node.op {
        case "Reshape":
            let requested = try integers(1, what: "the shape")
            let allowZero = try int("allowzero", 0) != 0
            var shape = requested.enumerated().map { axis, dim in
                dim == 0 && !allowZero && axis < dims.count ? dims[axis] : dim
            }
            guard let total = NEFFTensor.elementCount(of: dims) else { throw shapeError("cannot reshape \(dims)") }
            if let unknown = shape.firstIndex(of: -1) {
                let others = shape.enumerated().filter { $0.offset != unknown }.map(\.element)
                guard let known = NEFFTensor.elementCount(of: others), known > 0, total % known == 0 else {
                    throw shapeError("cannot reshape \(dims) to \(requested)")
                }
                shape[unknown] = total / known
            }
            guard NEFFTensor.elementCount(of: shape) == total else { throw shapeError("cannot reshape \(dims) to \(requested)") }
            return shape
        case "Flatten":
            let raw = try int("axis", 1)
            let axis = raw < 0 ? raw + dims.count : raw
            guard (0...dims.count).contains(axis) else { throw invalid("axis \(raw) is outside -\(dims.count)...\(dims.count)") }
            return [dims.prefix(axis).reduce(1, *), dims.dropFirst(axis).reduce(1, *)]
        case "Squeeze":
            let axes = hasInput(1) ? try integers(1, what: "the axes") : (try ints("axes") ?? [])
            if axes.isEmpty { return dims.filter { $0 != 1 } }
            var drop = Set<Int>()
            for raw in axes {
                let a = try axis(raw, rank: dims.count)
                guard dims[a] == 1 else { throw shapeError("cannot squeeze axis \(raw) of \(dims): it is not 1") }
                drop.insert(a)
            }
            return dims.enumerated().filter { !drop.contains($0.offset) }.map(\.element)
        default: // Unsqueeze
            let axes = hasInput(1) ? try integers(1, what: "the axes") : (try ints("axes") ?? [])
            let rank = dims.count + axes.count
            var resolved = Set<Int>()
            for raw in axes { resolved.insert(try axis(raw, rank: rank)) }
            guard resolved.count == axes.count else { throw invalid("Unsqueeze names an axis twice") }
            var out: [Int] = []
            var source = dims.makeIterator()
            for a in 0..<rank { out.append(resolved.contains(a) ? 1 : (source.next() ?? 1)) }
            return out
        }
    }

    func permutation(rank: Int) throws(NeuronCompilerError) -> [Int] {
        guard let perm = try ints("perm") else { return Array((0..<rank).reversed()) }
        guard perm.count == rank, Set(perm) == Set(0..<rank) else {
            throw invalid("perm \(perm) is not a permutation of \(rank) axes")
        }
        return perm
    }

    /// Slice by constant starts, ends, axes and (positive) steps: a view.
    func slice(_ x: View) throws(NeuronCompilerError) -> View {
        let starts = try integers(1, what: "starts"), ends = try integers(2, what: "ends")
        let axes = hasInput(3) ? try integers(3, what: "axes") : Array(0..<starts.count)
        let steps = hasInput(4) ? try integers(4, what: "steps") : [Int](repeating: 1, count: starts.count)
        guard starts.count == ends.count, axes.count == starts.count, steps.count == starts.count else {
            throw invalid("starts, ends, axes and steps differ in length")
        }
        var view = x
        for index in starts.indices {
            let a = try axis(axes[index], rank: x.rank)
            let dim = x.dims[a], step = steps[index]
            guard step != 0 else { throw invalid("a step of 0") }
            guard step > 0 else { throw unsupported("negative steps are not supported yet") }
            let stepped = min(step, dim)  // past the axis, one element either way
            func clampIndex(_ value: Int) -> Int { max(0, min(dim, value < 0 ? value + dim : value)) }
            let start = clampIndex(starts[index]), end = clampIndex(ends[index])
            let count = end > start ? (end - start + stepped - 1) / stepped : 0
            if count > 0 { view.offset += start * view.strides[a] }   // else empty
            view.strides[a] *= stepped
            view.dims[a] = count
        }
        return view
    }

}
