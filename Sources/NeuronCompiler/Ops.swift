import NeuronISA
import NeuronNEFF

/// The ONNX ops neuron-cc lowers, one function each (or a shared one).
extension Lowering {
    static let unaryOps: [String: NeuronUnaryOp] = [
        "Relu": .relu, "LeakyRelu": .leakyRelu, "Sigmoid": .sigmoid, "Tanh": .tanh, "Exp": .exp, "Log": .log,
        "Sqrt": .sqrt, "Neg": .neg, "Abs": .abs, "Reciprocal": .reciprocal, "Erf": .erf, "Gelu": .geluErf,
    ]
    static let binaryOps: [String: NeuronBinaryOp] = [
        "Add": .add, "Sub": .sub, "Mul": .mul, "Div": .div, "Pow": .pow,
    ]
    static let variadicOps: [String: NeuronBinaryOp] = ["Sum": .add, "Max": .max, "Min": .min]
    static let viewOps: Set<String> = ["Identity", "Dropout", "Reshape", "Flatten", "Squeeze", "Unsqueeze",
                                       "Transpose", "Expand", "Slice"]
    static let reduceOps: [String: NeuronReduceOp] = [
        "ReduceSum": .sum, "ReduceMean": .mean, "ReduceMax": .max, "ReduceMin": .min,
    ]
    /// Ops that only fold (their inputs must be known at compile time).
    static let foldOnlyOps: Set<String> = ["Shape", "Size", "ConstantOfShape", "Range", "Equal", "Where"]

    /// Every op `lower` takes.
    static let supportedOps: Set<String> = {
        Set(unaryOps.keys).union(binaryOps.keys).union(variadicOps.keys).union(viewOps).union(reduceOps.keys)
            .union(foldOnlyOps)
            .union(["MatMul", "Gemm", "Softmax", "Cast", "Concat", "Gather", "Clip", "LayerNormalization", "Pad", "Tile", "Resize"])
            .union(cnnOps)
    }()

    func lower(_ node: Node) throws(NeuronCompilerError) {
        guard Lowering.supportedOps.contains(node.op) else {
            throw NeuronCompilerError(.unsupported, "node \(node.label): neuron-cc does not compile \(node.op) yet; it compiles \(Lowering.supportedOps.sorted().joined(separator: ", "))")
        }
        if try fold(node) {
            folded += 1
            return
        }
        if let op = Lowering.unaryOps[node.op] {
            let x = try floatTensor(0)
            var alpha: Float = 0
            var unaryOp = op
            if node.op == "LeakyRelu" { alpha = try float("alpha", 0.01) }
            if node.op == "Gelu" {
                switch try string("approximate", "none") {
                case "none": unaryOp = .geluErf
                case "tanh": unaryOp = .geluTanh
                case let other: throw unsupported("approximate=\(other); none and tanh are supported")
                }
            }
            let out = try temp(.float32, x.dims)
            emit(.unary(unaryOp, alpha: alpha), [out, x])
            set(0, .tensor(out))
            return
        }
        // x^2, as exporters write the variance of layer norms: one
        // multiplication, the correctly rounded square (pow's own bits
        // may differ from it in the last place).
        if node.op == "Pow", let exponent = constant(1), exponent.doubles() == [2] {
            let x = try floatTensor(0)
            set(0, .tensor(try binary(.mul, x, x)))
            return
        }
        if let op = Lowering.binaryOps[node.op] {
            set(0, .tensor(try binary(op, try floatTensor(0), try floatTensor(1))))
            return
        }
        if let op = Lowering.variadicOps[node.op] {
            var result = try floatTensor(0)
            for index in 1..<max(1, node.inputs.count) {
                result = try binary(op, result, try floatTensor(index))
            }
            if node.inputs.count == 1 { result = copied(result) }
            set(0, .tensor(result))
            return
        }
        if Lowering.cnnOps.contains(node.op) {
            try lowerCNN(node.op)
            return
        }
        if let op = Lowering.reduceOps[node.op] {
            try lowerReduce(op)
            return
        }
        switch node.op {
        case "Identity", "Dropout":
            guard let value = value(0) else { throw invalid("input 0 is missing") }
            set(0, value)
            if node.outputs.count > 1, !node.outputs[1].isEmpty {
                let count = try foldedCount(value.shape, what: "\(node.op)'s mask")
                set(1, .constant(.make(.bool, value.shape, [Double](repeating: 1, count: count))))
            }
        case "Reshape", "Flatten", "Squeeze", "Unsqueeze":
            let x = try tensor(0)
            set(0, .tensor(try reshapeView(x, to: try reshapedShape(node, x.dims))))
        case "Transpose":
            let x = try tensor(0)
            set(0, .tensor(x.permuted(try permutation(rank: x.rank))))
        case "Expand":
            let x = try tensor(0)
            let target = try integers(1, what: "the shape")
            guard let shape = broadcastShape(x.dims, target), let view = x.broadcast(to: shape) else {
                throw shapeError("cannot expand \(x.dims) to \(target)")
            }
            try checkShape(shape, what: "Expand's result")
            set(0, .tensor(view))
        case "Slice":
            set(0, .tensor(try slice(try tensor(0))))
        case "MatMul":
            // A third input is a bias Fusion folded in from an Add.
            set(0, .tensor(try matmul(try floatTensor(0), try floatTensor(1), bias: hasInput(2) ? try floatTensor(2) : nil)))
        case "Gemm":
            try lowerGemm()
        case "Softmax":
            let x = try floatTensor(0)
            let axis = try axis(try int("axis", -1), rank: x.rank)
            guard graph.opset >= 13 else { throw unsupported("Softmax before opset 13") }
            var perm = Array(0..<x.rank)
            perm.remove(at: axis)
            perm.append(axis)
            let out = try temp(.float32, x.dims)
            emit(.softmax, [out.permuted(perm), x.permuted(perm)])
            set(0, .tensor(out))
        case "Cast":
            let x = try tensor(0)
            let to = try int("to", 0)
            let target = try GraphReader(directory: nil, opset: graph.opset).elementType(Int32(clamping: to), what: "Cast's target")
            let type = try engineType(target, what: "Cast's target")
            if type == x.type {
                set(0, .tensor(x))
            } else {
                let out = try temp(type, x.dims)
                emit(.cast, [out, x])
                set(0, .tensor(out))
            }
        case "Concat":
            try lowerConcat()
        case "Gather":
            try lowerGather()
        case "Clip":
            var result = try floatTensor(0)
            if hasInput(1) { result = try binary(.max, result, try floatTensor(1)) }
            if hasInput(2) { result = try binary(.min, result, try floatTensor(2)) }
            if !hasInput(1) && !hasInput(2) { result = copied(result) }
            set(0, .tensor(result))
        case "LayerNormalization":
            try lowerLayerNorm()
        case "Pad":
            try lowerPad()
        case "Tile":
            try lowerTile()
        case "Resize":
            try lowerResize()
        default:
            throw unsupported("\(node.op) needs its inputs known at compile time")
        }
    }

    // MARK: Elementwise

    /// out = a op b with numpy broadcasting.
    func binary(_ op: NeuronBinaryOp, _ a: View, _ b: View) throws(NeuronCompilerError) -> View {
        guard let shape = broadcastShape(a.dims, b.dims), shape.count <= 6,
              let x = a.broadcast(to: shape), let y = b.broadcast(to: shape) else {
            throw shapeError("shapes \(a.dims) and \(b.dims) do not broadcast")
        }
        let out = try temp(.float32, shape)
        emit(.binary(op), [out, x, y])
        return out
    }

    // MARK: Views

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
            guard count > 0 else { throw shapeError("the slice of axis \(a) is empty; empty tensors are not supported") }
            view.offset += start * view.strides[a]
            view.strides[a] *= stepped
            view.dims[a] = count
        }
        return view
    }

    // MARK: Matmul

    /// out = a x b with numpy's matmul rules (1-D operands, broadcast batches).
    func matmul(_ a: View, _ b: View, bias: View? = nil) throws(NeuronCompilerError) -> View {
        guard a.rank >= 1, b.rank >= 1 else {
            throw shapeError("matmul of \(a.dims) and \(b.dims): both operands need at least one dimension")
        }
        var x = a, y = b
        let squeezeM = x.rank == 1, squeezeN = y.rank == 1
        if squeezeM { x = View(buffer: x.buffer, type: x.type, offset: x.offset, dims: [1] + x.dims, strides: [0] + x.strides) }
        if squeezeN { y = View(buffer: y.buffer, type: y.type, offset: y.offset, dims: y.dims + [1], strides: y.strides + [0]) }
        let m = x.dims[x.rank - 2], k = x.dims[x.rank - 1], n = y.dims[y.rank - 1]
        guard y.dims[y.rank - 2] == k else {
            throw shapeError("matmul of \(a.dims) and \(b.dims): inner dimensions \(k) and \(y.dims[y.rank - 2]) differ")
        }
        guard let batch = broadcastShape(Array(x.dims.dropLast(2)), Array(y.dims.dropLast(2))) else {
            throw shapeError("matmul of \(a.dims) and \(b.dims): batch dimensions do not broadcast")
        }
        guard let batchCount = NEFFTensor.elementCount(of: batch) else {
            throw shapeError("matmul of \(a.dims) and \(b.dims): the batch \(batch) is too large")
        }
        var outDims = batch + [m, n]
        var out: View
        if batchCount == 1 {
            let x2 = View(buffer: x.buffer, type: x.type, offset: x.offset, dims: [m, k],
                          strides: Array(x.strides.suffix(2)))
            let y2 = View(buffer: y.buffer, type: y.type, offset: y.offset, dims: [k, n],
                          strides: Array(y.strides.suffix(2)))
            out = try temp(.float32, [m, n])
            emit(.matmul(bias: bias != nil), [out] + castOperands(x2, y2) + (bias.map { [$0] } ?? []))
        } else if y.rank == 2, let flat = x.reshaped([batchCount * m, k]), x.dims.dropLast(2).elementsEqual(batch) {
            // A's batch folds into its rows.
            out = try temp(.float32, [batchCount * m, n])
            emit(.matmul(bias: bias != nil), [out] + castOperands(flat, y) + (bias.map { [$0] } ?? []))
        } else {
            guard let xb = x.broadcast(to: batch + [m, k]), let yb = y.broadcast(to: batch + [k, n]) else {
                throw shapeError("matmul of \(a.dims) and \(b.dims): batch dimensions do not broadcast")
            }
            let x3 = contiguous(xb).reshaped([batchCount, m, k]) ?? xb
            let y3 = contiguous(yb).reshaped([batchCount, k, n]) ?? yb
            out = try temp(.float32, [batchCount, m, n])
            emit(.matmul(bias: bias != nil), [out] + castOperands(x3, y3) + (bias.map { [$0] } ?? []))
        }
        if squeezeN { outDims.remove(at: outDims.count - 1) }
        if squeezeM { outDims.remove(at: outDims.count - (squeezeN ? 1 : 2)) }
        guard outDims.count <= 6, let result = out.reshaped(outDims) else {
            throw shapeError("matmul result \(outDims) has more than 6 dimensions")
        }
        return result
    }

    /// Matmul operands as they go to the engine: bfloat16 under --auto-cast.
    func castOperands(_ a: View, _ b: View) -> [View] {
        guard autoCast != .none else { return [a, b] }
        autoCastOps += 1
        return [bfloat16(a), bfloat16(b)]
    }

    func lowerGemm() throws(NeuronCompilerError) {
        var a = try floatTensor(0), b = try floatTensor(1)
        guard a.rank == 2, b.rank == 2 else { throw shapeError("Gemm takes 2-D A and B; got \(a.dims) and \(b.dims)") }
        if try int("transA", 0) != 0 { a = a.permuted([1, 0]) }
        if try int("transB", 0) != 0 { b = contiguousWeight(b.permuted([1, 0])) }
        let alpha = try float("alpha", 1), beta = try float("beta", 1)
        let n = b.dims[1]
        var bias: View?
        var c: View?
        if hasInput(2) {
            let cv = try floatTensor(2)
            if alpha == 1, beta == 1, cv.count == n, cv.dims.last == n || cv.rank == 0 || cv.count == 1 {
                bias = View(buffer: cv.buffer, type: cv.type, offset: cv.offset, dims: [n],
                            strides: [cv.rank == 0 || cv.dims.last != n ? 0 : cv.strides[cv.rank - 1]])
            } else {
                c = cv
            }
        }
        var result = try matmul(a, b, bias: bias)
        if alpha != 1 {
            result = try binary(.mul, result, try weightView(.make(.float32, [], [Double(alpha)]), name: "\(current.name)#alpha"))
        }
        if var c {
            if beta != 1 {
                c = try binary(.mul, c, try weightView(.make(.float32, [], [Double(beta)]), name: "\(current.name)#beta"))
            }
            result = try binary(.add, result, c)
        }
        set(0, .tensor(result))
    }

    // MARK: Reductions, concatenation, gathers, normalisation

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

    func lowerConcat() throws(NeuronCompilerError) {
        var parts: [View] = []
        for index in current.inputs.indices where !current.inputs[index].isEmpty { parts.append(try tensor(index)) }
        guard let first = parts.first else { throw invalid("Concat of nothing") }
        let a = try axis(try int("axis", 0), rank: first.rank)
        var dims = first.dims
        dims[a] = 0
        for part in parts {
            guard part.rank == first.rank, part.type == first.type,
                  part.dims.enumerated().allSatisfy({ $0.offset == a || $0.element == first.dims[$0.offset] }) else {
                throw shapeError("cannot concatenate \(parts.map(\.dims)) along axis \(a)")
            }
            dims[a] += part.dims[a]
        }
        let out = try temp(first.type, dims)
        var at = 0
        for part in parts {
            var slice = out
            slice.offset = at * out.strides[a]
            slice.dims[a] = part.dims[a]
            emit(.copy, [slice, part])
            at += part.dims[a]
        }
        set(0, .tensor(out))
    }

    func lowerGather() throws(NeuronCompilerError) {
        let data = try tensor(0), indices = try tensor(1)
        guard indices.type == .int32 || indices.type == .int64 else {
            throw unsupported("the indices are \(indices.type.name); int32 or int64 are supported")
        }
        let a = try axis(try int("axis", 0), rank: data.rank)
        guard indices.rank <= 5 else { throw shapeError("indices of rank \(indices.rank); at most 5") }
        // The gathered axis first, the rest as one row.
        var perm = Array(0..<data.rank)
        perm.remove(at: a)
        perm.insert(a, at: 0)
        let moved = data.permuted(perm)
        let rest = Array(moved.dims.dropFirst())
        let table = try reshapeView(moved, to: [moved.dims[0], rest.reduce(1, *)])
        let gathered = try temp(data.type, indices.dims + [rest.reduce(1, *)])
        emit(.gather, [gathered, table, indices])
        // [indices..., before..., after...] back to ONNX's [before..., indices..., after...].
        let expanded = try reshapeView(gathered, to: indices.dims + rest)
        let r = indices.rank
        let order = Array(r..<(r + a)) + Array(0..<r) + Array((r + a)..<(r + rest.count))
        guard order.count <= 6 else { throw shapeError("the gathered tensor has more than 6 dimensions") }
        set(0, .tensor(expanded.permuted(order)))
    }

    func lowerLayerNorm() throws(NeuronCompilerError) {
        let x = try floatTensor(0)
        let a = try axis(try int("axis", -1), rank: x.rank)
        let epsilon = try float("epsilon", 1e-5)
        let span = x.dims[a...].reduce(1, *)
        let rows = try reshapeView(x, to: Array(x.dims[..<a]) + [span])
        let scale = try reshapeView(try floatTensor(1), to: [span])
        let bias = hasInput(2) ? try reshapeView(try floatTensor(2), to: [span])
            : try weightView(.make(.float32, [span], [Double](repeating: 0, count: try foldedCount([span], what: "a zero bias"))),
                             name: "\(current.name)#zero")
        let out = try temp(.float32, rows.dims)
        emit(.layerNorm(epsilon: epsilon), [out, rows, scale, bias])
        set(0, .tensor(try reshapeView(out, to: x.dims)))
        // The optional Mean and InvStdDev outputs: x's shape with the
        // normalized axes 1.
        let statsDims = Array(x.dims[..<a]) + [Int](repeating: 1, count: x.rank - a)
        let wantsMean = current.outputs.count > 1 && !current.outputs[1].isEmpty
        let wantsInv = current.outputs.count > 2 && !current.outputs[2].isEmpty
        guard wantsMean || wantsInv else { return }
        let mean = try temp(.float32, Array(rows.dims.dropLast()) + [1])
        emit(.reduce(.mean), [mean, rows])
        set(1, .tensor(try reshapeView(mean, to: statsDims)))
        guard wantsInv else { return }
        let centered = try binary(.sub, rows, mean)
        let variance = try temp(.float32, mean.dims)
        emit(.reduce(.mean), [variance, try binary(.mul, centered, centered)])
        let shifted = try binary(.add, variance, try weightView(.make(.float32, [], [Double(epsilon)]), name: "\(current.name)#epsilon"))
        let inverse = try temp(.float32, mean.dims)
        emit(.unary(.rsqrt, alpha: 0), [inverse, shifted])
        set(2, .tensor(try reshapeView(inverse, to: statsDims)))
    }

    /// Pad, constant or edge mode, pads (and axes) known at compile time;
    /// negative pads crop. A FILL of the padding value (constant mode),
    /// the input copied into the middle, then for edge mode each padded
    /// axis in turn: its first and last slices copied across its pads
    /// through a view that repeats them (stride 0).
    func lowerPad() throws(NeuronCompilerError) {
        let x = try tensor(0)
        let mode = try string("mode", "constant")
        guard mode == "constant" || mode == "edge" else {
            throw unsupported("mode=\(mode); constant and edge are supported")
        }
        guard let padList = constant(1)?.integers() else { throw unsupported("the pads must be known at compile time") }
        var axes = Array(0..<x.rank)
        if hasInput(3) {
            guard let given = constant(3)?.integers() else { throw unsupported("the axes must be known at compile time") }
            axes = []
            for value in given { axes.append(try axis(value, rank: x.rank, what: "axes entry")) }
        }
        guard padList.count == 2 * axes.count, Set(axes).count == axes.count else {
            throw invalid("pads has \(padList.count) entries for \(axes.count) axes; it takes a begin and an end for each")
        }
        guard padList.allSatisfy({ (-Lowering.maxTensorElements...Lowering.maxTensorElements).contains($0) }) else {
            throw shapeError("pads \(padList) are beyond any tensor")
        }
        var before = [Int](repeating: 0, count: x.rank), after = before
        for (index, a) in axes.enumerated() {
            before[a] = padList[index]
            after[a] = padList[index + axes.count]
        }
        var value: Float = 0
        if hasInput(2) {
            guard let given = constant(2)?.doubles(), given.count == 1 else {
                throw unsupported("the constant_value must be a scalar known at compile time")
            }
            value = Float(given[0])
            guard x.type == .float32 || x.type == .bfloat16 || Double(value) == given[0] else {
                throw unsupported("constant_value \(given[0]) for \(x.type.name) data: FILL carries a float32, exact for integers up to 2^24")
            }
        }
        // The input without its cropped (negative) parts.
        var source = x
        for a in 0..<x.rank {
            let cropStart = max(0, -before[a]), cropEnd = max(0, -after[a])
            guard x.dims[a] - cropStart - cropEnd >= 1 else {
                throw shapeError("pads crop all of axis \(a) (\(x.dims[a]) long); empty tensors are not supported")
            }
            source.offset += cropStart * source.strides[a]
            source.dims[a] -= cropStart + cropEnd
        }
        let dims = (0..<x.rank).map { source.dims[$0] + max(0, before[$0]) + max(0, after[$0]) }
        let out = try temp(x.type, dims)
        if mode == "constant" && dims != source.dims { emit(.fill(value), [out]) }
        var middle = out
        for a in 0..<x.rank {
            middle.offset += max(0, before[a]) * out.strides[a]
            middle.dims[a] = source.dims[a]
        }
        emit(.copy, [middle, source])
        if mode == "edge" {
            // Axis by axis, over what earlier axes already filled.
            var filled = middle
            for a in 0..<x.rank where before[a] > 0 || after[a] > 0 {
                var span = filled
                span.offset -= max(0, before[a]) * out.strides[a]
                span.dims[a] = dims[a]
                for (count, edgeIndex, start) in [(max(0, before[a]), 0, 0),
                                                   (max(0, after[a]), source.dims[a] - 1, max(0, before[a]) + source.dims[a])]
                    where count > 0 {
                    var edge = filled
                    edge.offset += edgeIndex * out.strides[a]
                    edge.dims[a] = count
                    edge.strides[a] = 0
                    var target = span
                    target.offset += start * out.strides[a]
                    target.dims[a] = count
                    emit(.copy, [target, edge])
                }
                filled = span
            }
        }
        set(0, .tensor(out))
    }

    /// Tile, repeats known at compile time: one COPY from a view that
    /// repeats the input (stride 0) into the output split as
    /// [repeat, size] on each repeated axis; when that takes more than 6
    /// dimensions, one such COPY per repeated axis.
    func lowerTile() throws(NeuronCompilerError) {
        let x = try tensor(0)
        guard let repeats = constant(1)?.integers() else { throw unsupported("the repeats must be known at compile time") }
        guard repeats.count == x.rank, repeats.allSatisfy({ $0 >= 1 }) else {
            throw invalid("repeats \(repeats) must have one entry of at least 1 for each of the input's \(x.rank) axes (empty tensors are not supported)")
        }
        guard x.rank + repeats.filter({ $0 > 1 }).count > 6 else {
            set(0, .tensor(try tile(x, repeats)))
            return
        }
        guard x.rank < 6 else {
            throw unsupported("tiling a rank-6 tensor takes 7 dimensions; NeuronCore views have at most 6")
        }
        var result = x
        for a in 0..<x.rank where repeats[a] > 1 {
            var one = [Int](repeating: 1, count: x.rank)
            one[a] = repeats[a]
            result = try tile(result, one)
        }
        set(0, .tensor(result))
    }

    /// `x` repeated `repeats[a]` times along each axis a, in one COPY (at most 6 dimensions).
    func tile(_ x: View, _ repeats: [Int]) throws(NeuronCompilerError) -> View {
        var dims: [Int] = []
        for (dim, times) in zip(x.dims, repeats) {
            let (product, overflow) = dim.multipliedReportingOverflow(by: times)
            guard !overflow else { throw shapeError("tiling \(x.dims) by \(repeats) overflows") }
            dims.append(product)
        }
        let out = try temp(x.type, dims)
        var target = out, source = x
        target.dims = []; target.strides = []; source.dims = []; source.strides = []
        for a in 0..<x.rank {
            if repeats[a] > 1 {
                target.dims.append(repeats[a]); target.strides.append(x.dims[a] * out.strides[a])
                source.dims.append(repeats[a]); source.strides.append(0)
            }
            target.dims.append(x.dims[a]); target.strides.append(out.strides[a])
            source.dims.append(x.dims[a]); source.strides.append(x.strides[a])
        }
        emit(.copy, [target, source])
        return out
    }

    /// Resize, nearest mode, scales or sizes known at compile time, when
    /// every axis maps output index o to input index floor(o / s) for a
    /// whole s (upsampling: a view that repeats each element) or to
    /// a * o + b (downsampling or a shift: a strided view): one COPY. The
    /// mapping is computed with the node's coordinate transformation and
    /// rounding, then recognised, so any mode that comes out the same works.
    func lowerResize() throws(NeuronCompilerError) {
        let x = try tensor(0)
        let mode = try string("mode", "nearest")
        guard mode == "nearest" else { throw unsupported("mode=\(mode); nearest is supported") }
        let transform = try string("coordinate_transformation_mode", "half_pixel")
        let rounding = try string("nearest_mode", "round_prefer_floor")
        guard try int("antialias", 0) == 0 else { throw unsupported("antialias=1") }
        guard try string("keep_aspect_ratio_policy", "stretch") == "stretch" else {
            throw unsupported("keep_aspect_ratio_policy other than stretch")
        }
        let axes = try ints("axes").map { list throws(NeuronCompilerError) -> [Int] in
            var resolved: [Int] = []
            for value in list { resolved.append(try axis(value, rank: x.rank, what: "axes entry")) }
            return resolved
        } ?? Array(0..<x.rank)
        var scales = [Double](repeating: 1, count: x.rank), dims = x.dims
        if hasInput(3) {
            let sizes = try integers(3, what: "sizes")
            guard sizes.count == axes.count, sizes.allSatisfy({ $0 >= 1 }) else { throw invalid("sizes \(sizes) for \(axes.count) axes") }
            for (index, a) in axes.enumerated() {
                dims[a] = sizes[index]
                scales[a] = Double(sizes[index]) / Double(x.dims[a])
            }
        } else if hasInput(2) {
            guard let given = constant(2)?.doubles(), given.count == axes.count, given.allSatisfy({ $0 > 0 }) else {
                throw unsupported("the scales must be known at compile time, one positive value per axis")
            }
            for (index, a) in axes.enumerated() {
                scales[a] = given[index]
                let extent = (Double(x.dims[a]) * given[index]).rounded(.down)
                guard extent >= 1 else { throw shapeError("scale \(given[index]) leaves axis \(a) empty") }
                guard extent <= Double(Lowering.maxFoldedElements) else {
                    throw shapeError("scale \(given[index]) makes axis \(a) longer than \(Lowering.maxFoldedElements)")
                }
                dims[a] = Int(extent)
            }
        } else {
            throw invalid("Resize needs scales or sizes")
        }
        // Each axis's source positions are computed here, one per output.
        guard dims.allSatisfy({ $0 <= Lowering.maxFoldedElements }), x.dims.allSatisfy({ $0 >= 1 }) else {
            throw shapeError("Resize of \(x.dims) to \(dims): each axis 1 to \(Lowering.maxFoldedElements) long")
        }
        try checkShape(dims, what: "Resize's result")
        var source = x
        source.dims = []; source.strides = []
        var target = try temp(x.type, dims)
        let out = target
        target.dims = []; target.strides = []
        for a in 0..<x.rank {
            let length = x.dims[a], count = dims[a], s = scales[a]
            let map = try (0..<count).map { o throws(NeuronCompilerError) -> Int in
                let o = Double(o)
                let position: Double
                switch transform {
                case "half_pixel": position = (o + 0.5) / s - 0.5
                case "asymmetric": position = o / s
                case "align_corners": position = count > 1 ? o * Double(length - 1) / Double(count - 1) : 0
                case "pytorch_half_pixel": position = count > 1 ? (o + 0.5) / s - 0.5 : 0
                case "tf_half_pixel_for_nn": position = (o + 0.5) / s
                default: throw unsupported("coordinate_transformation_mode=\(transform)")
                }
                let index: Double
                switch rounding {
                case "round_prefer_floor": index = position == position.rounded(.down) + 0.5 ? position.rounded(.down) : position.rounded()
                case "round_prefer_ceil": index = position.rounded()
                case "floor": index = position.rounded(.down)
                case "ceil": index = position.rounded(.up)
                default: throw unsupported("nearest_mode=\(rounding)")
                }
                return min(max(Int(index), 0), length - 1)
            }
            let factor = count / length
            if count % length == 0, map.enumerated().allSatisfy({ $0.element == $0.offset / factor }) {
                // Each input index repeated `factor` times: [length, factor] over the output's axis.
                target.dims += factor > 1 ? [length, factor] : [length]
                target.strides += factor > 1 ? [factor * out.strides[a], out.strides[a]] : [out.strides[a]]
                source.dims += factor > 1 ? [length, factor] : [length]
                source.strides += factor > 1 ? [x.strides[a], 0] : [x.strides[a]]
                continue
            }
            let step = count > 1 ? map[1] - map[0] : 0
            guard map.enumerated().allSatisfy({ $0.element == map[0] + step * $0.offset }), step >= 0 else {
                throw unsupported("this resize of axis \(a) (\(length) to \(count), \(transform), \(rounding)) is no whole-number repeat or stride")
            }
            source.offset += map[0] * x.strides[a]
            source.dims.append(count); source.strides.append(step * x.strides[a])
            target.dims.append(count); target.strides.append(out.strides[a])
        }
        guard target.dims.count <= 6 else {
            throw unsupported("resizing \(target.dims.count - x.rank) axes of a rank-\(x.rank) tensor takes \(target.dims.count) dimensions; NeuronCore views have at most 6")
        }
        emit(.copy, [target, source])
        set(0, .tensor(out))
    }
}
