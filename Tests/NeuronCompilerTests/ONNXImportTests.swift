import Foundation
@testable import NeuronCompiler
import SwiftProtobuf
import Testing
import TestSupport

/// ONNX models built message by message, as an exporter writes them.
enum ONNXBuilder {
    static func tensor(_ name: String, _ type: Onnx_TensorProto.DataType, _ dims: [Int64]) -> Onnx_TensorProto {
        var tensor = Onnx_TensorProto()
        tensor.name = name
        tensor.dataType = Int32(type.rawValue)
        tensor.dims = dims
        return tensor
    }

    static func value(_ name: String, _ type: Onnx_TensorProto.DataType, _ dims: [Any]) -> Onnx_ValueInfoProto {
        var info = Onnx_ValueInfoProto()
        info.name = name
        var tensorType = Onnx_TypeProto.Tensor()
        tensorType.elemType = Int32(type.rawValue)
        var shape = Onnx_TensorShapeProto()
        shape.dim = dims.map { dim in
            var d = Onnx_TensorShapeProto.Dimension()
            if let value = dim as? Int { d.dimValue = Int64(value) } else if let name = dim as? String { d.dimParam = name }
            return d
        }
        tensorType.shape = shape
        info.type.tensorType = tensorType
        return info
    }

    static func node(_ op: String, _ inputs: [String], _ outputs: [String], name: String = "",
                     _ attributes: [Onnx_AttributeProto] = []) -> Onnx_NodeProto {
        var node = Onnx_NodeProto()
        node.opType = op
        node.input = inputs
        node.output = outputs
        node.name = name
        node.attribute = attributes
        return node
    }

    static func attribute(_ name: String, ints: [Int64]) -> Onnx_AttributeProto {
        var attribute = Onnx_AttributeProto()
        attribute.name = name
        attribute.type = .ints
        attribute.ints = ints
        return attribute
    }

    static func attribute(_ name: String, int: Int64) -> Onnx_AttributeProto {
        var attribute = Onnx_AttributeProto()
        attribute.name = name
        attribute.type = .int
        attribute.i = int
        return attribute
    }

    static func attribute(_ name: String, float: Float) -> Onnx_AttributeProto {
        var attribute = Onnx_AttributeProto()
        attribute.name = name
        attribute.type = .float
        attribute.f = float
        return attribute
    }

    static func model(_ graph: Onnx_GraphProto, opset: Int64 = 17) -> Onnx_ModelProto {
        var model = Onnx_ModelProto()
        model.irVersion = 8
        var entry = Onnx_OperatorSetIdProto()
        entry.version = opset
        model.opsetImport = [entry]
        model.graph = graph
        return model
    }

    /// y = relu(x · w + b), x [batch, 8]: w in float_data, b in raw_data.
    static func tiny() -> Onnx_ModelProto {
        var graph = Onnx_GraphProto()
        graph.name = "tiny"
        var w = tensor("w", .float, [8, 4])
        w.floatData = (0..<32).map { Float($0) / 8 }
        var b = tensor("b", .float, [4])
        b.rawData = Data([Float(1), -2, 3, -4].withUnsafeBytes { Array($0) })
        graph.initializer = [w, b]
        graph.input = [value("x", .float, ["batch", 8]), value("w", .float, [8, 4])]
        graph.output = [value("y", .float, ["batch", 4])]
        graph.node = [node("MatMul", ["x", "w"], ["h"], name: "mm"),
                      node("Add", ["h", "b"], ["h2"], name: "add"),
                      node("LeakyRelu", ["h2"], ["y"], name: "act", [attribute("alpha", float: 0.25)])]
        return model(graph)
    }

    static func bytes(_ model: Onnx_ModelProto) throws -> Data { try model.serializedData() }
}

func expectCompileError<T>(_ kind: NeuronCompilerError.Kind, mentioning texts: [String],
                           sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws(NeuronCompilerError) -> T) {
    do {
        _ = try body()
        Issue.record("accepted", sourceLocation: sourceLocation)
    } catch {
        #expect(error.kind == kind, "\(error)", sourceLocation: sourceLocation)
        for text in texts {
            #expect(error.message.contains(text), "\(error)", sourceLocation: sourceLocation)
        }
    }
}

@Suite("neuron-cc: ONNX import")
struct ONNXImportTests {
    @Test("a model's inputs, outputs, constants, attributes and nodes come through")
    func tiny() throws {
        let graph = try ONNXImporter.load(try ONNXBuilder.bytes(ONNXBuilder.tiny()))
        #expect(graph.opset == 17 && graph.name == "tiny")
        // w is an initializer listed among the inputs (old exporters do): not an input.
        #expect(graph.inputs == [ValueInfo(name: "x", type: .float32, shape: [.open("batch"), .fixed(8)])])
        #expect(graph.outputs.map(\.name) == ["y"])
        #expect(graph.constants["w"]?.shape == [8, 4])
        #expect(graph.constants["w"]?.doubles() == (0..<32).map { Double($0) / 8 })
        #expect(graph.constants["b"]?.doubles() == [1, -2, 3, -4])
        #expect(graph.nodes.map(\.op) == ["MatMul", "Add", "LeakyRelu"])
        #expect(graph.nodes[2].attributes["alpha"] == .float(0.25))
        #expect(graph.opCounts == ["MatMul": 1, "Add": 1, "LeakyRelu": 1])
    }

    @Test("Constant nodes and every storage of tensor data become constants")
    func constants() throws {
        var model = ONNXBuilder.tiny()
        var half = ONNXBuilder.tensor("half", .float16, [3])
        half.int32Data = [0x3C00, 0xC000, 0x0001]    // 1, -2, the smallest subnormal
        var ids = ONNXBuilder.tensor("ids", .int64, [2])
        ids.int64Data = [7, -9]
        var flags = ONNXBuilder.tensor("flags", .bool, [3])
        flags.int32Data = [1, 0, 1]
        var doubles = ONNXBuilder.tensor("d", .double, [2])
        doubles.doubleData = [0.5, -1e300]
        var bf = ONNXBuilder.tensor("bf", .bfloat16, [1])
        bf.rawData = Data([0x80, 0x3F])               // 1.0
        model.graph.initializer += [half, ids, flags, doubles, bf]
        var valueAttribute = Onnx_AttributeProto()
        valueAttribute.name = "value"
        valueAttribute.type = .tensor
        valueAttribute.t = { var t = ONNXBuilder.tensor("", .int32, [2]); t.int32Data = [3, 4]; return t }()
        model.graph.node.insert(ONNXBuilder.node("Constant", [], ["c1"], name: "k1", [valueAttribute]), at: 0)
        model.graph.node.insert(ONNXBuilder.node("Constant", [], ["c2"], name: "k2", [ONNXBuilder.attribute("value_ints", ints: [1, -1])]), at: 0)
        let graph = try ONNXImporter.load(try ONNXBuilder.bytes(model))
        #expect(graph.constants["half"]?.doubles() == [1, -2, Double(Float(sign: .plus, exponent: -24, significand: 1))])
        #expect(graph.constants["ids"]?.integers() == [7, -9])
        #expect(graph.constants["flags"]?.integers() == [1, 0, 1])
        #expect(graph.constants["d"]?.doubles() == [0.5, -1e300])
        #expect(graph.constants["bf"]?.doubles() == [1])
        #expect(graph.constants["c1"] == ConstantTensor(type: .int32, shape: [2], bytes: [3, 0, 0, 0, 4, 0, 0, 0]))
        #expect(graph.constants["c2"]?.integers() == [1, -1] && graph.constants["c2"]?.type == .int64)
        #expect(!graph.nodes.contains { $0.op == "Constant" })
    }

    @Test("external data is read from the model's directory, within bounds")
    func externalData() throws {
        let dir = "/tmp/neuron-onnx-ext-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let values: [Float] = (0..<32).map { Float($0) * 0.5 }
        try Data([UInt8](repeating: 0xAA, count: 16) + values.withUnsafeBytes { Array($0) })
            .write(to: URL(fileURLWithPath: "\(dir)/weights.bin"))
        func model(location: String, offset: String = "16", length: String? = "128") throws -> Data {
            var model = ONNXBuilder.tiny()
            var w = ONNXBuilder.tensor("w", .float, [8, 4])
            w.dataLocation = .external
            var fields = [("location", location), ("offset", offset)]
            if let length { fields.append(("length", length)) }
            w.externalData = fields.map { key, value in
                var entry = Onnx_StringStringEntryProto()
                entry.key = key
                entry.value = value
                return entry
            }
            model.graph.initializer[0] = w
            return try ONNXBuilder.bytes(model)
        }
        try model(location: "weights.bin").write(to: URL(fileURLWithPath: "\(dir)/m.onnx"))
        let graph = try ONNXImporter.load(contentsOf: "\(dir)/m.onnx")
        #expect(graph.constants["w"]?.doubles() == values.map(Double.init))
        try model(location: "weights.bin", length: nil).write(to: URL(fileURLWithPath: "\(dir)/m2.onnx"))
        #expect(try ONNXImporter.load(contentsOf: "\(dir)/m2.onnx").constants["w"]?.doubles() == values.map(Double.init))

        let hostile: [(Data, NeuronCompilerError.Kind, String)] = [
            (try model(location: "../weights.bin"), .invalidModel, "relative path"),
            (try model(location: "/etc/passwd"), .invalidModel, "relative path"),
            (try model(location: "weights.bin", offset: "100"), .invalidModel, "at offset 100"),
            (try model(location: "weights.bin", offset: "-4"), .invalidModel, "not a byte count"),
            (try model(location: "weights.bin", length: "64"), .invalidModel, "takes 128"),
            (try model(location: "missing.bin"), .unreadable, "cannot be opened"),
        ]
        for (index, (bytes, kind, text)) in hostile.enumerated() {
            try bytes.write(to: URL(fileURLWithPath: "\(dir)/h\(index).onnx"))
            expectCompileError(kind, mentioning: ["initializer w", text]) {
                () throws(NeuronCompilerError) in try ONNXImporter.load(contentsOf: "\(dir)/h\(index).onnx")
            }
        }
        // Without a file, there is no directory to read from.
        expectCompileError(.unreadable, mentioning: ["not read from a file"]) { () throws(NeuronCompilerError) in
            try ONNXImporter.load(try! model(location: "weights.bin"))
        }
    }

    @Test("bad models are refused with what is wrong and where")
    func refused() throws {
        func load(_ edit: (inout Onnx_ModelProto) -> Void) throws(NeuronCompilerError) -> Graph {
            var model = ONNXBuilder.tiny()
            edit(&model)
            return try ONNXImporter.load(try! ONNXBuilder.bytes(model))
        }
        expectCompileError(.unsupported, mentioning: ["opset 12", "version_converter"]) { () throws(NeuronCompilerError) in
            try load { $0.opsetImport[0].version = 12 }
        }
        expectCompileError(.invalidModel, mentioning: ["no opset"]) { () throws(NeuronCompilerError) in
            try load { $0.opsetImport[0].domain = "ai.onnx.ml" }
        }
        expectCompileError(.invalidModel, mentioning: ["Add \"add\"", "reads nowhere"]) { () throws(NeuronCompilerError) in
            try load { $0.graph.node[1].input[0] = "nowhere" }
        }
        expectCompileError(.invalidModel, mentioning: ["Add \"add\" reads h", "topological"]) { () throws(NeuronCompilerError) in
            try load { $0.graph.node.swapAt(0, 1) }
        }
        expectCompileError(.unsupported, mentioning: ["domain com.example", "\"mm\""]) { () throws(NeuronCompilerError) in
            try load { $0.graph.node[0].domain = "com.example" }
        }
        expectCompileError(.invalidModel, mentioning: ["initializer b", "holds 12 bytes"]) { () throws(NeuronCompilerError) in
            try load { $0.graph.initializer[1].rawData = Data(count: 12) }
        }
        expectCompileError(.unsupported, mentioning: ["initializer w", "element type string"]) { () throws(NeuronCompilerError) in
            try load { $0.graph.initializer[0].dataType = Int32(Onnx_TensorProto.DataType.string.rawValue) }
        }
        expectCompileError(.invalidModel, mentioning: ["initializer w", "dimension -8"]) { () throws(NeuronCompilerError) in
            try load { $0.graph.initializer[0].dims = [-8, -4] }
        }
        expectCompileError(.invalidModel, mentioning: ["initializer w", "too many"]) { () throws(NeuronCompilerError) in
            try load { $0.graph.initializer[0].dims = [1 << 30, 1 << 30] }
        }
        expectCompileError(.invalidModel, mentioning: ["output y", "no node"]) { () throws(NeuronCompilerError) in
            try load { $0.graph.node.removeLast() }
        }
        expectCompileError(.invalidModel, mentioning: ["LeakyRelu \"act\"", "writes h"]) { () throws(NeuronCompilerError) in
            try load { $0.graph.node[2].output[0] = "h" }
        }
        expectCompileError(.invalidModel, mentioning: ["no graph"]) { () throws(NeuronCompilerError) in
            try load { $0.clearGraph() }
        }
        expectCompileError(.unreadable, mentioning: ["not an ONNX model"]) { () throws(NeuronCompilerError) in
            try ONNXImporter.load(Data("NEFF garbage, not protobuf at all".utf8))
        }
        expectCompileError(.unreadable, mentioning: ["cannot read /nonexistent/m.onnx"]) { () throws(NeuronCompilerError) in
            try ONNXImporter.load(contentsOf: "/nonexistent/m.onnx")
        }
    }

    @Test("truncated and mutated models never crash the importer")
    func mutations() throws {
        let bytes = Array(try ONNXBuilder.bytes(ONNXBuilder.tiny()))
        var state: UInt32 = 99
        func next(_ bound: Int) -> Int {
            state = state &* 1_664_525 &+ 1_013_904_223
            return Int(state >> 8) % bound
        }
        var refused = 0
        for length in stride(from: 0, to: bytes.count, by: 7) {
            do { _ = try ONNXImporter.load(Data(bytes.prefix(length))) } catch { refused += 1 }
        }
        for _ in 0..<2000 {
            var mutated = bytes
            for _ in 0..<(1 + next(4)) { mutated[next(mutated.count)] = UInt8(next(256)) }
            do { _ = try ONNXImporter.load(Data(mutated)) } catch { refused += 1 }
        }
        #expect(refused > 0)
    }

    @Test("neuron-cc inspect prints a NEFF's tensors and programs, and an ONNX model's graph")
    func inspect() throws {
        let dir = "/tmp/neuron-cc-inspect-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try tinyModel().write(to: "\(dir)/tiny.neff")
        let neff = try runTool("neuron-cc", ["inspect", "\(dir)/tiny.neff", "--instructions"])
        #expect(neff.status == 0, "\(neff.stderr)")
        for line in ["model tiny", "weight  w: float32 8x4, 128 bytes", "output  y: float32 2x4",
                     "program 0: NeuronCore 0", "2 instructions, 72 element operations",
                     "ops: MATMUL 1, UNARY.relu 1", "0: MATMUL (64)",
                     // Each instruction's operands, the output first: y = x · w + b.
                     "slot 3 +0 float32 [2,4]/[4,1] <- slot 0 +0 float32 [2,8]/[8,1] <- slot 1 +0 float32 [8,4]/[4,1] <- slot 2 +0 float32 [4]/[1]"] {
            #expect(neff.stdout.contains(line), "\(line) not in \(neff.stdout)")
        }
        try ONNXBuilder.bytes(ONNXBuilder.tiny()).write(to: URL(fileURLWithPath: "\(dir)/tiny.onnx"))
        let onnx = try runTool("neuron-cc", ["inspect", "\(dir)/tiny.onnx"])
        #expect(onnx.status == 0, "\(onnx.stderr)")
        for line in ["graph tiny, opset 17", "constants 2 (144 bytes)", "input  x: float32 batchx8",
                     "ops: Add 1, LeakyRelu 1, MatMul 1"] {
            #expect(onnx.stdout.contains(line), "\(line) not in \(onnx.stdout)")
        }
        try Data("not a model".utf8).write(to: URL(fileURLWithPath: "\(dir)/junk.onnx"))
        let junk = try runTool("neuron-cc", ["inspect", "\(dir)/junk.onnx"])
        #expect(junk.status != 0 && junk.stderr.contains("not an ONNX model"), "\(junk.stderr)")
    }
}
