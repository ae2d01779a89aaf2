import CNeuronEngine

/// Element types of the ISA.
public enum NeuronDType: UInt8, Sendable {
    case float32 = 1, bfloat16 = 2, int32 = 3, int64 = 4

    public var size: Int {
        switch self {
        case .float32, .int32: 4
        case .bfloat16: 2
        case .int64: 8
        }
    }
}

extension NeuronDType: Codable, CustomStringConvertible {
    static let names: [NeuronDType: String] = [.float32: "float32", .bfloat16: "bfloat16",
                                               .int32: "int32", .int64: "int64"]

    /// "float32", "bfloat16", "int32" or "int64" (as NEFF metadata has it).
    public var name: String { Self.names[self] ?? "unknown" }
    public var description: String { name }

    public init?(name: String) {
        guard let match = Self.names.first(where: { $0.value == name })?.key else { return nil }
        self = match
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let match = NeuronDType(name: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                                    debugDescription: "unknown dtype \(text)"))
        }
        self = match
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(name)
    }
}

/// bfloat16, converted as the engine converts it (neuron_bf16_from_f32_bits
/// in neuron_engine.h): round to nearest with ties to even, every NaN to
/// the quiet NaN 0x7fc0; widening is exact.
public enum BFloat16 {
    /// The bfloat16 bits nearest `value`.
    public static func bits(_ value: Float) -> UInt16 { neuron_bf16_from_f32_bits(value.bitPattern) }

    /// The float32 that bfloat16 `bits` stand for.
    public static func float(_ bits: UInt16) -> Float { Float(bitPattern: neuron_f32_bits_from_bf16(bits)) }
}

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

public enum NeuronBinaryOp: UInt8, Sendable, CaseIterable { case add, sub, mul, div, max, min, pow }
public enum NeuronUnaryOp: UInt8, Sendable, CaseIterable {
    case relu, leakyRelu, geluErf, geluTanh, sigmoid, tanh, exp, log, sqrt, rsqrt, erf, neg, abs, reciprocal
}
public enum NeuronReduceOp: UInt8, Sendable, CaseIterable { case sum, mean, max, min }
public enum NeuronPoolOp: UInt8, Sendable, CaseIterable { case max, avg }

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
    public mutating func matmul(_ out: NeuronTensorView, _ a: NeuronTensorView, _ b: NeuronTensorView,
                                bias: NeuronTensorView? = nil) {
        let o = operand(out), x = operand(a), y = operand(b)
        if let bias {
            let z = operand(bias)
            emit(NEURON_OP_MATMUL, flags: UInt16(NEURON_MATMUL_BIAS), [o, x, y, z])
        } else {
            emit(NEURON_OP_MATMUL, [o, x, y])
        }
    }

    /// Reduce the last axis of `a` into `out` (same dims, last = 1).
    public mutating func reduce(_ op: NeuronReduceOp, _ out: NeuronTensorView, _ a: NeuronTensorView) {
        let o = operand(out), x = operand(a)
        emit(NEURON_OP_REDUCE, sub: op.rawValue, [o, x])
    }

    public mutating func softmax(_ out: NeuronTensorView, _ a: NeuronTensorView) {
        let o = operand(out), x = operand(a)
        emit(NEURON_OP_SOFTMAX, [o, x])
    }

    /// Convert `a` to `out`'s dtype (integers saturate, bf16 rounds to nearest even).
    public mutating func cast(_ out: NeuronTensorView, _ a: NeuronTensorView) {
        let o = operand(out), x = operand(a)
        emit(NEURON_OP_CAST, [o, x])
    }

    /// out[i..., d] = table[indices[i...], d]: an embedding lookup.
    public mutating func gather(_ out: NeuronTensorView, table: NeuronTensorView, indices: NeuronTensorView) {
        let o = operand(out), t = operand(table), i = operand(indices)
        emit(NEURON_OP_GATHER, [o, t, i])
    }

    /// Layer normalisation over the last axis, with scale and bias.
    public mutating func layerNorm(_ out: NeuronTensorView, _ a: NeuronTensorView, scale: NeuronTensorView,
                                   bias: NeuronTensorView, epsilon: Float = 1e-5) {
        let o = operand(out), x = operand(a), g = operand(scale), b = operand(bias)
        emit(NEURON_OP_LAYERNORM, [o, x, g, b], fparam: (epsilon, 0))
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
    public mutating func conv2d(_ out: NeuronTensorView, _ input: NeuronTensorView, weight: NeuronTensorView,
                                bias: NeuronTensorView? = nil, window: NeuronWindow = NeuronWindow(), relu: Bool = false,
                                packedWeights: Bool = false, winograd: Bool = false, accumulate: Bool = false) {
        let o = operand(out), x = operand(input), w = operand(weight)
        var operands = [o, x, w]
        var flags: UInt16 = relu ? UInt16(NEURON_CONV_RELU) : 0
        if packedWeights { flags |= UInt16(NEURON_CONV_PACKED) }
        if winograd { flags |= UInt16(NEURON_CONV_WINOGRAD) }
        if accumulate { flags |= UInt16(NEURON_CONV_ACCUMULATE) }
        if let bias {
            operands.append(operand(bias))
            flags |= UInt16(NEURON_CONV_BIAS)
        }
        emit(NEURON_OP_CONV2D, flags: flags, operands,
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

/// The engine, in this process: what the simulator's NeuronCores run.
public enum NeuronEngine {
    /// One instruction as tools show it: `MATMUL`, `BINARY.add`, ...,
    /// `CONV2D.packed`, `CONV2D.winograd2x2`, `CONV2D.winograd4x4` (the
    /// convolution's weight layout), and its work in element operations.
    public struct InstructionSummary: Sendable, Equatable {
        public var name: String
        public var cost: UInt64
    }

    /// The instructions of `image`, validated against `slotSizes` first.
    public static func instructions(_ image: [UInt64], slotSizes: [UInt64]) throws(NeuronProgramError) -> [InstructionSummary] {
        let base = UnsafeMutableRawPointer(bitPattern: 4096)
        var bound = slotSizes.map { neuron_engine_slot(base: $0 > 0 ? base : nil, size: $0) }
        var status = neuron_engine_status()
        var program = neuron_engine_program()
        // The validated program points into the image: read it in place.
        let list: [InstructionSummary]? = image.withUnsafeBytes { raw in
            let valid = bound.withUnsafeMutableBufferPointer { slots in
                neuron_engine_validate(raw.baseAddress, UInt64(raw.count), slots.baseAddress,
                                       UInt32(slots.count), &program, &status) == 0
            }
            guard valid else { return nil }
            return (0..<program.insn_count).map { index in
                let insn = program.insns[Int(index)]
                var shown = name(opcode: insn.opcode, sub: insn.sub)
                if insn.opcode == UInt8(NEURON_OP_CONV2D.rawValue) {
                    let flags = UInt32(insn.flags)
                    if flags & UInt32(NEURON_CONV_WINOGRAD) != 0 {
                        let tiles = program.descs[Int(insn.operand.2)].dims.0 == 36 ? "4x4" : "2x2"
                        shown += ".winograd" + tiles
                    } else if flags & UInt32(NEURON_CONV_PACKED) != 0 {
                        shown += ".packed"
                    }
                }
                return InstructionSummary(name: shown, cost: neuron_engine_insn_cost(&program, index))
            }
        }
        guard let list else {
            throw NeuronProgramError(kind: .init(rawValue: status.error) ?? .header, index: Int(status.index))
        }
        return list
    }

    /// "MATMUL", "UNARY.leakyRelu": the engine's names (engine_insn.c), the
    /// sub-operation's as its Swift case is spelled.
    package static func name(opcode: UInt8, sub: UInt8) -> String {
        guard let info = neuron_engine_insn_info(UInt32(opcode)) else { return "OP\(opcode)" }
        let base = String(cString: info.pointee.name)
        guard let subName = subOperationName(info.pointee, sub) else { return base }
        return "\(base).\(lowerCamelCase(subName))"
    }

    /// The engine's name of sub-operation `sub` of an instruction ("LEAKY_RELU").
    package static func subOperationName(_ info: neuron_insn_info, _ sub: UInt8) -> String? {
        guard let names = info.sub_names, sub < info.subs, let name = names[Int(sub)] else { return nil }
        return String(cString: name)
    }

    /// "LEAKY_RELU" as a Swift case is spelled: "leakyRelu".
    package static func lowerCamelCase(_ name: String) -> String {
        let words = name.lowercased().split(separator: "_")
        return (words.first.map(String.init) ?? "") + words.dropFirst().map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
    }

    /// Check `image` as a queue would against buffers of `slotSizes` bytes
    /// (0: unbound), without running it or touching any memory.
    public static func validate(_ image: [UInt64], slotSizes: [UInt64]) throws(NeuronProgramError) {
        // The validator reads only sizes and the bases' alignment.
        let base = UnsafeMutableRawPointer(bitPattern: 4096)
        var bound = slotSizes.map { neuron_engine_slot(base: $0 > 0 ? base : nil, size: $0) }
        var status = neuron_engine_status()
        var program = neuron_engine_program()
        let valid = image.withUnsafeBytes { raw in
            bound.withUnsafeMutableBufferPointer { slots in
                neuron_engine_validate(raw.baseAddress, UInt64(raw.count), slots.baseAddress,
                                       UInt32(slots.count), &program, &status) == 0
            }
        }
        guard valid else {
            throw NeuronProgramError(kind: .init(rawValue: status.error) ?? .header, index: Int(status.index))
        }
    }

    /// Like `run`, but every instruction in slices of `partsPerStep`
    /// parts, as a queue runs large ones; returns the most parts an
    /// instruction had. The bits are the same as `run`'s. `partWork`
    /// (element operations, 0 for the engine's own) bounds each part's
    /// work: a small one slices small instructions as finely as the
    /// engine slices huge ones.
    @discardableResult
    public static func runSliced(_ image: [UInt64], slots: [UnsafeMutableRawBufferPointer?],
                                 partsPerStep: Int, partWork: UInt64 = 0) throws(NeuronProgramError) -> Int {
        var bound = slots.map { buffer -> neuron_engine_slot in
            neuron_engine_slot(base: buffer?.baseAddress, size: UInt64(buffer?.count ?? 0))
        }
        var status = neuron_engine_status()
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(NEURON_GEMM_SCRATCH), alignment: 64)
        defer { scratch.deallocate() }
        var scratchSlot = neuron_engine_slot(base: scratch.baseAddress, size: UInt64(scratch.count))
        var most: UInt32 = 0
        let step = UInt32(clamping: max(1, partsPerStep))
        let valid: Int32 = image.withUnsafeBytes { raw in
            bound.withUnsafeMutableBufferPointer { slotPointer in
                var program = neuron_engine_program()
                guard neuron_engine_validate(raw.baseAddress, UInt64(raw.count), slotPointer.baseAddress,
                                             UInt32(slotPointer.count), &program, &status) == 0 else { return -1 }
                program.part_work = partWork
                for index in 0..<program.insn_count {
                    let parts = neuron_engine_insn_parts(&program, index)
                    most = max(most, parts)
                    var part: UInt32 = 0
                    while part < parts {
                        let fault = neuron_engine_step_part(&program, index, slotPointer.baseAddress,
                                                            &scratchSlot, part, step)
                        if fault != 0 {
                            status = neuron_engine_status(error: fault, index: index)
                            return -1
                        }
                        part += step
                    }
                }
                return 0
            }
        }
        guard valid == 0 else {
            throw NeuronProgramError(kind: .init(rawValue: status.error) ?? .header, index: Int(status.index))
        }
        return Int(most)
    }

    /// Validate `image` against `slots` (host memory bound to each slot) and
    /// run it to the end, or to the first instruction that faults. Buffers
    /// may be nil for unbound slots.
    public static func run(_ image: [UInt64], slots: [UnsafeMutableRawBufferPointer?]) throws(NeuronProgramError) {
        var bound = slots.map { buffer -> neuron_engine_slot in
            neuron_engine_slot(base: buffer?.baseAddress, size: UInt64(buffer?.count ?? 0))
        }
        var status = neuron_engine_status()
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(NEURON_GEMM_SCRATCH), alignment: 64)
        defer { scratch.deallocate() }
        var scratchSlot = neuron_engine_slot(base: scratch.baseAddress, size: UInt64(scratch.count))
        let valid: Int32 = image.withUnsafeBytes { raw in
            bound.withUnsafeMutableBufferPointer { slotPointer in
                var program = neuron_engine_program()
                guard neuron_engine_validate(raw.baseAddress, UInt64(raw.count), slotPointer.baseAddress,
                                             UInt32(slotPointer.count), &program, &status) == 0 else { return -1 }
                for index in 0..<program.insn_count {
                    let fault = neuron_engine_step(&program, index, slotPointer.baseAddress, &scratchSlot)
                    if fault != 0 {
                        status = neuron_engine_status(error: fault, index: index)
                        return -1
                    }
                }
                return 0
            }
        }
        guard valid == 0 else {
            throw NeuronProgramError(kind: .init(rawValue: status.error) ?? .header, index: Int(status.index))
        }
    }
}

extension NeuronProgram {
    /// Output channels per block of the packed convolution weights.
    public static let convPackRows = Int(NEURON_CONV_PACK_ROWS)

    /// Convolution weights `[Co, Ci, Kh, Kw]` (row-major) in the layout
    /// `conv2d(packedWeights: true)` reads: `[ceil(Co/6), Ci, Kh, Kw, 6]`,
    /// output channel `co` in lane `co % 6` of block `co / 6`, and `pad` in
    /// the lanes past Co. Nil when `weights` does not hold `dims`.
    public static func packConvWeights(_ weights: [Float], dims: [Int], pad: Float = 0) -> [Float]? {
        guard dims.count == 4, dims.allSatisfy({ $0 > 0 }), weights.count == dims.reduce(1, *) else { return nil }
        let rows = convPackRows, blocks = (dims[0] + rows - 1) / rows, k = dims[1] * dims[2] * dims[3]
        var packed = [Float](repeating: pad, count: blocks * k * rows)
        for co in 0..<dims[0] {
            let base = (co / rows) * k * rows + co % rows
            for j in 0..<k { packed[base + j * rows] = weights[co * k + j] }
        }
        return packed
    }

    /// The Winograd variant `neuron-cc` runs a convolution as: the output
    /// tile 4 (F(4x4, 3x3)) or 2 (F(2x2, 3x3)), or nil for the packed
    /// direct convolution. Winograd takes 3x3 kernels of stride and
    /// dilation 1 with at least 16 input and output channels (fewer, and
    /// the transforms cost more than the products they save) and at most
    /// 1024 input channels (the engine's scratch holds every channel's
    /// tiles); F(4x4, 3x3) takes at most 256 and outputs of at least 12x12
    /// (on smaller ones, tiles of 4 waste more than they save, and too few
    /// fill the engine's sixteen lanes).
    public static func winogradTile(kernel: (Int, Int), stride: (Int, Int), dilation: (Int, Int),
                                    inputChannels: Int, outputChannels: Int, output: (Int, Int)) -> Int? {
        guard kernel == (3, 3), stride == (1, 1), dilation == (1, 1), (16...1024).contains(inputChannels),
              outputChannels >= 16, output.0 >= 2, output.1 >= 2 else { return nil }
        return inputChannels <= 256 && output.0 >= 12 && output.1 >= 12 ? 4 : 2
    }

    /// 3x3 convolution weights `[Co, Ci, 3, 3]` (row-major) transformed for
    /// `conv2d(winograd: true)`: U = G g Gᵀ per output and input channel,
    /// for Winograd's F(2x2, 3x3) with `tile` 2 (G = [[1, 0, 0], [½, ½, ½],
    /// [½, -½, ½], [0, 0, 1]]) or F(4x4, 3x3) with `tile` 4 (G = [[¼, 0, 0],
    /// [-⅙, -⅙, -⅙], [-⅙, ⅙, -⅙], [1/24, 1/12, ⅙], [1/24, -1/12, ⅙],
    /// [0, 0, 1]]), computed in double and rounded once, laid out
    /// `[a², ceil(Co/6), Ci, 6]` (a = tile + 2) with element ξ = a i + j
    /// of U first, output channel `co` in lane `co % 6`, and `pad` in the
    /// lanes past Co. Nil when `weights` is not `dims` or `tile` is
    /// neither 2 nor 4.
    public static func winogradConvWeights(_ weights: [Float], dims: [Int], pad: Float = 0,
                                           tile: Int = 2) -> [Float]? {
        guard dims.count == 4, dims[0] > 0, dims[1] > 0, dims[2] == 3, dims[3] == 3, tile == 2 || tile == 4,
              weights.count == dims.reduce(1, *) else { return nil }
        let rows = convPackRows, co = dims[0], ci = dims[1], blocks = (co + rows - 1) / rows
        let sixth: Double = 1.0 / 6, twelfth: Double = 1.0 / 12, twentyFourth: Double = 1.0 / 24
        let g2: [[Double]] = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]
        let g4: [[Double]] = [[0.25, 0, 0], [-sixth, -sixth, -sixth], [-sixth, sixth, -sixth],
                              [twentyFourth, twelfth, sixth], [twentyFourth, -twelfth, sixth], [0, 0, 1]]
        let g = tile == 2 ? g2 : g4
        let a = tile + 2
        var out = [Float](repeating: pad, count: a * a * blocks * ci * rows)
        for o in 0..<co {
            for c in 0..<ci {
                let w = (0..<9).map { Double(weights[(o * ci + c) * 9 + $0]) }
                for i in 0..<a {
                    for j in 0..<a {
                        var u = 0.0
                        for k in 0..<3 { for l in 0..<3 { u += g[i][k] * w[k * 3 + l] * g[j][l] } }
                        out[(((i * a + j) * blocks + o / rows) * ci + c) * rows + o % rows] = Float(u)
                    }
                }
            }
        }
        return out
    }
}
