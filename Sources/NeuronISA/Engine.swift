import CNeuronEngine

/// The engine, in this process: what the simulator's NeuronCores run.
public enum NeuronEngine {
    /// Whether this CPU runs bf16 pairs natively by default: it has
    /// AVX512_BF16 and its VDPBF16PS is faster than the exact FMA
    /// emulation (measured once; some Intel Xeons run it several times
    /// slower than an fma). Elsewhere the engine emulates them exactly, at
    /// about fp32's speed for matrix products and somewhat below it for
    /// convolutions (docs/benchmarks.md).
    public static var runsBF16PairsNatively: Bool {
        neuron_gemm_bf16_native() != 0
    }

    /// Whether this CPU has AVX512_BF16's VDPBF16PS at all.
    public static var hasBF16PairsInstruction: Bool {
        neuron_simd_can_run(UInt32(NEURON_SIMD_AVX512.rawValue), 1) != 0
    }

    /// One instruction as tools show it: `MATMUL`, `BINARY.add`, ...,
    /// `CONV2D.packed`, `CONV2D.winograd2x2`, `CONV2D.winograd4x4` (the
    /// convolution's weight layout), and its work in element operations.
    public struct InstructionSummary: Sendable, Equatable {
        public var name: String
        public var cost: UInt64
        /// Floating-point operations as a model counts them: two per
        /// multiply-add of MATMUL and CONV2D (the direct convolution's,
        /// whatever form its weights take), else one per element.
        public var flops: UInt64
        /// Its operands, the output first: where each reads or writes.
        public var operands: [Operand] = []

        /// One operand's tensor view: slot, element type, offset, and the
        /// dims and strides (in elements) of each axis.
        public struct Operand: Sendable, Equatable, CustomStringConvertible {
            public var slot: Int
            public var dtype: NeuronDType?
            public var offset: UInt64
            public var dims: [UInt32]
            public var strides: [UInt64]

            /// `slot 3 +128 float32 [128,3,3]/[36,6,1]`.
            public var description: String {
                let type = dtype.map { "\($0)" } ?? "?"
                return "slot \(slot) +\(offset) \(type) [" + dims.map(String.init).joined(separator: ",") + "]/["
                    + strides.map(String.init).joined(separator: ",") + "]"
            }
        }
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
                    } else if flags & UInt32(NEURON_CONV_BF16_PAIRS) != 0 {
                        shown += ".bf16pairs"
                    }
                } else if insn.opcode == UInt8(NEURON_OP_MATMUL.rawValue),
                          UInt32(insn.flags) & UInt32(NEURON_MATMUL_B_PANELS) != 0 {
                    shown += ".panels"
                }
                // The operands always used, and a bias when its flag is set.
                let info = neuron_engine_insn_info(UInt32(insn.opcode))?.pointee
                let biased = info.map { $0.bias_flag != 0 && insn.flags & $0.bias_flag != 0 } ?? false
                let count = Int(info?.operands ?? 0) + (biased ? 1 : 0)
                let operands = withUnsafeBytes(of: insn.operand) { raw in
                    raw.bindMemory(to: UInt32.self).prefix(count).map { at -> InstructionSummary.Operand in
                        let desc = program.descs[Int(at)]
                        let rank = Int(desc.rank)
                        let dims = withUnsafeBytes(of: desc.dims) { Array($0.bindMemory(to: UInt32.self).prefix(rank)) }
                        let strides = withUnsafeBytes(of: desc.strides) { Array($0.bindMemory(to: UInt64.self).prefix(rank)) }
                        return .init(slot: Int(desc.slot), dtype: NeuronDType(rawValue: desc.dtype), offset: desc.offset,
                                     dims: dims, strides: strides)
                    }
                }
                return InstructionSummary(name: shown, cost: neuron_engine_insn_cost(&program, index),
                                          flops: neuron_engine_insn_flops(&program, index), operands: operands)
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
        // One step of every part is the whole instruction (neuron_engine_step).
        try runSliced(image, slots: slots, partsPerStep: Int(UInt32.max))
    }
}
