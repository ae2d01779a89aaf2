import Foundation
import NeuronISA
import NeuronNEFF
import Testing
import TestSupport
@testable import NeuronCompiler

/// Copy elision into parts of a buffer: a Concat's inputs computed
/// straight into their slices (DenseNet's chain of growing
/// concatenations folding into one buffer), and the cases where the copy
/// must stay because the slice is touched before it.
@Suite("neuron-cc: concatenation without copies")
struct CopyElisionTests {
    static func graph(_ nodes: [Node], inputs: [(String, [Int])], outputs: [String],
                      constants: [String: ConstantTensor] = [:]) -> Graph {
        Graph(name: "elide", opset: 18, inputs: inputs.map { ValueInfo(name: $0.0, type: .float32, shape: $0.1.map { .fixed($0) }) },
              outputs: outputs.map { ValueInfo(name: $0, type: .float32, shape: nil) }, constants: constants, nodes: nodes)
    }

    static func copies(_ model: NEFFModel) throws -> Int {
        let program = try #require(model.programs.first)
        let sizes = program.slots.map { name in UInt64(name.flatMap { model.tensor(named: $0)?.byteCount } ?? 0) }
        return try NeuronEngine.instructions(program.image, slotSizes: sizes).filter { $0.name == "COPY" }.count
    }

    static func node(_ op: String, _ inputs: [String], _ output: String, axis: Int? = nil) -> Node {
        Node(name: output, op: op, inputs: inputs, outputs: [output], attributes: axis.map { ["axis": .int($0)] } ?? [:])
    }

    @Test("a chain of concatenations (DenseNet's block) computes every part in place: only the input is copied, the same values")
    func denseChain() throws {
        // x [1, 2, 3, 4]; y_k = relu(c_{k-1} · 2 - 1) over its first two channels; c_k = concat(c_{k-1}, y_k).
        var nodes: [Node] = [], current = "x", channels = 2
        for k in 1...4 {
            nodes.append(Self.node("Slice", [current, "s0", "s2", "s1"], "head\(k)"))
            nodes.append(Self.node("Mul", ["head\(k)", "two"], "m\(k)"))
            nodes.append(Self.node("Sub", ["m\(k)", "one"], "d\(k)"))
            nodes.append(Self.node("Relu", ["d\(k)"], "y\(k)"))
            nodes.append(Self.node("Concat", [current, "y\(k)"], "c\(k)", axis: 1))
            current = "c\(k)"
            channels += 2
        }
        nodes.append(Self.node("Neg", [current], "out"))
        let constants: [String: ConstantTensor] = ["two": .make(.float32, [], [2]), "one": .make(.float32, [], [1]),
                                                   "s0": .integers([0]), "s2": .integers([2]), "s1": .integers([1])]
        let (model, _) = try NeuronCompiler.compile(Self.graph(nodes, inputs: [("x", [1, 2, 3, 4])], outputs: ["out"],
                                                               constants: constants))
        // One COPY: the graph's input into the first part (an input is
        // not the compiler's to place); each y_k is computed in place.
        #expect(try Self.copies(model) == 1)
        let x = sample(24, seed: 3)
        var c = x   // [channel][12]
        for _ in 1...4 {
            let y = c[0..<24].map { max($0 * 2 - 1, 0) }
            c += y
        }
        let got = try run(model, ["x": x])["out"] ?? []
        #expect(got.map(\.bitPattern) == c.map { (-$0).bitPattern })
        #expect(channels == 10 && got.count == 10 * 12)
    }

    @Test("a part written before its value is computed keeps its copy (Pad on channels: FILL, then the values)")
    func touchedFirst() throws {
        // y = relu(x) computed before the pad's FILL of its output would
        // otherwise be overwritten by it; z = Pad(relu(x)) on channels.
        let nodes = [Self.node("Relu", ["x"], "r"),
                     Node(name: "pad", op: "Pad", inputs: ["r", "pads"], outputs: ["p"]),
                     Self.node("Neg", ["p"], "out")]
        let constants: [String: ConstantTensor] = ["pads": .integers([0, 1, 0, 0, 0, 2, 0, 0])]
        let (model, _) = try NeuronCompiler.compile(Self.graph(nodes, inputs: [("x", [1, 3, 2, 2])], outputs: ["out"],
                                                               constants: constants))
        let x = sample(12, seed: 5)
        let r = x.map { max($0, 0) }
        let padded = [Float](repeating: 0, count: 4) + r + [Float](repeating: 0, count: 8)
        let got = try run(model, ["x": x])["out"] ?? []
        #expect(got.map(\.bitPattern) == padded.map { (-$0).bitPattern })
    }

    @Test("an input concatenated twice, and one read again after the concatenation, keep their values")
    func readAgain() throws {
        let nodes = [Self.node("Neg", ["x"], "n"),
                     Self.node("Concat", ["n", "n"], "twice", axis: 0),
                     Self.node("Concat", ["twice", "n"], "c", axis: 0),
                     Self.node("Abs", ["n"], "a"),
                     Self.node("Concat", ["c", "a"], "out", axis: 0)]
        let (model, _) = try NeuronCompiler.compile(Self.graph(nodes, inputs: [("x", [2, 5])], outputs: ["out"]))
        let x = sample(10, seed: 7)
        let n = x.map { -$0 }
        let got = try run(model, ["x": x])["out"] ?? []
        #expect(got.map(\.bitPattern) == (n + n + n + n.map { abs($0) }).map(\.bitPattern))
    }
}
