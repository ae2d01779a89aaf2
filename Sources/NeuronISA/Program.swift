import CNeuronEngine

/// A strided view of a bound buffer: what an instruction operand names.
public struct NeuronTensorView: Sendable, Equatable {
    public var slot: Int
    public var dtype: NeuronDType
    /// Offset of element [0, ..., 0], in elements.
    public var offset: UInt64
    public var dims: [UInt32]
    /// Element strides; 0 broadcasts along that axis.
    public var strides: [UInt64]

    public init(slot: Int, dtype: NeuronDType = .float32, offset: UInt64 = 0, dims: [UInt32], strides: [UInt64]) {
        self.slot = slot
        self.dtype = dtype
        self.offset = offset
        self.dims = dims
        self.strides = strides
    }

    /// A row-major view of `dims` at `offset`.
    public static func contiguous(slot: Int, dims: [UInt32], dtype: NeuronDType = .float32,
                                  offset: UInt64 = 0) -> NeuronTensorView {
        var strides = [UInt64](repeating: 1, count: dims.count)
        var step: UInt64 = 1
        for axis in dims.indices.reversed() {
            strides[axis] = step
            step *= UInt64(dims[axis])
        }
        return NeuronTensorView(slot: slot, dtype: dtype, offset: offset, dims: dims, strides: strides)
    }

    /// The same elements with two axes swapped (a transpose, no copy).
    public func swapping(_ a: Int, _ b: Int) -> NeuronTensorView {
        var view = self
        view.dims.swapAt(a, b)
        view.strides.swapAt(a, b)
        return view
    }
}

public enum NeuronBinaryOp: UInt8, Sendable, CaseIterable {
    case add, sub, mul, div, max, min, pow
    /// ISA 1.4, integers and bool (docs/isa.md says which types take which).
    case mod, fmod, and, or, xor, shl, shr
}
public enum NeuronUnaryOp: UInt8, Sendable, CaseIterable {
    case relu, leakyRelu, geluErf, geluTanh, sigmoid, tanh, exp, log, sqrt, rsqrt, erf, neg, abs, reciprocal
    /// ISA 1.4: NOT of integers and bool; FLOOR, CEIL and ROUND (ties to even) of f32.
    case not, floor, ceil, round
    /// ISA 1.5 (driver API 1.6), f32: computed in double and rounded once.
    case sin, cos, tan, asin, acos, atan, sinh, cosh, asinh, acosh, atanh
    /// ISA 1.7 (driver API 1.9), f32: x · SIGMOID(x), the product rounded
    /// once (Swish, SiLU): the bits of SIGMOID then MUL, in one pass.
    case silu
}
public enum NeuronReduceOp: UInt8, Sendable, CaseIterable {
    case sum, mean, max, min
    /// ISA 1.4: PROD of f32; ARGMAX and ARGMIN into int64.
    case prod, argmax, argmin
}
/// COMPARE's sub-operations (ISA 1.4): out (bool) = a op b; NaN compares false.
public enum NeuronCompareOp: UInt8, Sendable, CaseIterable { case eq, lt, le, gt, ge }
public enum NeuronPoolOp: UInt8, Sendable, CaseIterable { case max, avg }
/// SCATTER's sub-operations (ISA 1.5): how an update meets its element.
public enum NeuronScatterOp: UInt8, Sendable, CaseIterable { case set, add, mul, max, min }
/// TOPK's orders (ISA 1.7): largest or smallest first; a NaN before every
/// number in both, equal elements by index.
public enum NeuronTopKOp: UInt8, Sendable, CaseIterable { case largest, smallest }

/// A 2-D window: strides, padding (top, left, bottom, right), dilation.
public struct NeuronWindow: Sendable, Equatable {
    public var stride: (h: UInt32, w: UInt32)
    public var padding: (top: UInt32, left: UInt32, bottom: UInt32, right: UInt32)
    public var dilation: (h: UInt32, w: UInt32)

    public init(stride: (h: UInt32, w: UInt32) = (1, 1),
                padding: (top: UInt32, left: UInt32, bottom: UInt32, right: UInt32) = (0, 0, 0, 0),
                dilation: (h: UInt32, w: UInt32) = (1, 1)) {
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
    }

    public static func == (a: NeuronWindow, b: NeuronWindow) -> Bool {
        a.stride == b.stride && a.padding == b.padding && a.dilation == b.dilation
    }
}

/// An ISA v1 program image (docs/isa.md), built instruction by
/// instruction. The image is 8-byte aligned, as the engine requires.
public struct NeuronProgram: Sendable {
    /// Buffer slots a program can name (NEURON_MAX_SLOTS).
    public static let maxSlots = Int(NEURON_MAX_SLOTS)

    public private(set) var descriptors: [neuron_tensor_desc] = []
    public private(set) var instructions: [neuron_insn] = []

    public init() {}

    /// The descriptor index for `view`, adding it when new.
    public mutating func operand(_ view: NeuronTensorView) -> UInt32 {
        var desc = neuron_tensor_desc()
        desc.slot = UInt16(truncatingIfNeeded: view.slot)
        desc.dtype = view.dtype.rawValue
        desc.rank = UInt8(truncatingIfNeeded: view.dims.count)
        desc.offset = view.offset
        withUnsafeMutableBytes(of: &desc.dims) { raw in
            for (axis, dim) in view.dims.prefix(6).enumerated() { raw.storeBytes(of: dim, toByteOffset: axis * 4, as: UInt32.self) }
        }
        withUnsafeMutableBytes(of: &desc.strides) { raw in
            for (axis, stride) in view.strides.prefix(6).enumerated() { raw.storeBytes(of: stride, toByteOffset: axis * 8, as: UInt64.self) }
        }
        descriptors.append(desc)
        return UInt32(descriptors.count - 1)
    }

    /// Append a raw instruction (for tests of hostile programs, too).
    public mutating func append(_ instruction: neuron_insn) {
        instructions.append(instruction)
    }

    private mutating func emit(_ opcode: neuron_opcode, sub: UInt8 = 0, flags: UInt16 = 0,
                               _ operands: [UInt32], fparam: (Float, Float) = (0, 0), iparam: [UInt32] = []) {
        var insn = neuron_insn()
        insn.opcode = UInt8(opcode.rawValue)
        insn.sub = sub
        insn.flags = flags
        withUnsafeMutableBytes(of: &insn.operand) { raw in
            for (index, operand) in operands.prefix(4).enumerated() { raw.storeBytes(of: operand, toByteOffset: index * 4, as: UInt32.self) }
        }
        insn.fparam = fparam
        withUnsafeMutableBytes(of: &insn.iparam) { raw in
            for (index, value) in iparam.prefix(8).enumerated() { raw.storeBytes(of: value, toByteOffset: index * 4, as: UInt32.self) }
        }
        instructions.append(insn)
    }

    public mutating func nop() { emit(NEURON_OP_NOP, []) }

    public mutating func fill(_ out: NeuronTensorView, value: Float) {
        let o = operand(out)
        emit(NEURON_OP_FILL, [o], fparam: (value, 0))
    }

    public mutating func copy(_ out: NeuronTensorView, from input: NeuronTensorView) {
        let o = operand(out), a = operand(input)
        emit(NEURON_OP_COPY, [o, a])
    }

    public mutating func binary(_ op: NeuronBinaryOp, _ out: NeuronTensorView, _ a: NeuronTensorView, _ b: NeuronTensorView) {
        let o = operand(out), x = operand(a), y = operand(b)
        emit(NEURON_OP_BINARY, sub: op.rawValue, [o, x, y])
    }

    public mutating func unary(_ op: NeuronUnaryOp, _ out: NeuronTensorView, _ a: NeuronTensorView, alpha: Float = 0) {
        let o = operand(out), x = operand(a)
        emit(NEURON_OP_UNARY, sub: op.rawValue, [o, x], fparam: (alpha, 0))
    }

    /// out = a x b (+ bias over the last axis); rank 2, or 3 with a batch axis.
    /// With `bf16Pairs` (ISA 1.9, driver API 1.11) the product runs in
    /// bfloat16 pairs as AVX512_BF16's VDPBF16PS does (docs/isa.md): `a`
    /// and `b` may each be float32 (rounded to bfloat16 as they are read)
    /// or bfloat16. With `bPanels` (ISA 1.11, driver API 1.13) `b` is
    /// float32 `[ceil(N/32), K, 32]` in panels of 32 columns
    /// (`panelMatmulWeights`), one for every batch; `out` and `a` float32.
    /// With both (ISA 1.14, driver API 1.16) `b` is bfloat16
    /// `[ceil(N/32), ceil(K/2), 64]`, pairs in panels
    /// (`pairPanelMatmulWeights`); `a` float32 or bfloat16.
    /// With `relu` and `clamp` (ISA 1.13, driver API 1.15; float32 out,
    /// the bound not NaN) each output after the bias goes through CONV2D's
    /// relu and upper bound, with their bits.
    public mutating func matmul(_ out: NeuronTensorView, _ a: NeuronTensorView, _ b: NeuronTensorView,
                                bias: NeuronTensorView? = nil, bf16Pairs: Bool = false, bPanels: Bool = false,
                                relu: Bool = false, clamp: Float? = nil) {
        let o = operand(out), x = operand(a), y = operand(b)
        var flags = (bf16Pairs ? UInt16(NEURON_MATMUL_BF16_PAIRS) : 0) | (bPanels ? UInt16(NEURON_MATMUL_B_PANELS) : 0)
        if relu { flags |= UInt16(NEURON_MATMUL_RELU) }
        if clamp != nil { flags |= UInt16(NEURON_MATMUL_CLAMP) }
        if let bias {
            let z = operand(bias)
            emit(NEURON_OP_MATMUL, flags: UInt16(NEURON_MATMUL_BIAS) | flags, [o, x, y, z], fparam: (clamp ?? 0, 0))
        } else {
            emit(NEURON_OP_MATMUL, flags: flags, [o, x, y], fparam: (clamp ?? 0, 0))
        }
    }

    /// Reduce the last axis of `a` into `out` (same dims, last = 1);
    /// `lastIndex`: ARGMAX and ARGMIN give the last of equal extremes.
    public mutating func reduce(_ op: NeuronReduceOp, _ out: NeuronTensorView, _ a: NeuronTensorView,
                                lastIndex: Bool = false) {
        let o = operand(out), x = operand(a)
        emit(NEURON_OP_REDUCE, sub: op.rawValue, flags: lastIndex ? UInt16(NEURON_REDUCE_LAST_INDEX) : 0, [o, x])
    }

    /// out (bool) = a op b, elementwise (ISA 1.4).
    public mutating func compare(_ op: NeuronCompareOp, _ out: NeuronTensorView, _ a: NeuronTensorView,
                                 _ b: NeuronTensorView) {
        let o = operand(out), x = operand(a), y = operand(b)
        emit(NEURON_OP_COMPARE, sub: op.rawValue, [o, x, y])
    }

    /// out = condition ? a : b, elementwise; the condition bool (ISA 1.4).
    public mutating func select(_ out: NeuronTensorView, condition: NeuronTensorView, _ a: NeuronTensorView,
                                _ b: NeuronTensorView) {
        let o = operand(out), c = operand(condition), x = operand(a), y = operand(b)
        emit(NEURON_OP_SELECT, [o, c, x, y])
    }

    /// Softmax over the last axis. With `laneSums` (ISA 1.8, driver API
    /// 1.10) the row's sum runs in `NEURON_ROW_SUM_WIDTH` lanes rather than
    /// first to last (docs/isa.md): the same on every vector width, and
    /// not one chain of additions.
    public mutating func softmax(_ out: NeuronTensorView, _ a: NeuronTensorView, laneSums: Bool = false) {
        let o = operand(out), x = operand(a)
        emit(NEURON_OP_SOFTMAX, flags: laneSums ? UInt16(NEURON_ROW_SUM_LANES) : 0, [o, x])
    }

    /// Convert `a` to `out`'s dtype: floats to integers toward zero and
    /// saturated, NaN to 0; to bool, nonzero is true; to bf16, f16, float8
    /// and float4 to nearest even. Integer to integer saturates, or with
    /// `wrap` keeps the low bits (as ONNX's Cast does). ISA 1.6: into a
    /// float8 type, `saturate` false takes values beyond its range to
    /// infinity or NaN; into float8 E8M0, `e8m0` says how to round.
    public mutating func cast(_ out: NeuronTensorView, _ a: NeuronTensorView, wrap: Bool = false,
                              saturate: Bool = true, e8m0: NeuronE8M0Rounding = .nearest) {
        let o = operand(out), x = operand(a)
        emit(NEURON_OP_CAST, flags: NeuronProgram.castFlags(wrap: wrap, saturate: saturate, e8m0: e8m0), [o, x])
    }

    /// CAST's NEURON_CAST_WRAP flag.
    public static let castWrap = UInt16(NEURON_CAST_WRAP)

    /// CAST's flags (NEURON_CAST_*), as the engine and NeuronDType.bytes take them.
    public static func castFlags(wrap: Bool, saturate: Bool, e8m0: NeuronE8M0Rounding) -> UInt16 {
        var flags: UInt32 = wrap ? UInt32(NEURON_CAST_WRAP) : 0
        if !saturate { flags |= UInt32(NEURON_CAST_NO_SATURATE) }
        switch e8m0 {
        case .nearest: break
        case .up: flags |= UInt32(NEURON_CAST_E8M0_UP)
        case .down: flags |= UInt32(NEURON_CAST_E8M0_DOWN)
        }
        return UInt16(flags)
    }

    /// out[i..., d] = table[indices[i...], d]: an embedding lookup.
    /// out[indices[i]] op= updates[i] in order (ISA 1.5); all of rank 1.
    public mutating func scatter(_ op: NeuronScatterOp, _ out: NeuronTensorView, indices: NeuronTensorView,
                                 updates: NeuronTensorView) {
        let o = operand(out), i = operand(indices), u = operand(updates)
        emit(NEURON_OP_SCATTER, sub: op.rawValue, [o, i, u])
    }

    /// out (int64, k along the last axis) = the indices of each row's first
    /// k elements of `a` in `op`'s order, first to last (ISA 1.7).
    public mutating func topK(_ op: NeuronTopKOp, _ out: NeuronTensorView, _ a: NeuronTensorView) {
        let o = operand(out), x = operand(a)
        emit(NEURON_OP_TOPK, sub: op.rawValue, [o, x])
    }

    public mutating func gather(_ out: NeuronTensorView, table: NeuronTensorView, indices: NeuronTensorView) {
        let o = operand(out), t = operand(table), i = operand(indices)
        emit(NEURON_OP_GATHER, [o, t, i])
    }

    /// Layer normalisation over the last axis, with scale and bias; with
    /// `laneSums` (ISA 1.8) its two sums run in lanes, as softmax's.
    public mutating func layerNorm(_ out: NeuronTensorView, _ a: NeuronTensorView, scale: NeuronTensorView,
                                   bias: NeuronTensorView, epsilon: Float = 1e-5, laneSums: Bool = false) {
        let o = operand(out), x = operand(a), g = operand(scale), b = operand(bias)
        emit(NEURON_OP_LAYERNORM, flags: laneSums ? UInt16(NEURON_ROW_SUM_LANES) : 0, [o, x, g, b],
             fparam: (epsilon, 0))
    }

    /// NCHW convolution; groups follow from the shapes (input channels /
    /// the weight's second axis).
    ///
    /// With `winograd` (3x3, stride and dilation 1), `weight` is
    /// `[16, ceil(Co/6), Ci, 6]` or `[36, ceil(Co/6), Ci, 6]` as
    /// `winogradConvWeights` makes it, and the engine runs Winograd's
    /// F(2x2, 3x3) or F(4x4, 3x3) (docs/isa.md).
    /// With `packedWeights`, `weight` is `[ceil(Co/6), Ci, Kh, Kw, 6]` as
    /// `NeuronTensorView.packConvWeights` lays it out (one group only), and
    /// the engine reads it in place (ISA 1.2); with `accumulate` as well,
    /// each sum starts from `out`'s value (a residual added in place)
    /// instead of zero.
    /// With `bf16Pairs` (ISA 1.10), `input` and `weight` (as given) are
    /// each f32 or bf16 and every output is the MATMUL in bf16 pairs of
    /// its weights by its window, both flattened (input channel, kernel
    /// row, kernel column), before the bias and relu (docs/isa.md).
    /// With `clamp` (ISA 1.12, not NaN), each output `v` after the bias
    /// and relu becomes `clamp` unless `v < clamp` or `v` is NaN: the
    /// bits of BINARY MIN against it (ReLU6 is `relu` with a clamp of 6).
    public mutating func conv2d(_ out: NeuronTensorView, _ input: NeuronTensorView, weight: NeuronTensorView,
                                bias: NeuronTensorView? = nil, window: NeuronWindow = NeuronWindow(), relu: Bool = false,
                                clamp: Float? = nil, packedWeights: Bool = false, winograd: Bool = false,
                                accumulate: Bool = false, bf16Pairs: Bool = false) {
        let o = operand(out), x = operand(input), w = operand(weight)
        var operands = [o, x, w]
        var flags: UInt16 = relu ? UInt16(NEURON_CONV_RELU) : 0
        if clamp != nil { flags |= UInt16(NEURON_CONV_CLAMP) }
        if bf16Pairs { flags |= UInt16(NEURON_CONV_BF16_PAIRS) }
        if packedWeights { flags |= UInt16(NEURON_CONV_PACKED) }
        if winograd { flags |= UInt16(NEURON_CONV_WINOGRAD) }
        if accumulate { flags |= UInt16(NEURON_CONV_ACCUMULATE) }
        if let bias {
            operands.append(operand(bias))
            flags |= UInt16(NEURON_CONV_BIAS)
        }
        emit(NEURON_OP_CONV2D, flags: flags, operands, fparam: (clamp ?? 0, 0),
             iparam: [window.stride.h, window.stride.w, window.padding.top, window.padding.left,
                      window.padding.bottom, window.padding.right, window.dilation.h, window.dilation.w])
    }

    /// NCHW max or average pooling with a `kernel` window (global pooling:
    /// the kernel is the whole input).
    public mutating func pool2d(_ op: NeuronPoolOp, _ out: NeuronTensorView, _ input: NeuronTensorView,
                                kernel: (h: UInt32, w: UInt32), window: NeuronWindow = NeuronWindow(),
                                countPadding: Bool = false) {
        let o = operand(out), x = operand(input)
        emit(NEURON_OP_POOL2D, sub: op.rawValue, flags: countPadding ? UInt16(NEURON_POOL_COUNT_PAD) : 0, [o, x],
             iparam: [window.stride.h, window.stride.w, window.padding.top, window.padding.left,
                      window.padding.bottom, window.padding.right, kernel.h, kernel.w])
    }

    /// Add `count` to semaphore `semaphore` of the reserving file (ISA 1.1).
    public mutating func semaphoreSignal(_ semaphore: UInt32, count: UInt32 = 1) {
        emit(NEURON_OP_SEM_SIGNAL, [], iparam: [semaphore, count])
    }

    /// Wait until semaphore `semaphore` holds `count`, then take it.
    public mutating func semaphoreWait(_ semaphore: UInt32, count: UInt32 = 1) {
        emit(NEURON_OP_SEM_WAIT, [], iparam: [semaphore, count])
    }

    /// Wait until every NeuronCore of `cores` (this one among them) has
    /// reached barrier `barrier`.
    public mutating func barrier(_ barrier: UInt32, cores: [Int]) {
        let mask = cores.reduce(UInt32(0)) { $0 | (1 << UInt32(clamping: $1 & 31)) }
        emit(NEURON_OP_BARRIER, [], iparam: [barrier, mask])
    }

    /// The program image, as 64-bit words (so it is 8-byte aligned).
    public func image() -> [UInt64] {
        var header = neuron_program_header()
        header.magic = NEURON_ISA_MAGIC
        header.version = UInt16(NEURON_ISA_VERSION)
        header.desc_count = UInt32(descriptors.count)
        header.insn_count = UInt32(instructions.count)
        var bytes: [UInt8] = []
        withUnsafeBytes(of: header) { bytes.append(contentsOf: $0) }
        for desc in descriptors { withUnsafeBytes(of: desc) { bytes.append(contentsOf: $0) } }
        for insn in instructions { withUnsafeBytes(of: insn) { bytes.append(contentsOf: $0) } }
        var words = [UInt64](repeating: 0, count: (bytes.count + 7) / 8)
        bytes.withUnsafeBytes { source in
            words.withUnsafeMutableBytes { $0.copyMemory(from: source) }
        }
        return words
    }
}

/// Why the engine refused a program, and where.
public struct NeuronProgramError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: UInt32, Sendable, CaseIterable {
        case header = 1, descriptor, range, slot, opcode, operand, parameter
        /// While running: a GATHER index outside its table.
        case indexFault = 64
    }
    public var kind: Kind
    /// The descriptor (for descriptor, range, slot) or instruction index.
    public var index: Int

    public init(kind: Kind, index: Int) {
        self.kind = kind
        self.index = index
    }

    public var description: String {
        switch kind {
        case .header: "The program's header or size is wrong (magic, version, counts, or a truncated image)."
        case .descriptor: "Tensor descriptor \(index) is malformed (dtype, rank, dims or strides)."
        case .range: "Tensor descriptor \(index) reaches past the end of its buffer."
        case .slot: "Tensor descriptor \(index) names a buffer slot that is not bound to the job."
        case .opcode: "Instruction \(index) has an unknown opcode, sub-operation or flags."
        case .operand: "Instruction \(index) has operands of the wrong index, dtype or shape."
        case .parameter: "Instruction \(index) has a parameter out of range (window, epsilon, or one it does not use)."
        case .indexFault: "Instruction \(index) met an index outside its table while running."
        }
    }
}

/// How CAST rounds into float8 E8M0, a power of two (ISA 1.6).
public enum NeuronE8M0Rounding: Sendable, Hashable {
    /// To the nearest power of two.
    case nearest
    /// Up when any fraction is left (ONNX's default).
    case up
    /// Down (the exponent, truncated).
    case down
}
