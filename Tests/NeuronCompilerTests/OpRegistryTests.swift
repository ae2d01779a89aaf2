import Foundation
import NeuronISA
import Testing
import TestSupport
@testable import NeuronCompiler

/// The op registry (`Sources/NeuronCompiler/Ops/`): every ONNX op neuron-cc
/// takes is one entry, and what is derived from it agrees.
@Suite("neuron-cc: the op registry")
struct OpRegistryTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    @Test("each op has one entry that folds or lowers, and the supported list is the registry's")
    func entries() {
        let names = ONNXOps.all.map(\.name)
        #expect(Set(names).count == names.count, "an op has two entries: \(names.sorted())")
        #expect(NeuronCompiler.supportedOps == names.sorted())
        for op in ONNXOps.all {
            #expect(op.fold != nil || op.lower != nil, "\(op.name) neither folds nor lowers")
            #expect(ONNXOps.byName[op.name]?.name == op.name)
        }
        // The families the models we compile need are all there.
        for name in ["Conv", "MatMul", "Gemm", "Softmax", "LayerNormalization", "Shape", "Reshape", "Gather"] {
            #expect(ONNXOps.byName[name] != nil, "\(name) is missing")
        }
    }

    @Test("docs/onnx-ops.md holds the registry's table as neuron-cc ops --markdown prints it")
    func docsTable() throws {
        let docs = try String(contentsOf: Self.root.appendingPathComponent("docs/onnx-ops.md"), encoding: .utf8)
        #expect(docs.contains(NeuronCompiler.opsTable + "\n"),
                "docs/onnx-ops.md is behind the registry: run scripts/onnx-node-tests --docs docs/onnx-ops.md")
        for op in NeuronCompiler.ops { #expect(docs.contains("| \(op.name) | \(op.how) |")) }
    }

    /// A graph of one `op` node over a computed input `x` of `type` (and constants).
    static func single(_ op: String, type: ElementType = .float32, inputs: [String] = ["x"],
                       constants: [String: ConstantTensor] = [:]) -> Graph {
        Graph(name: "g", opset: 17, inputs: [ValueInfo(name: "x", type: type, shape: [.fixed(2), .fixed(3)])],
              outputs: [ValueInfo(name: "y", type: type, shape: nil)], constants: constants,
              nodes: [Node(name: "n", op: op, inputs: inputs, outputs: ["y"])])
    }

    @Test("an entry's types are checked before it lowers: int32 into Relu is refused, into Reshape taken")
    func types() throws {
        expectCompileError(.unsupported, mentioning: ["Relu \"n\"", "input x is int32", "Relu runs on float32 or float64 tensors"]) {
            () throws(NeuronCompilerError) in try NeuronCompiler.compile(Self.single("Relu", type: .int32))
        }
        let reshape = Self.single("Reshape", type: .int32, inputs: ["x", "s"],
                                  constants: ["s": .integers([3, 2])])
        let (model, _) = try NeuronCompiler.compile(reshape)
        #expect(model.outputs.first?.shape == [3, 2] && model.outputs.first?.dtype == .int32)
        // A reduction's types cover its data, not its axes: computed axes
        // are refused as axes, not as a tensor of the wrong type.
        var reduce = Self.single("ReduceSum", inputs: ["x", "a"])
        reduce.inputs.append(ValueInfo(name: "a", type: .int64, shape: [.fixed(1)]))
        expectCompileError(.unsupported, mentioning: ["ReduceSum \"n\"", "the axes (input 1) must be a constant integer tensor"]) {
            () throws(NeuronCompilerError) in try NeuronCompiler.compile(reduce)
        }
    }

    @Test("a fold-only op folds when its inputs are known and is refused, saying why, when they are not")
    func foldOnly() throws {
        let known = Graph(name: "g", opset: 17, inputs: [ValueInfo(name: "x", type: .float32, shape: [.fixed(2), .fixed(3)])],
                          outputs: [ValueInfo(name: "y", type: .float32, shape: nil)],
                          constants: ["a": .integers([1, 2, 3]), "b": .integers([1, 5, 3])],
                          nodes: [Node(name: "eq", op: "Equal", inputs: ["a", "b"], outputs: ["e"]),
                                  Node(name: "w", op: "Where", inputs: ["e", "x", "x"], outputs: ["y"])])
        var computed = known
        computed.nodes[1] = Node(name: "r", op: "Range", inputs: ["x", "x", "x"], outputs: ["y"])
        expectCompileError(.unsupported, mentioning: ["Range \"r\"", "needs its inputs known at compile time"]) {
            () throws(NeuronCompilerError) in try NeuronCompiler.compile(computed)
        }
        var folded = known
        folded.nodes[1] = Node(name: "c", op: "Cast", inputs: ["e"], outputs: ["y"], attributes: ["to": .int(1)])
        folded.outputs = [ValueInfo(name: "y", type: .float32, shape: nil)]
        let (_, report) = try NeuronCompiler.compile(folded)
        #expect(report.folded == 2 && report.instructions == 1)
    }
}

/// Ops added through the registry alone (the recipe of docs/architecture.md).
@Suite("neuron-cc: ops on existing instructions")
struct RegistryOpTests {
    @Test("HardSigmoid (attributes and defaults) and HardSwish compute their definitions, bit for bit")
    func hardSigmoidAndSwish() throws {
        let x = (0..<6).map { Float($0) * 2.75 - 7.5 }   // -7.5 ... 6.25: both clamps and the slope
        func graph(_ op: String, _ attributes: [String: AttributeValue]) -> Graph {
            Graph(name: op, opset: 17, inputs: [ValueInfo(name: "x", type: .float32, shape: [.fixed(2), .fixed(3)])],
                  outputs: [ValueInfo(name: "y", type: .float32, shape: nil)], constants: [:],
                  nodes: [Node(name: "n", op: op, inputs: ["x"], outputs: ["y"], attributes: attributes)])
        }
        func hard(_ v: Float, _ alpha: Float, _ beta: Float) -> Float { max(0, min(1, v * alpha + beta)) }
        let cases: [(String, [String: AttributeValue], (Float) -> Float)] = [
            ("HardSigmoid", [:], { hard($0, 0.2, 0.5) }),
            ("HardSigmoid", ["alpha": .float(0.125), "beta": .float(0.25)], { hard($0, 0.125, 0.25) }),
            ("HardSwish", [:], { $0 * hard($0, 1 / 6, 0.5) }),
        ]
        for (op, attributes, reference) in cases {
            let (model, _) = try NeuronCompiler.compile(graph(op, attributes))
            let got = try run(model, ["x": x])["y"] ?? []
            #expect(got == x.map(reference), "\(op) \(attributes)")
            #expect(got.contains(0) && got.contains { $0 != 0 && abs($0) != 1 }, "the inputs miss a clamp or the slope")
        }
    }
}
