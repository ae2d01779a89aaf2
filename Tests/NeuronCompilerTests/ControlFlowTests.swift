import Foundation
import NeuronISA
import Testing
import TestSupport
@testable import NeuronCompiler

/// If, Loop and Scan inlined at compile time, their bodies reading values
/// of the graph around them by name.
@Suite("neuron-cc: If, Loop and Scan")
struct ControlFlowTests {
    static func info(_ name: String, _ type: ElementType, _ shape: [Int]) -> ValueInfo {
        ValueInfo(name: name, type: type, shape: shape.map { .fixed($0) })
    }

    static func floats(_ bytes: [UInt8]?) -> [Double] { NeuronDType.float32.values(bytes ?? []) }

    @Test("If with a run-time condition computes both branches and selects; a known one takes its branch alone")
    func ifBranches() throws {
        let thenBranch = Graph(name: "then", opset: 18, inputs: [], outputs: [Self.info("t", .float32, [3])],
                               constants: ["one": .make(.float32, [], [1])],
                               nodes: [Node(name: "add", op: "Add", inputs: ["x", "one"], outputs: ["t"])])
        let elseBranch = Graph(name: "else", opset: 18, inputs: [], outputs: [Self.info("e", .float32, [3])], constants: [:],
                               nodes: [Node(name: "neg", op: "Neg", inputs: ["x"], outputs: ["e"])])
        let node = Node(name: "if", op: "If", inputs: ["c"], outputs: ["y"],
                        attributes: ["then_branch": .graph(thenBranch), "else_branch": .graph(elseBranch)])
        let graph = Graph(name: "if", opset: 18, inputs: [Self.info("c", .bool, [1]), Self.info("x", .float32, [3])],
                          outputs: [Self.info("y", .float32, [3])], constants: [:], nodes: [node])
        let (model, _) = try NeuronCompiler.compile(graph)
        let x: [Double] = [1.5, -2, 4]
        for flag: UInt8 in [1, 0] {
            let out = try runBytes(model, ["c": [flag], "x": NeuronDType.float32.bytes(x)])
            #expect(Self.floats(out["y"]) == x.map { flag == 1 ? $0 + 1 : -$0 }, "cond \(flag)")
        }
        // A known condition: the else branch alone, one instruction (the Neg).
        var known = graph
        known.inputs.removeFirst()
        known.constants["c"] = ConstantTensor(type: .bool, shape: [1], bytes: [0])
        let (picked, report) = try NeuronCompiler.compile(known)
        #expect(report.instructions == 1)
        #expect(Self.floats(try runBytes(picked, ["x": NeuronDType.float32.bytes(x)])["y"]) == x.map { -$0 })
    }

    @Test("Loop of a known trip count unrolls: loop-carried values, scan outputs stacked, a value read from around it")
    func loop() throws {
        // acc = acc * w + float(i), four times; each acc also a scan output.
        let body = Graph(
            name: "body", opset: 18,
            inputs: [Self.info("i", .int64, []), Self.info("cond", .bool, []), Self.info("acc", .float32, [2])],
            outputs: [Self.info("cond_out", .bool, []), Self.info("acc_out", .float32, [2]), Self.info("each", .float32, [2])],
            constants: [:],
            nodes: [Node(name: "ci", op: "Cast", inputs: ["i"], outputs: ["fi"], attributes: ["to": .int(1)]),
                    Node(name: "mul", op: "Mul", inputs: ["acc", "w"], outputs: ["scaled"]),
                    Node(name: "add", op: "Add", inputs: ["scaled", "fi"], outputs: ["acc_out"]),
                    Node(name: "keep", op: "Identity", inputs: ["cond"], outputs: ["cond_out"]),
                    Node(name: "copy", op: "Identity", inputs: ["acc_out"], outputs: ["each"])])
        let loop = Node(name: "loop", op: "Loop", inputs: ["M", "go", "x"], outputs: ["final", "all"],
                        attributes: ["body": .graph(body)])
        let graph = Graph(name: "loop", opset: 18, inputs: [Self.info("x", .float32, [2]), Self.info("w", .float32, [2])],
                          outputs: [Self.info("final", .float32, [2]), Self.info("all", .float32, [4, 2])],
                          constants: ["M": .integers([4], shape: []), "go": ConstantTensor(type: .bool, shape: [], bytes: [1])],
                          nodes: [loop])
        let (model, _) = try NeuronCompiler.compile(graph)
        #expect(model.outputs.map(\.shape) == [[2], [4, 2]])
        let x: [Double] = [1, -2], w: [Double] = [0.5, 3]
        let out = try runBytes(model, ["x": NeuronDType.float32.bytes(x), "w": NeuronDType.float32.bytes(w)])
        var acc = x, all: [Double] = []
        for i in 0..<4 {
            acc = zip(acc, w).map { $0 * $1 + Double(i) }
            all += acc
        }
        #expect(Self.floats(out["final"]) == acc)
        #expect(Self.floats(out["all"]) == all)

        // A trip count known only at run time is refused, saying what neuron-cc unrolls.
        var open = graph
        open.constants["M"] = nil
        open.inputs.append(Self.info("M", .int64, []))
        expectCompileError(.unsupported, mentioning: ["Loop \"loop\"", "trip count M is computed at run time"]) {
            () throws(NeuronCompilerError) in try NeuronCompiler.compile(open)
        }

        // --check finds an op neuron-cc lacks inside the body, named within the Loop.
        var lacking = graph
        var strange = body
        strange.nodes[1].op = "NoSuchOp"
        lacking.nodes[0].attributes["body"] = .graph(strange)
        let problems = NeuronCompiler.check(lacking)
        #expect(problems.count == 1 && problems[0].description.contains("NoSuchOp (1 node: \"loop/mul\")"), "\(problems)")
    }

    @Test("Scan unrolls over the sequence axis, forward or reversed, into stacked outputs")
    func scan() throws {
        // A running sum over the rows of x [3, 2], read from the last row first.
        let body = Graph(name: "body", opset: 18,
                         inputs: [Self.info("sum", .float32, [2]), Self.info("row", .float32, [2])],
                         outputs: [Self.info("sum_out", .float32, [2]), Self.info("partial", .float32, [2])],
                         constants: [:],
                         nodes: [Node(name: "add", op: "Add", inputs: ["sum", "row"], outputs: ["sum_out"]),
                                 Node(name: "copy", op: "Identity", inputs: ["sum_out"], outputs: ["partial"])])
        let scan = Node(name: "scan", op: "Scan", inputs: ["zero", "x"], outputs: ["total", "partials"],
                        attributes: ["body": .graph(body), "num_scan_inputs": .int(1), "scan_input_directions": .ints([1])])
        let graph = Graph(name: "scan", opset: 18, inputs: [Self.info("x", .float32, [3, 2])],
                          outputs: [Self.info("total", .float32, [2]), Self.info("partials", .float32, [3, 2])],
                          constants: ["zero": .make(.float32, [2], [0, 0])], nodes: [scan])
        let (model, _) = try NeuronCompiler.compile(graph)
        let x: [Double] = [1, 2, 10, 20, 100, 200]
        let out = try runBytes(model, ["x": NeuronDType.float32.bytes(x)])
        #expect(Self.floats(out["total"]) == [111, 222])
        #expect(Self.floats(out["partials"]) == [100, 200, 110, 220, 111, 222])
    }
}
