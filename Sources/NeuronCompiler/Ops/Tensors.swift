import NeuronISA
import NeuronNEFF

/// Ops that move or convert whole tensors: Cast (one CAST), Concat (COPYs
/// into slices of the output), Gather (one GATHER over a permuted table),
/// Pad (a FILL and COPYs), Tile and Resize (one COPY from a view that
/// repeats or strides its input).
extension ONNXOps {
    static let tensors: [ONNXOp] = [
        // The upper (default) or lower triangle of the last two axes from
        // diagonal k: a FILL of zeros, then one COPY per row of the part kept.
        ONNXOp("Trilu") { l in
            let x = try l.tensor(0)
            guard x.rank >= 2 else { throw l.shapeError("the input \(x.dims) needs two axes") }
            let k = l.hasInput(1) ? try l.integers(1, what: "k") : [0]
            guard k.count == 1 else { throw l.invalid("k must be one integer") }
            let upper = try l.int("upper", 1) != 0
            let rows = x.dims[x.rank - 2], columns = x.dims[x.rank - 1]
            let shift = Swift.min(Swift.max(k[0], -rows - 1), columns + 1)   // beyond either end, all or nothing
            let out = try l.temp(x.type, x.dims)
            l.emit(.fill(0), [out])
            for row in 0..<rows {
                // Columns [from, to) of this row are kept.
                let diagonal = row + shift
                let from = upper ? Swift.min(Swift.max(diagonal, 0), columns) : 0
                let to = upper ? columns : Swift.min(Swift.max(diagonal + 1, 0), columns)
                guard from < to else { continue }
                func part(_ view: View) -> View {
                    var part = view
                    part.offset += row * view.strides[view.rank - 2] + from * view.strides[view.rank - 1]
                    part.dims[view.rank - 2] = 1
                    part.dims[view.rank - 1] = to - from
                    return part
                }
                l.emit(.copy, [part(out), part(x)])
            }
            l.set(0, .tensor(out))
        },
        ONNXOp("Cast", fold: whenKnown { l, first, _ in
            let to = try l.castTarget()
            return first.converted(to: to, castFlags: try l.castMode(to: to).flags)
        }) { l in try l.lowerCast(to: try l.castTarget()) },
        // Each axis cut to its centre, or padded with zeros around it.
        ONNXOp("CenterCropPad") { l in
            let x = try l.tensor(0)
            let shape = try l.integers(1, what: "the shape")
            var axes = Array(0..<x.rank)
            if let given = try l.ints("axes") {
                axes = []
                for value in given { axes.append(try l.axis(value, rank: x.rank, what: "axes entry")) }
            }
            guard shape.count == axes.count, shape.allSatisfy({ $0 >= 1 }) else {
                throw l.invalid("shape \(shape) must give one size of at least 1 per axis (\(axes.count))")
            }
            var source = x, dims = x.dims, placed = [Int](repeating: 0, count: x.rank)
            for (index, a) in axes.enumerated() {
                let want = shape[index], have = x.dims[a]
                if want < have {   // crop: the centre, the extra row at the end
                    source.offset += (have - want) / 2 * x.strides[a]
                    source.dims[a] = want
                } else {
                    placed[a] = (want - have) / 2
                }
                dims[a] = want
            }
            guard dims != source.dims else {
                l.set(0, .tensor(source))
                return
            }
            let out = try l.temp(x.type, dims)
            l.emit(.fill(0), [out])
            var target = out
            target.offset = zip(placed, out.strides).reduce(0) { $0 + $1.0 * $1.1 }
            target.dims = source.dims
            l.emit(.copy, [target, source])
            l.set(0, .tensor(out))
        },
        // Cast to the type of input 1.
        ONNXOp("CastLike", fold: whenKnown { l, first, inputs in
            guard inputs.count == 2 else { throw l.invalid("CastLike takes two inputs") }
            let to = try l.typedTensorType(1)
            return first.converted(to: to, castFlags: try l.castMode(to: to).flags)
        }) { l in try l.lowerCast(to: try l.typedTensorType(1)) },
        ONNXOp("Concat", fold: whenKnown { l, first, inputs in
            let parts = inputs.compactMap { $0 }
            let a = try l.axis(try l.int("axis", 0), rank: first.shape.count)
            var shape = first.shape
            shape[a] = parts.reduce(0) { $0 + ($1.shape.count > a ? $1.shape[a] : 0) }
            guard parts.allSatisfy({ part in
                part.type == first.type && part.shape.count == first.shape.count
                    && part.shape.indices.allSatisfy { $0 == a || part.shape[$0] == first.shape[$0] }
            }) else {
                throw l.shapeError("cannot concatenate \(parts.map(\.shape))")
            }
            _ = try l.foldedCount(shape, what: "Concat")
            let outer = shape.prefix(a).reduce(1, *)
            var bytes: [UInt8] = []
            for o in 0..<outer {
                for part in parts {
                    let row = part.shape[a...].reduce(1, *) * part.type.size
                    bytes += part.bytes[(o * row)..<((o + 1) * row)]
                }
            }
            return ConstantTensor(type: first.type, shape: shape, bytes: bytes)
        }) { l in try l.lowerConcat() },
        ONNXOp("Gather", fold: whenKnown { l, first, inputs in
            guard inputs.count >= 2, let indexTensor = inputs[1], let indices = indexTensor.integers() else {
                throw l.invalid("Gather's indices must be integers")
            }
            let a = try l.axis(try l.int("axis", 0), rank: first.shape.count)
            let shape = Array(first.shape.prefix(a)) + indexTensor.shape + Array(first.shape.dropFirst(a + 1))
            _ = try l.foldedCount(shape, what: "Gather")
            let dim = first.shape[a]
            let outer = first.shape.prefix(a).reduce(1, *), inner = first.shape.dropFirst(a + 1).reduce(1, *)
            var picks: [Int] = []
            for o in 0..<outer {
                for raw in indices {
                    let i = raw < 0 ? raw + dim : raw
                    guard (0..<dim).contains(i) else { throw l.invalid("Gather index \(raw) is outside 0..<\(dim)") }
                    for j in 0..<inner { picks.append((o * dim + i) * inner + j) }
                }
            }
            return first.picking(picks, shape: shape)
        }) { l in try l.lowerGather() },
        ONNXOp("Pad") { l in try l.lowerPad() },
        ONNXOp("Tile") { l in try l.lowerTile() },
        ONNXOp("Resize") { l in try l.lowerResize() },
        // Opset 9's Upsample: Resize by its scales (input 1), asymmetric, nearest rounding down.
        ONNXOp("Upsample") { l in
            let node = l.current
            let mode: AttributeValue = node.attributes["mode"] ?? .string("nearest")
            l.current = Node(name: node.name, op: node.op, inputs: [node.inputs.first ?? "", "", node.inputs.count > 1 ? node.inputs[1] : ""],
                             outputs: node.outputs,
                             attributes: ["mode": mode, "coordinate_transformation_mode": .string("asymmetric"),
                                          "nearest_mode": .string("floor")])
            defer { l.current = node }
            try l.lowerResize()
        },
    ]
}

extension Lowering {
    /// Cast's `to`, as an element type.
    func castTarget() throws(NeuronCompilerError) -> ElementType {
        try GraphReader(directory: nil, opset: graph.opset).elementType(Int32(clamping: try int("to", 0)), what: "Cast's target")
    }

    /// Input 0 converted to `type`: integers to integers keep their low
    /// bits (as ONNX's Cast does), floats to integers saturate; into
    /// float8 by the `saturate` attribute, into float8 E8M0 by `round_mode`.
    func lowerCast(to type: NeuronDType) throws(NeuronCompilerError) {
        let x = try typedTensor(0)
        guard type != x.type else {
            set(0, .tensor(x))
            return
        }
        let mode = try castMode(to: type)
        let out = try temp(type, x.dims)
        emit(.cast(wrap: true, saturate: mode.saturate, e8m0: mode.e8m0), [out, x])
        set(0, .tensor(out))
    }

    /// Cast's and CastLike's `saturate` (float8 targets; 1 by default) and
    /// `round_mode` (float8 E8M0 targets; "up" by default), as CAST flags too.
    func castMode(to type: NeuronDType) throws(NeuronCompilerError)
        -> (saturate: Bool, e8m0: NeuronE8M0Rounding, flags: UInt16) {
        let saturate = try int("saturate", 1) != 0
        var e8m0 = NeuronE8M0Rounding.nearest
        if type == .float8E8M0 {
            switch try string("round_mode", "up") {
            case "up": e8m0 = .up
            case "down": e8m0 = .down
            case "nearest": e8m0 = .nearest
            case let other: throw invalid("round_mode \"\(other)\" is none of up, down and nearest")
            }
        }
        let kept = saturate || !type.isFloat8
        return (kept, e8m0, NeuronProgram.castFlags(wrap: true, saturate: kept, e8m0: e8m0))
    }

    /// The element type of input `index`, computed or constant.
    func typedTensorType(_ index: Int) throws(NeuronCompilerError) -> NeuronDType {
        switch value(index) {
        case .tensor(let view)?: return view.type
        case .constant(let tensor)?: return tensor.type
        case nil: throw invalid("input \(index) is missing")
        }
    }

    func lowerConcat() throws(NeuronCompilerError) {
        var parts: [View] = []
        for index in current.inputs.indices where !current.inputs[index].isEmpty { parts.append(try tensor(index)) }
        guard let first = parts.first else { throw invalid("Concat of nothing") }
        set(0, .tensor(try concat(parts, axis: try axis(try int("axis", 0), rank: first.rank))))
    }

    /// The parts, one after another along `a`, by one COPY each.
    func concat(_ parts: [View], axis a: Int) throws(NeuronCompilerError) -> View {
        guard let first = parts.first else { throw invalid("a concatenation of nothing") }
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
        return out
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

    /// Pad, constant or edge mode, pads (and axes) known at compile time;
    /// negative pads crop. A FILL of the padding value (constant mode),
    /// the input copied into the middle, then for edge mode each padded
    /// axis in turn: its first and last slices copied across its pads
    /// through a view that repeats them (stride 0).
    func lowerPad() throws(NeuronCompilerError) {
        let x = try tensor(0)
        let mode = try string("mode", "constant")
        guard ["constant", "edge", "reflect", "wrap"].contains(mode) else {
            throw unsupported("mode=\(mode); constant, edge, reflect and wrap are supported")
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
            guard x.dims[a] - cropStart - cropEnd >= 0 else {
                throw invalid("pads crop more than all of axis \(a) (\(x.dims[a]) long)")
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
        if mode == "reflect" || mode == "wrap" {
            // Axis by axis, one step of padding at a time: reflect mirrors
            // about the edge element (so a pad must be shorter than the
            // axis), wrap repeats the axis from its other end.
            var filled = middle
            for a in 0..<x.rank where before[a] > 0 || after[a] > 0 {
                let n = source.dims[a], lead = max(0, before[a]), trail = max(0, after[a])
                guard mode == "wrap" || (lead < n && trail < n) else {
                    throw invalid("reflect pads of \(lead) and \(trail) on axis \(a) of \(n): each must be shorter than the axis")
                }
                guard mode == "reflect" || (lead <= n && trail <= n) else {
                    throw unsupported("wrap pads of \(lead) and \(trail) on axis \(a) of \(n) repeat the axis more than once")
                }
                var span = filled
                span.offset -= lead * out.strides[a]
                span.dims[a] = dims[a]
                // Positions along the padded axis: the input is at [lead, lead + n).
                for j in 0..<(lead + trail) {
                    let to = j < lead ? j : lead + n + (j - lead)
                    let from: Int
                    if mode == "reflect" {
                        from = j < lead ? 2 * lead - j : 2 * (lead + n - 1) - to
                    } else {
                        from = j < lead ? to + n : to - n
                    }
                    emit(.copy, [slab(span, axis: a, from: to, count: 1), slab(span, axis: a, from: from, count: 1)])
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
        guard repeats.count == x.rank, repeats.allSatisfy({ $0 >= 0 }) else {
            throw invalid("repeats \(repeats) must have one entry of at least 0 for each of the input's \(x.rank) axes")
        }
        if repeats.contains(0) || x.dims.contains(0) {   // nothing to copy
            set(0, .constant(ConstantTensor(type: x.type, shape: zip(x.dims, repeats).map { $0 * $1 }, bytes: [])))
            return
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
        guard ["nearest", "linear", "cubic"].contains(mode) else { throw invalid("mode=\(mode); ONNX defines nearest, linear and cubic") }
        let transform = try string("coordinate_transformation_mode", "half_pixel")
        let rounding = try string("nearest_mode", "round_prefer_floor")
        let antialias = try int("antialias", 0) != 0
        let policy = try string("keep_aspect_ratio_policy", "stretch")
        guard ["stretch", "not_larger", "not_smaller"].contains(policy) else {
            throw invalid("keep_aspect_ratio_policy=\(policy); ONNX defines stretch, not_larger and not_smaller")
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
            if policy != "stretch" {
                // One scale for every axis: the smallest (the result fits in
                // the sizes) or the largest (it covers them); sizes rounded half up.
                let ratios = axes.map { scales[$0] }
                let scale = (policy == "not_larger" ? ratios.min() : ratios.max()) ?? 1
                for a in axes {
                    scales[a] = scale
                    dims[a] = Swift.max(1, Int(scale * Double(x.dims[a]) + 0.5))
                }
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
        if mode != "nearest" || antialias || transform == "half_pixel_symmetric" {
            set(0, .tensor(try resizeByMatrices(x, to: dims, scales: scales, mode: mode, transform: transform,
                                                rounding: rounding, antialias: antialias)))
            return
        }
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
                // Neither a whole-number repeat nor a stride: as an interpolation.
                set(0, .tensor(try resizeByMatrices(x, to: dims, scales: scales, mode: mode, transform: transform,
                                                    rounding: rounding, antialias: false)))
                return
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

    /// Resize as one MATMUL per resized axis: each output position a
    /// weighted sum of input positions along the axis (the axis moved
    /// last, times the transposed interpolation matrix). Linear, cubic and
    /// nearest are all such sums, axis by axis, as ONNX defines them.
    func resizeByMatrices(_ x: View, to dims: [Int], scales: [Double], mode: String, transform: String,
                          rounding: String, antialias: Bool) throws(NeuronCompilerError) -> View {
        guard x.type == .float32 else {
            throw unsupported("\(mode) Resize of \(x.type.name); float32 is interpolated")
        }
        let cubicA = try float("cubic_coeff_a", -0.75)
        let exclude = try int("exclude_outside", 0) != 0
        var y = x
        for a in 0..<x.rank where dims[a] != x.dims[a] || scales[a] != 1 || transform == "align_corners" {
            let length = x.dims[a], count = dims[a]
            _ = try foldedCount([count, length], what: "the interpolation matrix of axis \(a)")
            var weights = [Double](repeating: 0, count: count * length)
            for o in 0..<count {
                let row = try interpolationRow(o, length: length, count: count, scale: scales[a], mode: mode,
                                               transform: transform, rounding: rounding, antialias: antialias,
                                               cubicA: Double(cubicA), excludeOutside: exclude)
                for (index, weight) in row { weights[index * count + o] += weight }
            }
            // [..., length] x [length, count], the axis moved last and back.
            var perm = Array(0..<x.rank)
            perm.remove(at: a)
            perm.append(a)
            var inverse = perm
            for (position, axis) in perm.enumerated() { inverse[axis] = position }
            let matrix = try weightView(.make(.float32, [length, count], weights), name: "\(current.name)#resize\(a)")
            y = try matmul(y.permuted(perm), matrix, cast: false).permuted(inverse)
        }
        return y
    }

    /// The input positions and weights of output position `o` along one
    /// axis: ONNX's coordinate transform, then the mode's coefficients over
    /// the nearest input positions (the edge repeated past either end).
    func interpolationRow(_ o: Int, length: Int, count: Int, scale: Double, mode: String, transform: String,
                          rounding: String, antialias: Bool, cubicA: Double,
                          excludeOutside: Bool) throws(NeuronCompilerError) -> [(Int, Double)] {
        let x = Double(o), width = scale * Double(length)
        let position: Double
        switch transform {
        case "half_pixel": position = (x + 0.5) / scale - 0.5
        case "asymmetric": position = x / scale
        case "align_corners": position = width == 1 ? 0 : x * Double(length - 1) / (width - 1)
        case "pytorch_half_pixel": position = width == 1 ? -0.5 : (x + 0.5) / scale - 0.5
        case "half_pixel_symmetric":
            let offset = Double(length) / 2 * (1 - Double(count) / width)
            position = offset + (x + 0.5) / scale - 0.5
        case "tf_half_pixel_for_nn": position = (x + 0.5) / scale
        default: throw unsupported("coordinate_transformation_mode=\(transform) with mode=\(mode)")
        }
        let base = position.rounded(.down)
        let ratio = position == base ? 1 : position - base
        var coefficients: [Double]
        let shrink = Swift.min(scale, 1)
        switch (mode, antialias) {
        case ("nearest", _):
            let r = ratio
            switch rounding {
            case "round_prefer_floor": coefficients = r == 1 ? [0, 1] : [r <= 0.5 ? 1 : 0, r > 0.5 ? 1 : 0]
            case "round_prefer_ceil": coefficients = r == 1 ? [0, 1] : [r < 0.5 ? 1 : 0, r >= 0.5 ? 1 : 0]
            case "floor": coefficients = r == 1 ? [0, 1] : [1, 0]
            case "ceil": coefficients = [0, 1]
            default: throw unsupported("nearest_mode=\(rounding)")
            }
        case ("linear", false): coefficients = [1 - ratio, ratio]
        case ("linear", true):
            let start = Int((-1 / shrink).rounded(.down)) + 1
            coefficients = (start..<(start + 2 - 2 * start)).map { Swift.max(0, Swift.min(1, 1 - abs((Double($0) - ratio) * shrink))) }
        case (_, false):
            let r = ratio, q = 1 - ratio, a = cubicA
            coefficients = [((a * (r + 1) - 5 * a) * (r + 1) + 8 * a) * (r + 1) - 4 * a,
                            ((a + 2) * r - (a + 3)) * r * r + 1,
                            ((a + 2) * q - (a + 3)) * q * q + 1,
                            ((a * (q + 1) - 5 * a) * (q + 1) + 8 * a) * (q + 1) - 4 * a]
        default:
            let start = Int((-2 / shrink).rounded(.down)) + 1
            coefficients = (start..<(2 - start)).map { i in
                let t = abs(shrink * (Double(i) - ratio)), a = cubicA
                return t <= 1 ? (a + 2) * t * t * t - (a + 3) * t * t + 1 : t < 2 ? a * t * t * t - 5 * a * t * t + 8 * a * t - 4 * a : 0
            }
        }
        if antialias {
            let total = coefficients.reduce(0, +)
            coefficients = coefficients.map { $0 / total }
        }
        // The n positions nearest the source position (ties to the lower),
        // among the input padded by ceil(n / 2) at each end.
        let n = coefficients.count, pad = (n + 1) / 2
        let candidates = (Int(base) - n - 1...Int(base) + n + 1).filter { $0 >= -pad && $0 < length + pad }
        let nearest = candidates.sorted { (abs(position - Double($0)), $0) < (abs(position - Double($1)), $1) }.prefix(n).sorted()
        guard nearest.count == n else { throw shapeError("Resize of an axis of \(length) has too few positions to interpolate") }
        if excludeOutside {
            for (index, at) in nearest.enumerated() where at < 0 || at >= length { coefficients[index] = 0 }
            let total = coefficients.reduce(0, +)
            if total != 0 { coefficients = coefficients.map { $0 / total } }
        }
        return zip(nearest, coefficients).map { (Swift.min(Swift.max($0, 0), length - 1), $1) }
    }
}
