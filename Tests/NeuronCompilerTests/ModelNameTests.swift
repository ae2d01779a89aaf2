import Foundation
import NeuronISA
import NeuronNEFF
import Testing
import TestSupport
@testable import NeuronCompiler

@Suite("neuron-cc: the model's own names")
struct ModelNameTests {
    /// y = relu(x * 2 + 1) over x [2, 3], with the inputs and outputs named as given.
    static func graph(input: String, output: String) -> Graph {
        Graph(name: "names", opset: 17, inputs: [ValueInfo(name: input, type: .float32, shape: [.fixed(2), .fixed(3)])],
              outputs: [ValueInfo(name: output, type: .float32, shape: nil)],
              constants: ["two": .make(.float32, [], [2]), "one": .make(.float32, [3], [1, 1, 1])],
              nodes: [Node(name: "m", op: "Mul", inputs: [input, "two"], outputs: ["t"]),
                      Node(name: "a", op: "Add", inputs: ["t", "one"], outputs: ["u"]),
                      Node(name: "r", op: "Relu", inputs: ["u"], outputs: [output])])
    }

    @Test("inputs and outputs keep the names exporters write; the compiler's own tensors step aside",
          arguments: [("gpu_0/data_0", "gpu_0/softmax_1"), ("input_1:0", "/dense/BiasAdd:0"), ("weights", "scratch"),
                      ("onnx::Conv_3", "../out put"), ("weights", "weights~1")])
    func names(_ input: String, _ output: String) throws {
        let (model, _) = try NeuronCompiler.compile(Self.graph(input: input, output: output))
        #expect(model.inputs.map(\.name) == [input] && model.outputs.map(\.name) == [output])
        #expect(Set(model.tensors.map(\.name)).count == model.tensors.count, "\(model.tensors.map(\.name))")
        #expect(model.tensors.contains { $0.kind == .weight } && model.tensors.contains { $0.kind == .scratch })
        let back = try NEFFModel(bytes: try model.serialized())
        #expect(back.inputs.map(\.name) == [input] && back.outputs.map(\.name) == [output])
        let x = sample(6, seed: 5)
        let y = try run(back, [input: x])[output] ?? []
        #expect(y == x.map { max(0, $0 * 2 + 1) })
    }

    @Test("names a NEFF cannot carry, or that two values share, are refused at compile time, saying which")
    func refused() {
        expectCompileError(.unsupported, mentioning: ["has 300 bytes", "1 to 255 bytes"]) { () throws(NeuronCompilerError) in
            try NeuronCompiler.compile(Self.graph(input: String(repeating: "n", count: 300), output: "y"))
        }
        expectCompileError(.unsupported, mentioning: ["contains a NUL byte"]) { () throws(NeuronCompilerError) in
            try NeuronCompiler.compile(Self.graph(input: "x\u{0}", output: "y"))
        }
        var through = Self.graph(input: "x", output: "y")
        through.outputs.append(ValueInfo(name: "x", type: .float32, shape: nil))
        expectCompileError(.invalidModel, mentioning: ["\"x\"", "more than one of the graph's inputs and outputs"]) {
            () throws(NeuronCompilerError) in try NeuronCompiler.compile(through)
        }
    }

    @Test("a name that is not UTF-8 is refused at import, saying so, not as an unreadable file")
    func notUTF8() throws {
        var model = ONNXBuilder.tiny()
        model.graph.node[2].name = "QQQQ"
        var bytes = [UInt8](try ONNXBuilder.bytes(model))
        let marker = Array("QQQQ".utf8)
        let at = try #require((0...(bytes.count - 4)).first { Array(bytes[$0..<($0 + 4)]) == marker })
        bytes.replaceSubrange(at..<(at + 4), with: [0xff, 0xfe, 0x51, 0x51])
        expectCompileError(.invalidModel, mentioning: ["not UTF-8", "ONNX strings must be UTF-8"]) { () throws(NeuronCompilerError) in
            try ONNXImporter.load(Data(bytes))
        }
    }
}

@Suite("neuron-cc compile --check")
struct CompileCheckTests {
    @Test("every op neuron-cc lacks is listed at once, with its nodes; a model that compiles says so")
    func check() throws {
        var graph = ModelNameTests.graph(input: "x", output: "y")
        #expect(NeuronCompiler.check(graph).isEmpty)
        graph.nodes[0].op = "NonZero"
        graph.nodes[1].op = "Unique"
        graph.nodes.append(Node(name: "l2", op: "NonZero", inputs: ["y"], outputs: ["z"]))
        let problems = NeuronCompiler.check(graph)
        #expect(problems.count == 2, "\(problems)")
        #expect(problems.first?.message.contains("NonZero (2 nodes: \"m\", \"l2\")") == true, "\(problems)")
        #expect(problems.last?.message.contains("Unique (1 node: \"a\")") == true, "\(problems)")
        #expect(problems.allSatisfy { $0.kind == .unsupported && $0.message.contains("neuron-cc ops") })
        // Past the ops, the compile's own refusal.
        let shapes = NeuronCompiler.check(ModelNameTests.graph(input: "x", output: "y"),
                                          options: CompileOptions(inputShapes: ["x": [2, 4]]))
        #expect(shapes.count == 1 && shapes[0].kind == .shape, "\(shapes)")
    }
}
