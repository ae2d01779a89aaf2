import NeuronISA

/// Convolutions, pooling and normalisations of CNNs: Conv is one CONV2D
/// (weights in the engine's layouts), the pools one POOL2D, BatchNormalization
/// a multiply and an add, LRN an average pool of squares.
extension ONNXOps {
    static let cnn: [ONNXOp] = [
        ONNXOp("Conv", takes: [.float32]) { l in try l.lowerConv() },
        ONNXOp("ConvTranspose", takes: [.float32]) { l in try l.lowerConvTranspose() },
        ONNXOp("MaxPool", takes: [.float32]) { l in try l.lowerPool(.max) },
        ONNXOp("AveragePool", takes: [.float32]) { l in try l.lowerPool(.avg) },
        // (Σ|x|^p)^(1/p) over each window: |x|^p, an average over the whole
        // window (the padding adds zeros) times its size, the p-th root.
        ONNXOp("LpPool", takes: [.float32]) { l in try l.lowerPool(.avg, lp: true) },
        ONNXOp("GlobalAveragePool", takes: [.float32]) { l in try l.lowerGlobalPool(.avg) },
        ONNXOp("GlobalMaxPool", takes: [.float32]) { l in try l.lowerGlobalPool(.max) },
        ONNXOp("BatchNormalization", takes: [.float32]) { l in try l.lowerBatchNorm() },
        ONNXOp("LRN", takes: [.float32]) { l in try l.lowerLRN() },
    ]
}

extension Lowering {

    /// A 2-D window from ONNX attributes over input extents `extent`
    /// (1-D ops were given a height of 1): pads (top, left, bottom, right).
    struct Window2D {
        var kernel: (h: Int, w: Int)
        var stride: (h: Int, w: Int)
        var dilation: (h: Int, w: Int)
        var pads: (top: Int, left: Int, bottom: Int, right: Int)
        var out: (h: Int, w: Int)

        /// The window without the kernel taps that only ever read padding
        /// (a 3x3 convolution over a 1x1 map reads one tap; a 1x7 over a
        /// 3-wide map, five), over an input of `extent` rows and columns:
        /// the taps kept (first and last, per axis), the window over them,
        /// and the input extent it reads (shorter where the dropped taps
        /// were the last ones to reach the end). Nil when every tap reads
        /// the input somewhere, when none does, or when the padding left
        /// would be negative (a dilated window). The products dropped
        /// multiply zeros, so the sums keep their bits (but a zero's sign)
        /// when the weights dropped are finite and the convolution keeps
        /// its form (a 5x5 trimmed to 3x3 may take Winograd, which rounds
        /// differently).
        func trimmed(extent: (h: Int, w: Int)) -> (taps: (h: ClosedRange<Int>, w: ClosedRange<Int>), window: Window2D,
                                                    extent: (h: Int, w: Int))? {
            func axis(_ input: Int, _ out: Int, _ k: Int, _ s: Int, _ d: Int, _ before: Int)
                -> (taps: ClosedRange<Int>, before: Int, after: Int, input: Int)? {
                // Tap t reads rows o·s - before + t·d: the first o with a row >= 0 must read < input.
                let reached = (0..<k).filter { t in
                    let start = t * d - before
                    let o = start >= 0 ? 0 : (-start + s - 1) / s
                    return o < out && o * s + start < input
                }
                guard let first = reached.first, let last = reached.last else { return nil }
                let pad = before - first * d, span = (last - first) * d + 1
                guard pad >= 0 else { return nil }
                let reach = (out - 1) * s - pad + span   // rows [-pad, reach) are read
                return (first...last, pad, max(0, reach - input), min(input, reach))
            }
            guard let h = axis(extent.h, out.h, kernel.h, stride.h, dilation.h, pads.top),
                  let w = axis(extent.w, out.w, kernel.w, stride.w, dilation.w, pads.left),
                  h.taps.count < kernel.h || w.taps.count < kernel.w else { return nil }
            let window = Window2D(kernel: (h.taps.count, w.taps.count), stride: stride, dilation: dilation,
                                  pads: (h.before, w.before, h.after, w.after), out: out)
            return ((h.taps, w.taps), window, (h.input, w.input))
        }

        var engine: NeuronWindow {
            NeuronWindow(stride: (UInt32(stride.h), UInt32(stride.w)),
                         padding: (UInt32(pads.top), UInt32(pads.left), UInt32(pads.bottom), UInt32(pads.right)),
                         dilation: (UInt32(dilation.h), UInt32(dilation.w)))
        }
    }

    /// Read kernel, strides, dilations, pads and auto_pad for a 1-D or 2-D window.
    func window(kernel: [Int], extent: (h: Int, w: Int), spatial: Int, ceil: Bool = false)
        throws(NeuronCompilerError) -> Window2D {
        func pair(_ values: [Int]?, _ fallback: Int, _ what: String) throws(NeuronCompilerError) -> (Int, Int) {
            guard let values else { return (fallback, fallback) }
            guard values.count == spatial else { throw invalid("\(what) has \(values.count) values; the input has \(spatial) spatial axes") }
            return spatial == 1 ? (1, values[0]) : (values[0], values[1])
        }
        let k = spatial == 1 ? (1, kernel[0]) : (kernel[0], kernel[1])
        let s = try pair(try ints("strides"), 1, "strides"), d = try pair(try ints("dilations"), 1, "dilations")
        // The engine's validator takes kernels, dilations and pads up to
        // 65535; bounding strides too keeps the arithmetic below in range.
        guard [k.0, k.1, s.0, s.1, d.0, d.1].allSatisfy({ (1...65535).contains($0) }) else {
            throw invalid("kernel, strides and dilations must be 1 to 65535")
        }
        let span = (h: (k.0 - 1) * d.0 + 1, w: (k.1 - 1) * d.1 + 1)
        var pads = (top: 0, left: 0, bottom: 0, right: 0)
        switch try string("auto_pad", "NOTSET") {
        case "NOTSET":
            if let given = try ints("pads") {
                guard given.count == 2 * spatial, given.allSatisfy({ (0...65535).contains($0) }) else {
                    throw invalid("pads \(given) must be \(2 * spatial) values of 0 to 65535")
                }
                pads = spatial == 1 ? (0, given[0], 0, given[1]) : (given[0], given[1], given[2], given[3])
            }
        case "VALID":
            break
        case let mode where mode == "SAME_UPPER" || mode == "SAME_LOWER":
            func split(_ input: Int, _ stride: Int, _ span: Int) -> (Int, Int) {
                let out = (input + stride - 1) / stride
                let total = max(0, (out - 1) * stride + span - input)
                return mode == "SAME_UPPER" ? (total / 2, total - total / 2) : (total - total / 2, total / 2)
            }
            let h = spatial == 1 ? (0, 0) : split(extent.h, s.0, span.h), w = split(extent.w, s.1, span.w)
            pads = (h.0, w.0, h.1, w.1)
        case let other:
            throw invalid("auto_pad \(other) is not NOTSET, SAME_UPPER, SAME_LOWER or VALID")
        }
        func outExtent(_ input: Int, _ a: Int, _ b: Int, _ span: Int, _ stride: Int) -> Int {
            let total = input + a + b - span
            guard total >= 0 else { return 0 }
            return (ceil ? (total + stride - 1) / stride : total / stride) + 1
        }
        var out = (h: outExtent(extent.h, pads.top, pads.bottom, span.h, s.0),
                   w: outExtent(extent.w, pads.left, pads.right, span.w, s.1))
        if ceil {
            // A last window must start inside the input or the left padding.
            if (out.h - 1) * s.0 >= extent.h + pads.top { out.h -= 1 }
            if (out.w - 1) * s.1 >= extent.w + pads.left { out.w -= 1 }
        }
        guard out.h >= 1, out.w >= 1 else {
            throw shapeError("the window \(kernel) does not fit the input \(extent) with these pads")
        }
        guard [pads.top, pads.left, pads.bottom, pads.right].allSatisfy({ $0 <= 65535 }) else {
            throw unsupported("padding beyond 65535")
        }
        return Window2D(kernel: k, stride: s, dilation: d, pads: pads, out: out)
    }

    /// X as [N, C, H, W] (a 1-D op's [N, C, W] gets H = 1), and the spatial rank.
    func image(_ x: View) throws(NeuronCompilerError) -> (View, Int) {
        switch x.rank {
        case 4: return (x, 2)
        case 3:
            return (View(buffer: x.buffer, type: x.type, offset: x.offset, dims: [x.dims[0], x.dims[1], 1, x.dims[2]],
                         strides: [x.strides[0], x.strides[1], 0, x.strides[2]]), 1)
        default:
            throw unsupported("\(current.op) over \(x.rank - 2) spatial axes; 1-D and 2-D are supported")
        }
    }

    /// The [N, C, Ho, Wo] result as the op's rank.
    func fromImage(_ out: View, spatial: Int) throws(NeuronCompilerError) -> View {
        spatial == 2 ? out : try reshapeView(out, to: [out.dims[0], out.dims[1], out.dims[3]])
    }

    /// A pool over the whole image.
    func lowerGlobalPool(_ op: NeuronPoolOp) throws(NeuronCompilerError) {
        let (x, spatial) = try image(try floatTensor(0))
        let out = try temp(.float32, [x.dims[0], x.dims[1], 1, 1])
        emit(.pool(op, kernel: (x.dims[2], x.dims[3]), window: NeuronWindow(), countPadding: false), [out, x])
        set(0, .tensor(try fromImage(out, spatial: spatial)))
    }

    /// The upper bound a Clip after this Conv left on it (Fusion), if any.
    var fusedClamp: Float? {
        if case .float(let bound) = current.attributes["neuron.clamp"] { return bound }
        return nil
    }

    /// `out` after a convolution's fused activation where the CONV2D
    /// could not apply it, with the bits its flags give: relu as BINARY
    /// MAX against 0 (NaN kept, -0 made +0; UNARY RELU makes NaN 0), then
    /// the Clip's bound as BINARY MIN.
    func activated(_ out: View, relu: Bool, clamp: Float?) throws(NeuronCompilerError) -> View {
        var result = out
        if relu { result = try binary(.max, result, try scalar(0, "relu")) }
        if let clamp { result = try binary(.min, result, try scalar(clamp, "clamp")) }
        return result
    }

    func lowerConv() throws(NeuronCompilerError) {
        var (x, spatial) = try image(try floatTensor(0))
        let group = try int("group", 1)
        // An image channels last (a Keras model's input, seen through its
        // Transpose) laid out as planes first by one COPY: the engine's
        // kernels read rows of a plane as vectors, and would gather it
        // element by element (MobileNetV2's 3-channel stem 1.5x slower).
        // Depthwise and pointwise convolutions read it channels last.
        if x.strides[3] != 1, x.dims[3] > 1, !(spatial == 2 && readsChannelsLast(current)) { x = copied(x) }
        // Constant weights of one group go to the blob in the engine's
        // packed layout (read in place, no copy per run); others as given.
        let packableWeights = constant(1).flatMap { $0.type == .float32 || $0.type == .float64 || $0.type == .float16 ? $0 : nil }
        let given: View? = group == 1 && packableWeights != nil ? nil : try floatTensor(1)
        let w0Dims = packableWeights.map(\.shape) ?? given?.dims ?? []
        guard w0Dims.count == spatial + 2 else { throw shapeError("the weight \(w0Dims) does not fit a \(spatial)-D convolution") }
        let wDims0 = spatial == 1 ? [w0Dims[0], w0Dims[1], 1, w0Dims[2]] : w0Dims
        guard group >= 1, x.dims[1] % group == 0, wDims0[0] % group == 0, x.dims[1] / group == wDims0[1] else {
            throw shapeError("input channels \(x.dims[1]), weight \(w0Dims) and group \(group) do not agree")
        }
        if let kernel = try ints("kernel_shape"), kernel != Array(w0Dims.dropFirst(2)) {
            throw shapeError("kernel_shape \(kernel) differs from the weight's \(Array(w0Dims.dropFirst(2)))")
        }
        var win = try window(kernel: Array(w0Dims.dropFirst(2)), extent: (x.dims[2], x.dims[3]), spatial: spatial)
        var wDims = wDims0
        // Constant weights of one group lose the taps that only read padding (InceptionV3's
        // last 3x3, 1x3 and 3x1 convolutions over a 1x1 map: 1/9 to 1/3 of
        // the weights streamed), and the input the rows and columns no
        // window reaches.
        var packable = packableWeights
        var weightName = current.inputs[1]
        if given == nil, let constant = packable, let trim = win.trimmed(extent: (x.dims[2], x.dims[3])),
           case let values = constant.doubles(), Self.tapsDroppedAreFinite(values, dims: wDims, kept: trim.taps) {
            let (kh, kw) = (wDims[2], wDims[3])
            var kept: [Double] = []
            kept.reserveCapacity(wDims[0] * wDims[1] * trim.taps.h.count * trim.taps.w.count)
            for plane in 0..<(wDims[0] * wDims[1]) {
                for i in trim.taps.h { for j in trim.taps.w { kept.append(values[(plane * kh + i) * kw + j]) } }
            }
            wDims = [wDims[0], wDims[1], trim.taps.h.count, trim.taps.w.count]
            packable = .make(.float32, wDims, kept)
            weightName += "#taps\(trim.taps.h.lowerBound)-\(trim.taps.h.upperBound),\(trim.taps.w.lowerBound)-\(trim.taps.w.upperBound)"
            win = trim.window
            x.dims[2] = trim.extent.h
            x.dims[3] = trim.extent.w
        }
        let bias = hasInput(2) ? try floatTensor(2) : nil
        if let bias, bias.dims != [wDims[0]] { throw shapeError("the bias \(bias.dims) is not [\(wDims[0])]") }
        let relu = current.attributes["neuron.relu"] == .int(1)
        let clamp = fusedClamp
        let w: View
        var layout = ConvWeights.given
        let positions = x.dims[0] * win.out.h * win.out.w
        // (One image: the product that reads channels last takes a batch of one.)
        let channelsLast = spatial == 2 && x.dims[0] == 1 && autoCast != .all && channelsLastWanted(current.outputs[0])
        // A pointwise convolution reading channels last is a product with
        // positions in rows, which writes channels last too; so is one of
        // up to 32 input channels over planes whose readers want channels
        // last. (With more the product reads its rows across the planes,
        // slower than the packed CONV2D: EfficientNetB0's 1x1 layers of 96
        // and more up to 2x; MobileNetV2's 8 -> 48 as fast. AMD EPYC Zen 1.)
        if spatial == 2, autoCast != .all, let packable, wDims[2] == 1, wDims[3] == 1, readsChannelsLast(current),
           x.dims[0] == 1, x.dims[2] * x.dims[3] > 1, x.strides[1] == 1 || (channelsLast && wDims[1] <= 32) {
            try lowerConvAsMatMul(x, packable, weightName: weightName, dims: wDims, window: win, bias: bias,
                                  relu: relu, clamp: clamp, spatial: spatial, channelsLast: channelsLast)
            return
        }
        if autoCast == .all, let castable = packable ?? constant(1), castable.type.isFloatingPoint,
           ConvolutionPolicy.bf16Pairs(kernel: (wDims[2], wDims[3]), inputChannels: wDims[1],
                                       outputChannels: wDims[0] / group, positions: positions) {
            // Weights as given, stored bf16; the input stays f32, rounded as read.
            layout = .bf16Pairs
            w = try weightView(.make(.float32, wDims, castable.doubles()), name: weightName, as: .bfloat16)
            autoCastOps += 1
            autoCastConvolutions += 1
        } else if let given {
            w = spatial == 1 ? try image(given).0 : given
        } else if let packable {
            // Winograd where it pays and the engine's scratch holds its tiles.
            let tile = spatial == 2 ? ConvolutionPolicy.winogradTile(
                kernel: (wDims[2], wDims[3]), stride: win.stride, dilation: win.dilation, inputChannels: wDims[1],
                outputChannels: wDims[0], output: (win.out.h, win.out.w)) : nil
            if ConvolutionPolicy.asMatMul(positions: positions, winograd: tile != nil) {
                try lowerConvAsMatMul(x, packable, weightName: weightName, dims: wDims, window: win, bias: bias,
                                      relu: relu, clamp: clamp, spatial: spatial)
                return
            }
            layout = tile.map { .winograd(tile: $0) } ?? .packed
            w = try convWeights(packable, dims: wDims, layout: layout, name: weightName)
        } else {
            throw invalid("input 1 has no value")
        }
        let outDims = [x.dims[0], wDims[0], win.out.h, win.out.w]
        // Depthwise layers read and write channels last in place (the
        // engine's channels-in-lanes layout) where their readers take it;
        // so do stems of up to 4 input channels and 8 output columns or
        // more, with no residual (engine_narrow.c's output channels in
        // lanes, else written back into planes by transposes; it declines
        // the others, and the packed product takes only planes).
        let depthwise = layout == .given && group == x.dims[1] && wDims[1] == 1 && wDims[0] == group
        let stem = layout == .packed && wDims[1] <= 4 && win.out.w >= 8 && current.attributes["neuron.residual"] != .int(1)
        var out = try (depthwise || stem) && channelsLast ? channelsLastTemp(outDims) : temp(.float32, outDims)
        let operands = [out, x, w] + (bias.map { [$0] } ?? [])
        // A residual (Fusion: Conv then Add) starts the sums (packed,
        // Winograd) or is added to them (bf16 pairs): copied into the
        // output, which the copy elision then makes the residual's own
        // buffer; or, where it broadcasts, added afterwards.
        if current.attributes["neuron.residual"] == .int(1) {
            let residual = try floatTensor(3)
            let image = spatial == 1 ? try self.image(residual).0 : residual
            if given == nil || layout == .bf16Pairs, image.dims == out.dims {
                emit(.copy, [out, image])
                emit(.conv(win.engine, bias: bias != nil, relu: relu, clamp: clamp, weights: layout, accumulate: true),
                     operands)
            } else {
                emit(.conv(win.engine, bias: bias != nil, relu: false, clamp: nil, weights: layout, accumulate: false),
                     operands)
                out = try binary(.add, try fromImage(out, spatial: spatial), residual)
                set(0, .tensor(try activated(out, relu: relu, clamp: clamp)))
                return
            }
        } else {
            emit(.conv(win.engine, bias: bias != nil, relu: relu, clamp: clamp, weights: layout, accumulate: false),
                 operands)
        }
        set(0, .tensor(try fromImage(out, spatial: spatial)))
    }

    /// Whether every weight outside the taps `kept` (of weights `dims`,
    /// `[Co, Ci, Kh, Kw]`) is finite: an infinite or NaN one times the
    /// padding's zero is NaN in every form that multiplies the padding,
    /// so such taps stay.
    static func tapsDroppedAreFinite(_ values: [Double], dims: [Int], kept: (h: ClosedRange<Int>, w: ClosedRange<Int>))
        -> Bool {
        let (kh, kw) = (dims[2], dims[3])
        for (at, value) in values.enumerated() where !value.isFinite {
            let (i, j) = (at / kw % kh, at % kw)
            if !kept.h.contains(i) || !kept.w.contains(j) { return false }
        }
        return true
    }

    /// A convolution over a few output positions (the last stages of a
    /// CNN on a small image) as a MATMUL of each position's window by the
    /// weights laid out [Ci·Kh·Kw, Co], output channels in the vector
    /// lanes: a CONV2D puts the positions there, a handful of lanes busy
    /// while the weights stream past. The windows are gathered by one
    /// COPY (im2col) from the input, or from a zero-padded copy of it
    /// where the windows reach into the padding; a 1x1 convolution of
    /// stride 1 reads the image in place. Each output is the packed
    /// CONV2D's chain (input channels, then kernel rows, then columns, a
    /// padding tap multiplying zero; then the bias), so the bits are the
    /// packed layout's; relu and the bound are the MATMUL's (ISA 1.13),
    /// or follow a residual added after it; the [positions, Co] product
    /// is the image channels last, copied back into planes unless
    /// `channelsLast`.
    func lowerConvAsMatMul(_ x: View, _ weights: ConstantTensor, weightName: String, dims: [Int], window win: Window2D,
                           bias: View?, relu: Bool, clamp: Float?, spatial: Int,
                           channelsLast: Bool = false) throws(NeuronCompilerError) {
        let (n, co, ci, kh, kw) = (x.dims[0], dims[0], dims[1], dims[2], dims[3])
        let (ho, wo) = (win.out.h, win.out.w)
        let k = ci * kh * kw, positions = n * ho * wo
        let rows: View
        if n == 1, kh == 1, kw == 1, win.stride == (1, 1), win.pads == (0, 0, 0, 0) {
            // The positions in rows, read in place where they are one axis
            // (planes first or channels last alike).
            let image = Self.positionStride(x) == nil ? contiguous(x) : x
            rows = View(buffer: image.buffer, type: image.type, offset: image.offset, dims: [ho * wo, ci],
                        strides: [Self.positionStride(image) ?? 1, image.strides[1]])
        } else {
            // The extent the windows cover, padding included.
            let hp = (ho - 1) * win.stride.h + (kh - 1) * win.dilation.h + 1
            let wp = (wo - 1) * win.stride.w + (kw - 1) * win.dilation.w + 1
            var source = x
            if win.pads.top > 0 || win.pads.left > 0 || hp > x.dims[2] + win.pads.top || wp > x.dims[3] + win.pads.left {
                let padded = try temp(.float32, [n, ci, hp, wp])
                emit(.fill(0), [padded])
                var inside = padded, part = x
                part.dims[2] = min(x.dims[2], hp - win.pads.top)
                part.dims[3] = min(x.dims[3], wp - win.pads.left)
                inside.dims = part.dims
                inside.offset += win.pads.top * wp + win.pads.left
                if part.dims[2] > 0, part.dims[3] > 0 { emit(.copy, [inside, part]) }
                source = padded
            }
            // Stored [Ci·Kh·Kw, positions], each tap's positions a row of
            // the image (a COPY walks those rows, not Kw-long ones), and
            // read by the MATMUL across it.
            let gathered = try temp(.float32, [k, positions])
            let s = source.strides
            let windows = View(buffer: source.buffer, type: source.type, offset: source.offset,
                               dims: [ci, kh, kw, n, ho, wo],
                               strides: [s[1], s[2] * win.dilation.h, s[3] * win.dilation.w,
                                         s[0], s[2] * win.stride.h, s[3] * win.stride.w])
            var target = gathered
            target.dims = windows.dims
            target.strides = [kh * kw * positions, kw * positions, positions, ho * wo, wo, 1]
            emit(.copy, [target, windows])
            rows = gathered.permuted([1, 0])
        }
        let laid = try weightView(.make(.float32, [co, k], weights.doubles()), name: weightName)
        let residual = current.attributes["neuron.residual"] == .int(1)
        // relu and the bound in the MATMUL (ISA 1.13) unless a residual comes first.
        var out = try matmul(rows, laid.permuted([1, 0]), bias: bias, cast: false, relu: relu && !residual,
                             clamp: residual ? nil : clamp)
        // [positions, Co] is the image channels last; else copied into planes.
        out = try reshapeView(out, to: [n, ho, wo, co]).permuted([0, 3, 1, 2])
        if residual {
            // Added as it is, into planes unless `channelsLast` (no copy first).
            let (product, shortcut, shape) = try broadcast(out, try self.image(try floatTensor(3)).0)
            let sum = try channelsLast ? temp(.float32, shape, layoutOf: [product]) : temp(.float32, shape)
            emit(.binary(.add), [sum, product, shortcut])
            out = try activated(sum, relu: relu, clamp: clamp)
        } else if !channelsLast {
            out = contiguous(out)
        }
        set(0, .tensor(try fromImage(out, spatial: spatial)))
    }

    /// The stride between an image's positions when they are one axis
    /// (row after row, each `w` positions of the same stride), else nil.
    static func positionStride(_ x: View) -> Int? {
        guard x.rank == 4, x.dims[0] == 1 else { return nil }
        if x.dims[2] == 1 { return x.strides[3] }
        if x.dims[3] == 1 { return x.strides[2] }
        return x.strides[2] == x.dims[3] * x.strides[3] ? x.strides[3] : nil
    }

    /// A new float32 image `dims` ([N, C, H, W]) laid out channels last:
    /// strides [H·W·C, 1, W·C, C].
    func channelsLastTemp(_ dims: [Int]) throws(NeuronCompilerError) -> View {
        try temp(.float32, dims, layoutOf: [View(buffer: 0, type: .float32, dims: dims,
                                                  strides: [dims[1] * dims[2] * dims[3], 1, dims[3] * dims[1], dims[1]])])
    }

    /// Whether `node` is a convolution that reads its image channels last
    /// at speed: depthwise, or pointwise (1x1, stride 1, no padding, one
    /// group, constant weights) as a product of at least 16 columns (output
    /// channels; fewer leave the product's vectors part empty, and the
    /// planes' convolution is faster: MobileNetV2's 16 -> 8 at 48x48 twice
    /// as fast, AMD EPYC).
    func readsChannelsLast(_ node: Node) -> Bool {
        guard node.op == "Conv", node.inputs.count >= 2,
              let shape = graph.constants[node.inputs[1]]?.shape ?? constantShape(node.inputs[1]), shape.count == 4
        else { return false }
        let group: Int
        if case .int(let g)? = node.attributes["group"] { group = g } else { group = 1 }
        func all(_ name: String, _ value: Int) -> Bool {
            guard let attribute = node.attributes[name] else { return true }
            if case .ints(let values) = attribute { return values.allSatisfy { $0 == value } }
            return false
        }
        if group > 1 { return shape[1] == 1 && shape[0] == group }
        let autoPad: String
        if case .string(let pad)? = node.attributes["auto_pad"] { autoPad = pad } else { autoPad = "NOTSET" }
        return shape[0] >= 16 && shape[2] == 1 && shape[3] == 1 && all("strides", 1) && all("pads", 0)
            && (autoPad == "NOTSET" || autoPad == "VALID" || autoPad.hasPrefix("SAME"))
    }

    private func constantShape(_ name: String) -> [Int]? {
        if case .constant(let tensor)? = values[name] { return tensor.shape }
        return nil
    }

    /// Whether value `name` is better laid out channels last: every reader
    /// is a convolution that reads it so (readsChannelsLast) or adds it as
    /// a residual, or an
    /// elementwise op whose result is, in turn (up to four deep). Not a
    /// graph output.
    func channelsLastWanted(_ name: String, depth: Int = 0) -> Bool {
        let elementwise: Set<String> = ["Add", "Sub", "Mul", "Div", "Relu", "Clip", "Sigmoid", "Swish", "HardSigmoid",
                                        "HardSwish", "LeakyRelu", "Tanh", "Max", "Min"]
        guard depth < 4, !graph.outputs.contains(where: { $0.name == name }) else { return false }
        let readers = graph.nodes.filter { $0.reads.contains(name) }
        return !readers.isEmpty && readers.allSatisfy { node in
            // (A fused residual, input 3, is added to the result as it is.)
            if node.op == "Conv" {
                return (node.inputs.first == name || node.inputs.dropFirst(3).first == name) && readsChannelsLast(node)
            }
            return elementwise.contains(node.op) && node.outputs.count == 1
                && channelsLastWanted(node.outputs[0], depth: depth + 1)
        }
    }

    /// ConvTranspose as a CONV2D: the input spread out by the strides
    /// (zeros between, by a FILL and a strided COPY), padded by
    /// dilation · (kernel - 1) less the given pads (cropped where that is
    /// negative), convolved with the weights flipped in space and with
    /// input and output channels swapped, per group.
    func lowerConvTranspose() throws(NeuronCompilerError) {
        let (x, spatial) = try image(try floatTensor(0))
        let given = try floatTensor(1)
        let group = try int("group", 1)
        guard given.rank == spatial + 2 else { throw shapeError("the weight \(given.dims) does not fit a \(spatial)-D ConvTranspose") }
        let w = spatial == 1 ? try image(given).0 : given   // [Ci, Co / group, Kh, Kw]
        let inputs = x.dims[1]
        guard group >= 1, inputs % group == 0, w.dims[0] == inputs else {
            throw shapeError("input channels \(inputs), weight \(given.dims) and group \(group) do not agree")
        }
        let outputs = w.dims[1] * group, kernel = (w.dims[2], w.dims[3])
        func pair(_ name: String, _ fallback: Int) throws(NeuronCompilerError) -> (Int, Int) {
            guard let values = try ints(name) else { return (fallback, fallback) }
            guard values.count == spatial else { throw invalid("\(name) has \(values.count) values; the input has \(spatial) spatial axes") }
            return spatial == 1 ? (fallback == 1 ? 1 : 0, values[0]) : (values[0], values[1])
        }
        let stride = try pair("strides", 1), dilation = try pair("dilations", 1), extra = try pair("output_padding", 0)
        guard [stride.0, stride.1, dilation.0, dilation.1].allSatisfy({ (1...65535).contains($0) }),
              [extra.0, extra.1].allSatisfy({ $0 >= 0 && $0 < 65536 }) else {
            throw invalid("strides and dilations must be 1 to 65535, output_padding at least 0")
        }
        let extent = (x.dims[2], x.dims[3])
        let natural = { (axis: Int) -> Int in
            let (n, s, k, d, e) = axis == 0 ? (extent.0, stride.0, kernel.0, dilation.0, extra.0) : (extent.1, stride.1, kernel.1, dilation.1, extra.1)
            return s * (n - 1) + e + (k - 1) * d + 1
        }
        var shape: (Int, Int)?
        if let wanted = try ints("output_shape") {
            let tail = Array(wanted.suffix(spatial))
            guard tail.count == spatial, tail.allSatisfy({ $0 >= 1 }) else { throw invalid("output_shape \(wanted)") }
            shape = spatial == 1 ? (1, tail[0]) : (tail[0], tail[1])
        }
        // Pads at the start and the end of each axis, as ONNX's reference
        // sets them: from output_shape when it is given (the pads attribute
        // ignored), the odd one at the end for SAME_UPPER, else at the start.
        var begin = (0, 0), end = (0, 0)
        let autoPad = try string("auto_pad", "NOTSET")
        if autoPad != "NOTSET" && autoPad != "VALID" && autoPad != "SAME_UPPER" && autoPad != "SAME_LOWER" {
            throw invalid("auto_pad \(autoPad) is not NOTSET, SAME_UPPER, SAME_LOWER or VALID")
        }
        if let shape {
            let total = (natural(0) - shape.0, natural(1) - shape.1)
            // Halves rounded down, as the reference's Python does (a larger
            // output than the natural one makes the pads negative).
            func split(_ t: Int) -> (Int, Int) {
                let half = t >= 0 ? t / 2 : -((1 - t) / 2)
                return autoPad == "SAME_UPPER" ? (half, t - half) : (t - half, half)
            }
            let h = split(total.0), v = split(total.1)
            begin = (h.0, v.0)
            end = (h.1, v.1)
        } else if let pads = try ints("pads"), autoPad == "NOTSET" || autoPad == "VALID" {
            guard pads.count == 2 * spatial, pads.allSatisfy({ (0...65535).contains($0) }) else {
                throw invalid("pads \(pads) must be \(2 * spatial) values of 0 to 65535")
            }
            begin = spatial == 1 ? (0, pads[0]) : (pads[0], pads[1])
            end = spatial == 1 ? (0, pads[1]) : (pads[2], pads[3])
        } else if autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER" {
            let target = (extent.0 * stride.0, extent.1 * stride.1)
            let total = (natural(0) - target.0, natural(1) - target.1)
            func split(_ t: Int) -> (Int, Int) { autoPad == "SAME_UPPER" ? (t / 2, t - t / 2) : (t - t / 2, t / 2) }
            let h = split(total.0), v = split(total.1)
            begin = (h.0, v.0)
            end = (h.1, v.1)
        }
        let out = shape ?? (natural(0) - begin.0 - end.0, natural(1) - begin.1 - end.1)
        guard out.0 >= 1, out.1 >= 1 else { throw shapeError("ConvTranspose of \(x.dims) leaves no output") }
        if group == 1, dilation == (1, 1), stride != (1, 1), let weights = constant(1),
           try lowerConvTransposeByPhases(x, weights, kernel: kernel, stride: stride, begin: begin, out: out,
                                          spatial: spatial) {
            return
        }

        // The input spread out: [N, Ci, (H - 1) · sh + 1, (W - 1) · sw + 1].
        let spread = ((extent.0 - 1) * stride.0 + 1, (extent.1 - 1) * stride.1 + 1)
        var source = x
        if stride != (1, 1) {
            let zeros = try temp(.float32, [x.dims[0], inputs, spread.0, spread.1])
            emit(.fill(0), [zeros])
            var target = zeros
            target.dims = x.dims
            target.strides[2] *= stride.0
            target.strides[3] *= stride.1
            emit(.copy, [target, x])
            source = zeros
        }
        // Padding before and after: dilation · (kernel - 1) - pad at the
        // start; at the end whatever makes the output `out` long.
        var padding = [0, 0, 0, 0]   // top, left, bottom, right
        for axis in 0..<2 {
            let span = (axis == 0 ? (kernel.0 - 1) * dilation.0 : (kernel.1 - 1) * dilation.1)
            var front = span - (axis == 0 ? begin.0 : begin.1)
            var back = (axis == 0 ? out.0 : out.1) + span - front - (axis == 0 ? spread.0 : spread.1)
            let dim = 2 + axis
            if front < 0 {   // crop the start
                source.offset += -front * source.strides[dim]
                source.dims[dim] -= -front
                front = 0
            }
            if back < 0 {
                source.dims[dim] -= -back
                back = 0
            }
            guard source.dims[dim] >= 1, front <= 65535, back <= 65535 else {
                throw unsupported("ConvTranspose pads that crop the whole input, or pad beyond 65535")
            }
            padding[axis] = front
            padding[axis + 2] = back
        }
        // Weights [Co, Ci / group, Kh, Kw]: w[g · Ci/g + ci][co][Kh-1-kh][Kw-1-kw].
        let perIn = inputs / group, perOut = w.dims[1]
        let flipped: View
        if let constant = constant(1) {
            let values = constant.doubles()
            var weights = [Double](repeating: 0, count: try foldedCount([outputs, perIn, kernel.0, kernel.1], what: "the flipped weights"))
            for g in 0..<group { for co in 0..<perOut { for ci in 0..<perIn { for kh in 0..<kernel.0 { for kw in 0..<kernel.1 {
                let from = (((g * perIn + ci) * perOut + co) * kernel.0 + (kernel.0 - 1 - kh)) * kernel.1 + (kernel.1 - 1 - kw)
                weights[(((g * perOut + co) * perIn + ci) * kernel.0 + kh) * kernel.1 + kw] = values[from]
            } } } } }
            flipped = try weightView(.make(.float32, [outputs, perIn, kernel.0, kernel.1], weights), name: "\(current.name)#flipped")
        } else {
            let target = try temp(.float32, [outputs, perIn, kernel.0, kernel.1])
            for g in 0..<group { for kh in 0..<kernel.0 { for kw in 0..<kernel.1 {
                var to = target, from = w
                to.offset += g * perOut * target.strides[0] + kh * target.strides[2] + kw * target.strides[3]
                to.dims = [perOut, perIn]
                to.strides = [target.strides[0], target.strides[1]]
                from.offset += g * perIn * w.strides[0] + (kernel.0 - 1 - kh) * w.strides[2] + (kernel.1 - 1 - kw) * w.strides[3]
                from.dims = [perOut, perIn]
                from.strides = [w.strides[1], w.strides[0]]
                emit(.copy, [to, from])
            } } }
            flipped = target
        }
        let bias = hasInput(2) ? try floatTensor(2) : nil
        if let bias, bias.dims != [outputs] { throw shapeError("the bias \(bias.dims) is not [\(outputs)]") }
        let result = try temp(.float32, [x.dims[0], outputs, out.0, out.1])
        let window = NeuronWindow(padding: (UInt32(padding[0]), UInt32(padding[1]), UInt32(padding[2]), UInt32(padding[3])),
                                  dilation: (UInt32(dilation.0), UInt32(dilation.1)))
        emit(.conv(window, bias: bias != nil, relu: false, clamp: nil, weights: .given, accumulate: false),
             [result, source, flipped] + (bias.map { [$0] } ?? []))
        set(0, .tensor(try fromImage(result, spatial: spatial)))
    }

    /// A ConvTranspose of one group, constant weights, dilation 1 and a
    /// stride above 1 as one CONV2D over the input and a COPY: output
    /// position o = s·t + r (phase r) sums x[t + e]·w[k] over the taps k
    /// with r + pad − k = s·e, so each phase is a convolution of stride 1
    /// over x with the taps that reach it. The CONV2D computes every
    /// phase at once, as Co·sh·sw output channels over a window covering
    /// all phases' taps (a tap one phase lacks weighs zero), in the packed
    /// layout; the COPY interleaves the phases into the output. The
    /// zero-spread form multiplied each weight by sh·sw times as many
    /// inputs, most of them zeros. The chain is the spread form's (input
    /// channels, then the flipped kernel's rows and columns), with the
    /// zero products moved from the inputs to the weights: the same bits
    /// for finite inputs. False where it does not apply (a bias that is
    /// not constant, a window that misses the input).
    func lowerConvTransposeByPhases(_ x: View, _ weights: ConstantTensor, kernel: (Int, Int), stride: (Int, Int),
                                    begin: (Int, Int), out: (Int, Int), spatial: Int) throws(NeuronCompilerError) -> Bool {
        let bias = hasInput(2) ? constant(2) : nil
        if hasInput(2), bias == nil { return false }
        let (n, ci, co) = (x.dims[0], x.dims[1], weights.shape[1])
        struct Axis { var s, k, pad, out, extent, eMin, taps, count, cropStart, length, padBegin, padEnd: Int }
        func axis(_ s: Int, _ k: Int, _ pad: Int, _ out: Int, _ extent: Int) -> Axis? {
            // e for each phase r and tap k: (r + pad − k) / s where it divides.
            var lo = Int.max, hi = Int.min
            for r in 0..<s { for tap in 0..<k where (r + pad - tap) % s == 0 {
                let e = (r + pad - tap) / s
                lo = min(lo, e)
                hi = max(hi, e)
            } }
            guard lo <= hi else { return nil }
            let count = (out + s - 1) / s, taps = hi - lo + 1
            let span = count - 1 + taps
            let cropStart = max(0, lo), available = min(extent, lo + span)
            guard available - cropStart >= 1 else { return nil }
            let padBegin = max(0, -lo), padEnd = lo + span - available
            guard padBegin <= 65535, padEnd <= 65535 else { return nil }
            return Axis(s: s, k: k, pad: pad, out: out, extent: extent, eMin: lo, taps: taps, count: count,
                        cropStart: cropStart, length: available - cropStart, padBegin: padBegin, padEnd: padEnd)
        }
        guard let h = axis(stride.0, kernel.0, begin.0, out.0, x.dims[2]),
              let w = axis(stride.1, kernel.1, begin.1, out.1, x.dims[3]) else { return false }
        let phases = h.s * w.s, channels = co * phases
        // Weights [Co·sh·sw, Ci, taps_h, taps_w], channel (co·sh + rh)·sw + rw;
        // window tap u reads x[t + eMin + u], kernel tap k = r + pad − s·(eMin + u).
        let given = weights.doubles()
        var laid = [Double](repeating: 0, count: try foldedCount([channels, ci, h.taps, w.taps], what: "the phase weights"))
        for o in 0..<co { for rh in 0..<h.s { for rw in 0..<w.s { for c in 0..<ci {
            for uh in 0..<h.taps {
                let kh = rh + h.pad - h.s * (h.eMin + uh)
                guard (0..<h.k).contains(kh) else { continue }
                for uw in 0..<w.taps {
                    let kw = rw + w.pad - w.s * (w.eMin + uw)
                    guard (0..<w.k).contains(kw) else { continue }
                    laid[(((o * h.s + rh) * w.s + rw) * ci + c) * h.taps * w.taps + uh * w.taps + uw] =
                        given[((c * co + o) * h.k + kh) * w.k + kw]
                }
            }
        } } } }
        let dims = [channels, ci, h.taps, w.taps]
        let packed = try convWeights(.make(.float32, dims, laid), dims: dims, layout: .packed, name: "\(current.name)#phases")
        var source = x
        source.offset += h.cropStart * x.strides[2] + w.cropStart * x.strides[3]
        source.dims[2] = h.length
        source.dims[3] = w.length
        let phased = try temp(.float32, [n, channels, h.count, w.count])
        let window = NeuronWindow(padding: (UInt32(h.padBegin), UInt32(w.padBegin), UInt32(h.padEnd), UInt32(w.padEnd)))
        var operands = [phased, source, packed]
        if let bias {
            let values = bias.doubles()
            guard values.count == co else { throw shapeError("the bias \(bias.shape) is not [\(co)]") }
            operands.append(try weightView(.make(.float32, [channels], (0..<channels).map { values[$0 / phases] }),
                                           name: "\(current.name)#phasebias"))
        }
        emit(.conv(window, bias: bias != nil, relu: false, clamp: nil, weights: .packed, accumulate: false), operands)
        // Each phase into its strided positions of the output.
        let result = try temp(.float32, [n, co, out.0, out.1])
        let plane = h.count * w.count
        if out.0 % h.s == 0, out.1 % w.s == 0 {
            // Whole phases: one COPY, phase axes outside the phase's rows.
            let target = View(buffer: result.buffer, type: .float32, offset: result.offset,
                              dims: [n, co, h.s, w.s, h.count, w.count],
                              strides: [co * out.0 * out.1, out.0 * out.1, out.1, 1, h.s * out.1, w.s])
            let from = View(buffer: phased.buffer, type: .float32, offset: phased.offset,
                            dims: target.dims, strides: [channels * plane, phases * plane, w.s * plane, plane, w.count, 1])
            emit(.copy, [target, from])
            set(0, .tensor(try fromImage(result, spatial: spatial)))
            return true
        }
        for rh in 0..<h.s { for rw in 0..<w.s {
            let rows = (out.0 - rh + h.s - 1) / h.s, cols = (out.1 - rw + w.s - 1) / w.s
            guard rows > 0, cols > 0 else { continue }
            let target = View(buffer: result.buffer, type: .float32, offset: result.offset + rh * out.1 + rw,
                              dims: [n, co, rows, cols],
                              strides: [co * out.0 * out.1, out.0 * out.1, h.s * out.1, w.s])
            let from = View(buffer: phased.buffer, type: .float32, offset: phased.offset + (rh * w.s + rw) * plane,
                            dims: [n, co, rows, cols], strides: [channels * plane, phases * plane, w.count, 1])
            emit(.copy, [target, from])
        } }
        set(0, .tensor(try fromImage(result, spatial: spatial)))
        return true
    }

    /// Weights `[Co, Ci, Kh, Kw]` in the blob in an engine layout: packed,
    /// `[ceil(Co/6), Ci, Kh, Kw, 6]`, or (3x3) Winograd's U,
    /// `[(tile + 2)², ceil(Co/6), Ci, 6]`; zeros past Co.
    func convWeights(_ tensor: ConstantTensor, dims: [Int], layout: ConvWeights, name: String)
        throws(NeuronCompilerError) -> View {
        let rows = NeuronProgram.convPackRows, blocks = (dims[0] + rows - 1) / rows
        let laidDims = layout.winogradTile.map { [($0 + 2) * ($0 + 2), blocks, dims[1], rows] }
            ?? [blocks, dims[1], dims[2], dims[3], rows]
        let key = "\(name)#\(layout)"
        if let view = weightViews[key], view.dims == laidDims { return view }
        let floats: [Float] = tensor.type == .float32
            ? tensor.bytes.withUnsafeBytes { raw in
                (0..<tensor.count).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
            }
            : tensor.doubles().map { Float($0) }
        let laid = layout.winogradTile.map { NeuronProgram.winogradConvWeights(floats, dims: dims, tile: $0) }
            ?? NeuronProgram.packConvWeights(floats, dims: dims)
        guard let laid else { throw shapeError("the weight \(tensor.shape) does not hold \(dims)") }
        let bytes = laid.withUnsafeBufferPointer { Array(UnsafeRawBufferPointer($0)) }
        let view = View(buffer: 0, type: .float32, offset: appendWeight(bytes, size: 4) / 4, dims: laidDims)
        weightViews[key] = view
        return view
    }

    func lowerPool(_ op: NeuronPoolOp, lp: Bool = false) throws(NeuronCompilerError) {
        let p = lp ? try int("p", 2) : 1
        guard p >= 1, p <= 64 else { throw invalid("p=\(p); LpPool takes p from 1 to 64") }
        // What POOL2D does not cover goes by axes (Pooling.swift).
        if try needsPoolByAxes(op, lp: lp) {
            try lowerPoolByAxes(op, lp: lp ? p : nil)
            return
        }
        var (x, spatial) = try image(try floatTensor(0))
        if lp {
            x = p == 1 ? try apply(.abs, x) : p == 2 ? try binary(.mul, x, x)
                : try binary(.pow, try apply(.abs, x), try scalar(Float(p), "p"))
        }
        guard let kernel = try ints("kernel_shape"), kernel.count == spatial else {
            throw invalid("kernel_shape must give \(spatial) values")
        }
        if current.outputs.count > 1, !current.outputs[1].isEmpty { throw unsupported("the Indices output is not supported") }
        if try int("storage_order", 0) != 0 { throw unsupported("storage_order=1 is not supported") }
        let ceil = try int("ceil_mode", 0) != 0
        let includePad = try int("count_include_pad", 0) != 0
        let countPadding = lp || includePad
        var win = try window(kernel: kernel, extent: (x.dims[2], x.dims[3]), spatial: spatial, ceil: ceil)
        guard win.dilation == (1, 1) else { throw unsupported("dilated pooling is not supported") }
        // ceil_mode: pad the bottom and right so that the last windows fit.
        let extraH = max(0, (win.out.h - 1) * win.stride.h + win.kernel.h - (x.dims[2] + win.pads.top + win.pads.bottom))
        let extraW = max(0, (win.out.w - 1) * win.stride.w + win.kernel.w - (x.dims[3] + win.pads.left + win.pads.right))
        if (extraH > 0 || extraW > 0) && op == .avg && countPadding {
            throw unsupported("ceil_mode with count_include_pad=1 where the last window passes the padding")
        }
        if (extraH > 0 || extraW > 0) && op == .avg {
            throw unsupported("average pooling with ceil_mode where the last window passes the input")
        }
        win.pads.bottom += extraH
        win.pads.right += extraW
        guard win.pads.top < win.kernel.h, win.pads.bottom < win.kernel.h, win.pads.left < win.kernel.w,
              win.pads.right < win.kernel.w else {
            throw unsupported("padding as large as the kernel (a window of padding only)")
        }
        var out = try temp(.float32, [x.dims[0], x.dims[1], win.out.h, win.out.w])
        emit(.pool(op, kernel: win.kernel, window: win.engine, countPadding: countPadding), [out, x])
        if lp {
            out = try binary(.mul, out, try scalar(Float(win.kernel.h * win.kernel.w), "window"))
            if p == 2 {
                out = try apply(.sqrt, out)
            } else if p > 2 {
                out = try binary(.pow, out, try scalar(1 / Float(p), "root"))
            }
        }
        set(0, .tensor(try fromImage(out, spatial: spatial)))
    }

    /// Three spatial axes, dilations, or an average whose ceil_mode
    /// windows pass the input.
    func needsPoolByAxes(_ op: NeuronPoolOp, lp: Bool) throws(NeuronCompilerError) -> Bool {
        let x = try floatTensor(0)
        guard x.rank == 3 || x.rank == 4 else { return x.rank == 5 }
        if let dilations = try ints("dilations"), dilations.contains(where: { $0 != 1 }) { return true }
        guard op == .avg || lp, try int("ceil_mode", 0) != 0 else { return false }
        let windows = try axisWindows(extents: Array(x.dims.dropFirst(2)))
        return zip(windows, x.dims.dropFirst(2)).contains { w, n in
            (w.out - 1) * w.stride + (w.kernel - 1) * w.dilation + 1 > n + w.before + w.after
        }
    }

    /// Inference batch norm with constant statistics: y = x * s + t per channel.
    func lowerBatchNorm() throws(NeuronCompilerError) {
        let x = try floatTensor(0)
        guard try int("training_mode", 0) == 0 else { throw unsupported("training_mode=1") }
        guard current.outputs.count == 1 || current.outputs.dropFirst().allSatisfy(\.isEmpty) else {
            throw unsupported("the running mean and variance outputs (training) are not supported")
        }
        guard x.rank >= 2 else { throw shapeError("the input \(x.dims) has no channel axis") }
        let shape = [x.dims[1]] + [Int](repeating: 1, count: x.rank - 2)
        if let (scale, shift) = try batchNormAffine(channels: x.dims[1]) {
            let s = try weightView(.make(.float32, shape, scale.map(Double.init)), name: "\(current.name)#scale")
            let t = try weightView(.make(.float32, shape, shift.map(Double.init)), name: "\(current.name)#shift")
            set(0, .tensor(try binary(.add, try binary(.mul, x, s), t)))
            return
        }
        // Statistics known only at run time: the same affine map, computed there.
        var params: [View] = []
        for index in 1...4 {
            let view = try floatTensor(index)
            guard view.count == x.dims[1] else { throw shapeError("input \(index) has \(view.count) values, not \(x.dims[1])") }
            params.append(try reshapeView(view, to: [x.dims[1]]))
        }
        let epsilon = try weightView(.make(.float32, [], [Double(try float("epsilon", 1e-5))]), name: "\(current.name)#epsilon")
        let inverse = try temp(.float32, [x.dims[1]])
        emit(.unary(.rsqrt, alpha: 0), [inverse, try binary(.add, params[3], epsilon)])
        let s = try binary(.mul, params[0], inverse)
        let t = try binary(.sub, params[1], try binary(.mul, params[2], s))
        set(0, .tensor(try binary(.add, try binary(.mul, x, try reshapeView(s, to: shape)), try reshapeView(t, to: shape))))
    }

    /// Per channel s = scale / sqrt(var + eps) and t = B - mean * s, when constant.
    func batchNormAffine(channels: Int) throws(NeuronCompilerError) -> ([Float], [Float])? {
        guard let scale = constant(1)?.doubles(), let bias = constant(2)?.doubles(),
              let mean = constant(3)?.doubles(), let variance = constant(4)?.doubles() else { return nil }
        guard [scale, bias, mean, variance].allSatisfy({ $0.count == channels }) else {
            throw shapeError("scale, B, mean and var must each have \(channels) values")
        }
        let epsilon = Double(try float("epsilon", 1e-5))
        var s: [Float] = [], t: [Float] = []
        for c in 0..<channels {
            let factor = Float(scale[c] / (variance[c] + epsilon).squareRoot())
            s.append(factor)
            t.append(Float(bias[c] - mean[c] * Double(factor)))
        }
        return (s, t)
    }

    /// y = x / (bias + alpha / size * sum of x² over `size` channels)^beta:
    /// the channel sum is an average pool over a [N, 1, C, H·W] view.
    func lowerLRN() throws(NeuronCompilerError) {
        let x = contiguous(try floatTensor(0))
        guard x.rank == 4 else { throw unsupported("LRN over a \(x.rank)-D input; 4-D is supported") }
        let size = try int("size", 0)
        guard (1...65535).contains(size) else { throw invalid("size must be 1 to 65535") }
        let alpha = try float("alpha", 1e-4), beta = try float("beta", 0.75), bias = try float("bias", 1)
        let squared = try binary(.mul, x, x)
        let (n, c, hw) = (x.dims[0], x.dims[1], x.dims[2] * x.dims[3])
        let planes = try reshapeView(squared, to: [n, 1, c, hw])
        let before = (size - 1) / 2, after = size - 1 - before
        guard before < size, after < size else { throw unsupported("this LRN size") }
        let window = NeuronWindow(stride: (1, 1), padding: (UInt32(before), 0, UInt32(after), 0))
        let summed = try temp(.float32, [n, 1, c, hw])
        emit(.pool(.avg, kernel: (size, 1), window: window, countPadding: true), [summed, planes])
        // avg = sum / size, so alpha / size * sum = alpha * avg.
        let scaled = try binary(.mul, try reshapeView(summed, to: x.dims),
                                try weightView(.make(.float32, [], [Double(alpha)]), name: "\(current.name)#alpha"))
        let base = try binary(.add, scaled, try weightView(.make(.float32, [], [Double(bias)]), name: "\(current.name)#bias"))
        let power = try binary(.pow, base, try weightView(.make(.float32, [], [Double(-beta)]), name: "\(current.name)#beta"))
        set(0, .tensor(try binary(.mul, x, power)))
    }
}

/// How neuron-cc chooses to run a convolution (the compiler's policy, not
/// the ISA's: the engine runs whichever form it is given).
public enum ConvolutionPolicy {
    /// Whether a convolution of one group with constant weights runs as a
    /// MATMUL with the output channels in the vector lanes
    /// (Lowering.lowerConvAsMatMul) rather than as a CONV2D, which puts
    /// `positions` (the output's, over the batch) in the lanes: when they
    /// fill less than one 16-lane vector, or when Winograd would run them
    /// as at most four tiles. Measured on ResNet-50, InceptionV3,
    /// DenseNet121, NASNetMobile, MobileNetV2 and EfficientNetB0 (AMD
    /// EPYC, AVX-512; docs/benchmarks.md): at 16 positions the packed
    /// CONV2D is faster than the MATMUL and its copies, at 49 and 64 it is
    /// mixed.
    public static func asMatMul(positions: Int, winograd: Bool) -> Bool {
        positions < 16 || (winograd && positions <= 16)
    }

    /// Whether `--auto-cast all` runs a convolution as CONV2D in bf16
    /// pairs (ISA 1.10): 1x1 kernels with at least 64 input and 32
    /// output channels a group, over at least 32 positions. On
    /// AVX512_BF16 these run 1.4-2.1x faster than fp32 in ResNet-50
    /// (docs/benchmarks.md). With fewer input channels a product does
    /// too little work per output for bf16 to pay for packing its
    /// operands; over fewer positions the packed fp32 kernel is as fast
    /// (its register block fits 16 positions; VDPBF16PS's panels are 32
    /// wide); larger kernels gather their windows and lose to Winograd
    /// (3x3) or gain little (strided), so they stay fp32.
    public static func bf16Pairs(kernel: (Int, Int), inputChannels: Int, outputChannels: Int, positions: Int) -> Bool {
        kernel == (1, 1) && inputChannels >= 64 && outputChannels >= 32 && positions >= 32
    }

    /// The Winograd variant `neuron-cc` runs a convolution as: the output
    /// tile 4 (F(4x4, 3x3)) or 2 (F(2x2, 3x3)), or nil for the packed
    /// direct convolution. Winograd takes 3x3 kernels of stride and
    /// dilation 1 with at least 16 input and output channels (fewer, and
    /// the transforms cost more than the products they save) and at most
    /// 1024 input channels (the engine's scratch holds every channel's
    /// tiles); F(4x4, 3x3) takes at most 256 and outputs of at least 12x12
    /// (on smaller ones, tiles of 4 waste more than they save, and too few
    /// fill the engine's sixteen lanes), and at least 64 output channels
    /// unless there are at most 32 input channels: with fewer outputs its
    /// larger input transform costs more than its products save (AMD
    /// EPYC, 3x3 at 12x12 to 56x56: 128 input and 32 or 48 output
    /// channels, as in DenseNet, run up to 20% faster as F(2x2), as fast
    /// at 56x56; 64 or more output channels 3-17% slower).
    public static func winogradTile(kernel: (Int, Int), stride: (Int, Int), dilation: (Int, Int),
                                    inputChannels: Int, outputChannels: Int, output: (Int, Int)) -> Int? {
        guard kernel == (3, 3), stride == (1, 1), dilation == (1, 1), (16...1024).contains(inputChannels),
              outputChannels >= 16, output.0 >= 2, output.1 >= 2 else { return nil }
        return inputChannels <= 256 && output.0 >= 12 && output.1 >= 12
            && (outputChannels >= 64 || inputChannels <= 32) ? 4 : 2
    }
}
