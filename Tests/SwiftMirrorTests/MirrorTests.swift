import CNeuronEngine
import CNeuronUAPI
import Foundation
import NeuronDevice
import NeuronRuntime
import Testing

/// Swift definitions that mirror C ones (the uapi, the engine's table,
/// nrt.h) must not drift: each is compared with its source of truth.
@Suite("Swift mirrors of C definitions")
struct MirrorTests {
    /// The repository, from this file's place in it.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// `NAME = value` enumerators of the C enum that starts with `opening`
    /// in `header`, in order ("NAME," continues from the last value).
    static func enumerators(in header: String, of opening: String) throws -> [(name: String, value: Int)] {
        let text = try String(contentsOf: root.appendingPathComponent(header), encoding: .utf8)
        let start = try #require(text.range(of: opening), "\(opening) not found in \(header)")
        let end = try #require(text.range(of: "}", range: start.upperBound..<text.endIndex))
        var body = String(text[start.upperBound..<end.lowerBound])
        // Comments out, then one enumerator per comma.
        while let open = body.range(of: "/*"), let close = body.range(of: "*/", range: open.upperBound..<body.endIndex) {
            body.removeSubrange(open.lowerBound..<close.upperBound)
        }
        var result: [(String, Int)] = []
        var next = 0
        for item in body.split(separator: ",") {
            let parts = item.split(separator: "=").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            guard let name = parts.first, !name.isEmpty else { continue }
            let value = parts.count > 1 ? try #require(Int(parts[1]), "\(name) = \(parts[1])") : next
            result.append((name, value))
            next = value + 1
        }
        return result
    }

    @Test("every opcode has a row in the engine's table, and no row past the last")
    func instructionTable() throws {
        let opcodes = try Self.enumerators(in: "driver/include/uapi/neuron_isa.h", of: "enum neuron_opcode {")
        let real = opcodes.filter { $0.name != "NEURON_OP_COUNT" }
        #expect(real.count == Int(NEURON_OP_COUNT.rawValue))
        for (name, value) in real {
            let info = try #require(neuron_engine_insn_info(UInt32(value)), "\(name) has no row")
            #expect("NEURON_OP_" + String(cString: info.pointee.name) == name)
            // A sync instruction is the runner's; every other one has a step.
            #expect((info.pointee.kind == UInt8(NEURON_INSN_SYNC.rawValue)) == (info.pointee.exec == nil))
            #expect(info.pointee.check != nil)
        }
        #expect(neuron_engine_insn_info(UInt32(NEURON_OP_COUNT.rawValue)) == nil)
        #expect(neuron_engine_insn_info(255) == nil)
    }

    /// Each Swift enum of sub-operations against the engine's names for them.
    func checkSubOperations<Op: CaseIterable & RawRepresentable>(_: Op.Type, opcode: neuron_opcode) throws
        where Op.RawValue == UInt8 {
        let info = try #require(neuron_engine_insn_info(opcode.rawValue)).pointee
        #expect(Op.allCases.count == Int(info.subs), "\(Op.self) has \(Op.allCases.count) cases, the engine \(info.subs)")
        for op in Op.allCases {
            let name = try #require(NeuronEngine.subOperationName(info, op.rawValue), "\(op) has no engine name")
            #expect(NeuronEngine.lowerCamelCase(name) == "\(op)", "\(Op.self).\(op) is \(name) in C")
        }
    }

    @Test("sub-operation enums match the engine's, case by case")
    func subOperations() throws {
        try checkSubOperations(NeuronBinaryOp.self, opcode: NEURON_OP_BINARY)
        try checkSubOperations(NeuronUnaryOp.self, opcode: NEURON_OP_UNARY)
        try checkSubOperations(NeuronReduceOp.self, opcode: NEURON_OP_REDUCE)
        try checkSubOperations(NeuronPoolOp.self, opcode: NEURON_OP_POOL2D)
        try checkSubOperations(NeuronCompareOp.self, opcode: NEURON_OP_COMPARE)
        try checkSubOperations(NeuronScatterOp.self, opcode: NEURON_OP_SCATTER)
        try checkSubOperations(NeuronTopKOp.self, opcode: NEURON_OP_TOPK)
        // And the C enums' own counts agree with the table.
        for (opening, opcode) in [("enum neuron_binary_op {", NEURON_OP_BINARY), ("enum neuron_unary_op {", NEURON_OP_UNARY),
                                  ("enum neuron_reduce_op {", NEURON_OP_REDUCE), ("enum neuron_pool_op {", NEURON_OP_POOL2D),
                                  ("enum neuron_compare_op {", NEURON_OP_COMPARE),
                                  ("enum neuron_scatter_op {", NEURON_OP_SCATTER), ("enum neuron_topk_op {", NEURON_OP_TOPK)] {
            let names = try Self.enumerators(in: "driver/include/uapi/neuron_isa.h", of: opening)
            let info = try #require(neuron_engine_insn_info(opcode.rawValue)).pointee
            #expect(names.count - 1 == Int(info.subs), "\(opening)")
        }
    }

    @Test("instruction names come from the engine")
    func names() {
        #expect(NeuronEngine.name(opcode: UInt8(NEURON_OP_UNARY.rawValue), sub: UInt8(NEURON_UN_LEAKY_RELU.rawValue)) == "UNARY.leakyRelu")
        #expect(NeuronEngine.name(opcode: UInt8(NEURON_OP_BARRIER.rawValue), sub: 0) == "BARRIER")
        #expect(NeuronEngine.name(opcode: UInt8(NEURON_OP_BINARY.rawValue), sub: 200) == "BINARY")
        #expect(NeuronEngine.name(opcode: 99, sub: 0) == "OP99")
    }

    @Test("dtypes and validation errors match neuron_isa.h")
    func isaEnums() throws {
        let dtypes = try Self.enumerators(in: "driver/include/uapi/neuron_isa.h", of: "enum neuron_dtype {")
        let swiftDTypes: [String: NeuronDType] = [
            "NEURON_DT_F32": .float32, "NEURON_DT_BF16": .bfloat16, "NEURON_DT_I32": .int32, "NEURON_DT_I64": .int64,
            "NEURON_DT_F16": .float16, "NEURON_DT_F64": .float64, "NEURON_DT_I8": .int8, "NEURON_DT_U8": .uint8,
            "NEURON_DT_I16": .int16, "NEURON_DT_U16": .uint16, "NEURON_DT_U32": .uint32, "NEURON_DT_U64": .uint64,
            "NEURON_DT_BOOL": .bool, "NEURON_DT_F8E4M3FN": .float8E4M3FN, "NEURON_DT_F8E4M3FNUZ": .float8E4M3FNUZ,
            "NEURON_DT_F8E5M2": .float8E5M2, "NEURON_DT_F8E5M2FNUZ": .float8E5M2FNUZ, "NEURON_DT_F8E8M0": .float8E8M0,
            "NEURON_DT_F4E2M1": .float4E2M1, "NEURON_DT_I4": .int4, "NEURON_DT_U4": .uint4, "NEURON_DT_I2": .int2,
            "NEURON_DT_U2": .uint2]
        #expect(dtypes.count - 1 == swiftDTypes.count && NeuronDType.allCases.count == swiftDTypes.count)
        for (name, value) in dtypes where name != "NEURON_DT_COUNT" {
            #expect(swiftDTypes[name]?.rawValue == UInt8(value), "\(name)")
        }
        let errors = try Self.enumerators(in: "driver/include/uapi/neuron_isa.h", of: "enum neuron_isa_error {")
            .filter { $0.name != "NEURON_ISA_OK" }
        let kinds: [String: NeuronProgramError.Kind] = [
            "NEURON_ISA_E_HEADER": .header, "NEURON_ISA_E_DESC": .descriptor, "NEURON_ISA_E_RANGE": .range,
            "NEURON_ISA_E_SLOT": .slot, "NEURON_ISA_E_OPCODE": .opcode, "NEURON_ISA_E_OPERAND": .operand,
            "NEURON_ISA_E_PARAM": .parameter, "NEURON_ISA_FAULT_INDEX": .indexFault]
        #expect(errors.count == NeuronProgramError.Kind.allCases.count)
        for (name, value) in errors {
            let kind = try #require(kinds[name], "\(name) has no Swift kind")
            #expect(kind.rawValue == UInt32(value), "\(name)")
        }
    }

    @Test("nrt.h's nrt_dtype is neuron_isa.h's neuron_dtype, value for value (the C API passes them through)")
    func nrtDTypes() throws {
        let nrt = try Self.enumerators(in: "Sources/CNRT/include/nrt.h", of: "typedef enum nrt_dtype {")
        let isa = try Self.enumerators(in: "driver/include/uapi/neuron_isa.h", of: "enum neuron_dtype {")
            .filter { $0.name != "NEURON_DT_COUNT" }
        #expect(nrt.count == isa.count && nrt.count == NeuronDType.allCases.count)
        for (name, value) in nrt {
            let type = try #require(NeuronDType(rawValue: UInt8(value)), "\(name) = \(value) is no engine type")
            let spelled = "NRT_DTYPE_" + type.name.uppercased()
            #expect(name == spelled, "\(name) = \(value) is \(type.name) in the engine")
        }
    }

    @Test("NRTStatus matches nrt.h, name and value")
    func nrtStatus() throws {
        let statuses = try Self.enumerators(in: "Sources/CNRT/include/nrt.h", of: "typedef enum NRT_STATUS {")
        #expect(statuses.count == NRTStatus.allCases.count)
        for (name, value) in statuses {
            let status = try #require(NRTStatus(rawValue: Int32(value)), "\(name) = \(value) has no NRTStatus")
            #expect(status.name == name)
        }
    }

    @Test("Swift's typed requests are the uapi's list of ioctls: name, code and argument size, in order")
    func requests() {
        let swift = NeuronRequests.all.map { ($0.name, $0.code, $0.argumentSize) }
        let uapi = NeuronRequests.uapi
        #expect(swift.count == uapi.count, "Swift has \(swift.count) requests, the uapi \(uapi.count)")
        for (mine, theirs) in zip(swift, uapi) {
            #expect(mine.0 == theirs.name && mine.1 == theirs.code && mine.2 == theirs.size,
                    "\(mine.0) (0x\(String(mine.1, radix: 16)), \(mine.2) bytes) is \(theirs.name) (0x\(String(theirs.code, radix: 16)), \(theirs.size) bytes) in C")
            // The code carries the argument's size, as _IOC_SIZE reads it.
            #expect(Int((mine.1 >> 16) & 0x3fff) == mine.2, "\(mine.0)")
        }
    }
}
