import NeuronISA

extension ONNXOps {
    static let pooling: [ONNXOp] = [
        // Col2Im: every block's column added into the (padded) image.
        ONNXOp("Col2Im", takes: [.float32], typedInputs: 1) { l in try l.lowerCol2Im() },
    ]
}

/// Pooling that POOL2D does not cover (three spatial axes, dilations, an
/// average whose ceil_mode windows pass the input): one spatial axis at a
/// time, as max and sums are separable over a box. Along an axis, the
/// input padded (-inf for max, 0 for sums), its windows seen as [out,
/// kernel] through strides (stride, dilation), then one REDUCE over the
/// kernel. An average divides each axis's sums by that axis's count of
/// elements (or of positions inside the padding, count_include_pad): the
/// box's count is their product.
extension Lowering {
    /// One axis's window: the output's length and the padding before.
    struct AxisWindow {
        var kernel: Int, stride: Int, dilation: Int, before: Int, after: Int, out: Int
    }

    /// The windows of each spatial axis of an input of `extents`, from
    /// kernel_shape, strides, dilations, pads, auto_pad and ceil_mode.
    func axisWindows(extents: [Int]) throws(NeuronCompilerError) -> [AxisWindow] {
        let n = extents.count
        guard let kernel = try ints("kernel_shape"), kernel.count == n, kernel.allSatisfy({ $0 >= 1 }) else {
            throw invalid("kernel_shape must give \(n) values of 1 or more")
        }
        let strides = try ints("strides") ?? [Int](repeating: 1, count: n)
        let dilations = try ints("dilations") ?? [Int](repeating: 1, count: n)
        guard strides.count == n, dilations.count == n, strides.allSatisfy({ $0 >= 1 }), dilations.allSatisfy({ $0 >= 1 }) else {
            throw invalid("strides and dilations must give \(n) values of 1 or more")
        }
        let pads = try ints("pads") ?? [Int](repeating: 0, count: 2 * n)
        guard pads.count == 2 * n, pads.allSatisfy({ (0...65535).contains($0) }) else {
            throw invalid("pads \(pads) must be \(2 * n) values of 0 to 65535")
        }
        let autoPad = try string("auto_pad", "NOTSET"), ceil = try int("ceil_mode", 0) != 0
        var windows: [AxisWindow] = []
        for axis in 0..<n {
            let (k, s, d, length) = (kernel[axis], strides[axis], dilations[axis], extents[axis])
            let span = (k - 1) * d + 1
            var before = pads[axis], after = pads[axis + n], out: Int
            switch autoPad {
            case "NOTSET", "":
                let room = length + before + after - span
                guard room >= 0 else { throw shapeError("the window (\(span)) is larger than the padded input (\(length + before + after))") }
                out = (ceil ? (room + s - 1) / s : room / s) + 1
                // The last window must start inside the input or its leading padding.
                if ceil, (out - 1) * s >= length + before { out -= 1 }
            case "VALID":
                guard length >= span else { throw shapeError("the window (\(span)) is larger than the input (\(length))") }
                (before, after) = (0, 0)
                out = (length - span) / s + 1
            case "SAME_UPPER", "SAME_LOWER":
                out = (length + s - 1) / s
                let total = max(0, (out - 1) * s + span - length)
                before = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2
                after = total - before
            default:
                throw invalid("auto_pad=\(autoPad)")
            }
            windows.append(AxisWindow(kernel: k, stride: s, dilation: d, before: before, after: after, out: out))
        }
        return windows
    }

    /// `x` pooled along `axis` by `op` (.max or .sum), with `fill` in the padding.
    func poolAxis(_ x: View, axis a: Int, _ w: AxisWindow, op: NeuronReduceOp, fill: Float) throws(NeuronCompilerError) -> View {
        let length = x.dims[a]
        let extent = (w.out - 1) * w.stride + (w.kernel - 1) * w.dilation + 1   // of the padded axis
        var padded = x
        if w.before > 0 || extent > w.before + length || !x.isContiguous {
            var dims = x.dims
            dims[a] = extent
            padded = try temp(x.type, dims)
            let kept = min(length, extent - w.before)
            if w.before > 0 || extent > w.before + kept { emit(.fill(fill), [padded]) }
            emit(.copy, [slab(padded, axis: a, from: w.before, count: kept), slab(x, axis: a, from: 0, count: kept)])
        }
        // [..., out, ...] windows, their kernel last.
        var view = padded
        view.dims[a] = w.out
        view.strides[a] = padded.strides[a] * w.stride
        view.dims.append(w.kernel)
        view.strides.append(padded.strides[a] * w.dilation)
        guard view.rank <= 6 else { throw unsupported("pooling of an input of \(x.rank) dimensions") }
        let reduced = try reduce(op, view, over: [view.rank - 1])
        return try reshapeView(reduced, to: Array(reduced.dims.dropLast()))
    }

    /// MaxPool, AveragePool and LpPool by axes (see above); `p` for LpPool.
    func lowerPoolByAxes(_ op: NeuronPoolOp, lp: Int?) throws(NeuronCompilerError) {
        var x = try floatTensor(0)
        guard x.rank >= 3, x.rank <= 5 else { throw unsupported("\(current.op) over \(x.rank - 2) spatial axes; 1 to 3 are supported") }
        if current.outputs.count > 1, !current.outputs[1].isEmpty { throw unsupported("the Indices output is not supported") }
        if try int("storage_order", 0) != 0 { throw unsupported("storage_order=1 is not supported") }
        let windows = try axisWindows(extents: Array(x.dims.dropFirst(2)))
        let countPadding = try int("count_include_pad", 0) != 0
        let includePad = op == .avg && lp == nil && countPadding
        if let p = lp {
            x = p == 1 ? try apply(.abs, x) : p == 2 ? try binary(.mul, x, x)
                : try binary(.pow, try apply(.abs, x), try scalar(Float(p), "p"))
        }
        for (index, w) in windows.enumerated() {
            let a = index + 2
            let length = x.dims[a]
            x = try poolAxis(x, axis: a, w, op: op == .max ? .max : .sum, fill: op == .max ? -.infinity : 0)
            guard op == .avg, lp == nil else { continue }
            // Each window's count along this axis.
            let counts = (0..<w.out).map { i -> Double in
                let low = includePad ? -w.before : 0, high = includePad ? length + w.after : length
                return Double((0..<w.kernel).filter { k in (low..<high).contains(i * w.stride - w.before + k * w.dilation) }.count)
            }
            var shape = [Int](repeating: 1, count: x.rank)
            shape[a] = w.out
            x = try binary(.div, x, try weightView(.make(.float32, shape, counts), name: "\(current.name)#count\(a)"))
        }
        if let p = lp, p > 1 {
            x = p == 2 ? try apply(.sqrt, x) : try binary(.pow, x, try scalar(1 / Float(p), "root"))
        }
        set(0, .tensor(x))
    }

    /// Col2Im: a padded image of zeros; for each offset in the block, the
    /// input's columns of that offset added in place into the image seen
    /// through strides (stride, dilation); then the padding cut off.
    func lowerCol2Im() throws(NeuronCompilerError) {
        let x = try floatTensor(0)
        let image = try integers(1, what: "image_shape"), block = try integers(2, what: "block_shape")
        let n = image.count
        guard n >= 1, n <= 3, block.count == n, image.allSatisfy({ $0 >= 1 }), block.allSatisfy({ $0 >= 1 }), x.rank == 3 else {
            throw invalid("image_shape \(image) and block_shape \(block) must give 1 to 3 sizes each, over an input [N, C·block, L]")
        }
        let strides = try ints("strides") ?? [Int](repeating: 1, count: n)
        let dilations = try ints("dilations") ?? [Int](repeating: 1, count: n)
        let pads = try ints("pads") ?? [Int](repeating: 0, count: 2 * n)
        guard strides.count == n, dilations.count == n, pads.count == 2 * n,
              strides.allSatisfy({ $0 >= 1 }), dilations.allSatisfy({ $0 >= 1 }), pads.allSatisfy({ $0 >= 0 }) else {
            throw invalid("strides, dilations and pads must give \(n), \(n) and \(2 * n) values")
        }
        var padded: [Int] = [], slides: [Int] = []
        for a in 0..<n {
            let extent: Int = image[a] + pads[a] + pads[a + n]
            let span: Int = dilations[a] * (block[a] - 1) + 1
            padded.append(extent)
            slides.append((extent - span) / strides[a] + 1)
        }
        let kernel = block.reduce(1, *), count = slides.reduce(1, *)
        guard slides.allSatisfy({ $0 >= 1 }), x.dims[1] % kernel == 0, x.dims[2] == count else {
            throw shapeError("the input \(x.dims) does not hold \(kernel)-element blocks at \(count) places of \(image)")
        }
        let (batch, channels) = (x.dims[0], x.dims[1] / kernel)
        let columns = contiguous(x)
        let canvas = try temp(.float32, [batch, channels] + padded)
        emit(.fill(0), [canvas])
        let imageStrides = View.rowMajor(padded)
        var offset = [Int](repeating: 0, count: n)
        for position in 0..<kernel {
            // The offset within the block, last axis fastest.
            var rest = position
            for a in (0..<n).reversed() {
                offset[a] = rest % block[a]
                rest /= block[a]
            }
            let source = View(buffer: columns.buffer, type: .float32, offset: columns.offset + position * count,
                              dims: [batch, channels] + slides,
                              strides: [columns.strides[0], kernel * count] + View.rowMajor(slides))
            var start = 0
            for a in 0..<n { start += offset[a] * dilations[a] * imageStrides[a] }
            let target = View(buffer: canvas.buffer, type: .float32, offset: canvas.offset + start,
                              dims: [batch, channels] + slides,
                              strides: [canvas.strides[0], canvas.strides[1]] + zip(strides, imageStrides).map { $0 * $1 })
            emit(.binary(.add), [target, target, source])
        }
        var inner = canvas
        for a in 0..<n {
            inner.offset += pads[a] * imageStrides[a]
            inner.dims[a + 2] = image[a]
        }
        set(0, .tensor(copied(inner)))
    }
}
