import Foundation
@testable import NeuronCompiler
import NeuronDevice
import NeuronNEFF
import NeuronRuntime
import Testing
import TestSupport

/// Runs `model` once on the backend under test (the kernel's in the VM)
/// with raw input bytes; the outputs' bytes.
func runBytes(_ model: NEFFModel, _ inputs: [String: [UInt8]]) throws -> [String: [UInt8]] {
    let rt = try NeuronRuntime(backend: try backendUnderTest(), environment: [:])
    defer { rt.close() }
    let loaded = try rt.load(model)
    let ins = try loaded.allocateInputs(), outs = try loaded.allocateOutputs()
    for (name, bytes) in inputs { try ins[name]?.write(bytes) }
    try loaded.execute(inputs: ins, outputs: outs)
    var result: [String: [UInt8]] = [:]
    for (name, tensor) in outs { result[name] = try tensor.read(UInt8.self) }
    return result
}

/// Run a compiled model of float32 inputs and outputs once on the backend under test.
func run(_ model: NEFFModel, _ inputs: [String: [Float]]) throws -> [String: [Float]] {
    let raw = try runBytes(model, inputs.mapValues { values in values.withUnsafeBytes { Array($0) } })
    return raw.mapValues { bytes in bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) } }
}

@Suite("neuron-cc: compile")
struct CompilerTests {
    /// The tiny model's definition: leaky_relu(x · w + b, 0.25).
    func reference(_ x: [Float], rows: Int) -> [Float] {
        let w = (0..<32).map { Float($0) / 8 }, b: [Float] = [1, -2, 3, -4]
        var out: [Float] = []
        for i in 0..<rows { for j in 0..<4 {
            var acc: Float = 0
            for k in 0..<8 { acc = acc.addingProduct(x[i * 8 + k], w[k * 4 + j]) }
            acc += b[j]
            out.append(acc > 0 ? acc : acc * 0.25)
        } }
        return out
    }

    @Test("an ONNX model compiles, loads and computes its definition")
    func tiny() throws {
        let graph = try ONNXImporter.load(try ONNXBuilder.bytes(ONNXBuilder.tiny()))
        let (model, report) = try NeuronCompiler.compile(graph, options: CompileOptions(inputShapes: ["x": [3, 8]]))
        #expect(model.inputs.map(\.shape) == [[3, 8]] && model.outputs.map(\.shape) == [[3, 4]])
        #expect(report.instructions == 2 && report.fused == 1 && report.weightBytes >= 144 && report.nodes["MatMul"] == 1)
        let x = sample(24, seed: 5)
        let got = try run(model, ["x": x])["y"]
        #expect(got?.map(\.bitPattern) == reference(x, rows: 3).map(\.bitPattern))
    }

    /// Found by fuzzing the importer (scripts/fuzz onnx): a graph named
    /// "tes\u{1}\0..." compiled to a NEFF whose header (NUL-terminated)
    /// and metadata named it differently, so it did not read back; a name
    /// of 63 characters over 63 bytes was refused.
    @Test("any graph name gives a NEFF that reads back", arguments: [
        "tes\u{1}\0\0conv_with_padding", String(repeating: "模型", count: 40), "\0\n", "résumé-v2",
    ])
    func graphNames(name: String) throws {
        var proto = ONNXBuilder.tiny()
        proto.graph.name = name
        let graph = try ONNXImporter.load(try ONNXBuilder.bytes(proto))
        let (model, _) = try NeuronCompiler.compile(graph, options: CompileOptions(inputShapes: ["x": [3, 8]]))
        let again = try NEFFModel(bytes: try model.serialized())
        #expect(again.name == model.name && !again.name.isEmpty && again.name.utf8.count < NEFFModel.nameLength)
        #expect(!again.name.utf8.contains(0) && !again.name.contains("\n"))
        #expect(name.hasPrefix("résumé") ? again.name == name : true)
        #expect(name.hasPrefix("模型") ? again.name.count == 21 : true)
    }

    /// Found by fuzzing the importer: Softmax of a scalar took axis 0 of
    /// rank 0 as valid and the compiler trapped (index out of range); an
    /// axis of a rank-0 tensor is refused for every op that takes one.
    @Test("an axis of a scalar is refused with an error, not a trap",
          arguments: ["Softmax", "LogSoftmax", "Concat", "Gather"])
    func scalarAxis(op: String) throws {
        var graph = Onnx_GraphProto()
        graph.name = "scalar"
        graph.input = [ONNXBuilder.value("x", .float, [])]
        graph.output = [ONNXBuilder.value("y", .float, [])]
        var node = ONNXBuilder.node(op, ["x"], ["y"])
        node.attribute = [ONNXBuilder.attribute("axis", ints: [0])]
        node.attribute[0].type = .int
        node.attribute[0].i = 0
        node.attribute[0].ints = []
        graph.node = [node]
        let imported = try ONNXImporter.load(try ONNXBuilder.bytes(ONNXBuilder.model(graph)))
        #expect(throws: NeuronCompilerError.self) { try NeuronCompiler.compile(imported) }
    }

    /// Found by fuzzing the importer: Dropout's mask of a 1308588797x5
    /// input was made as a constant of 6.5e9 elements (52 GB) at compile
    /// time. Constants the compiler computes are bounded, and so are inputs
    /// (with overflow-safe counts). Also found: MatMul of a scalar trapped.
    @Test("huge shapes are refused with an error, not an allocation or a trap", arguments: [
        ("Dropout", [1_308_588_797, 5] as [Int64]), ("Relu", [1 << 31, 1 << 31, 1 << 31]), ("Relu", [1 << 40, 1 << 30]),
        ("MatMul", []),
    ])
    func hugeShapes(op: String, dims: [Int64]) throws {
        var graph = Onnx_GraphProto()
        graph.name = "huge"
        graph.input = [ONNXBuilder.value("x", .float, dims.map { Int($0) })]
        graph.output = [ONNXBuilder.value("y", .float, dims.map { Int($0) })]
        graph.node = [ONNXBuilder.node(op, op == "MatMul" ? ["x", "x"] : ["x"], op == "Dropout" ? ["y", "mask"] : ["y"])]
        let imported = try ONNXImporter.load(try ONNXBuilder.bytes(ONNXBuilder.model(graph)))
        #expect(throws: NeuronCompilerError.self) { try NeuronCompiler.compile(imported) }
    }

    /// Models a byte-mutating fuzzer writes: attributes and constant
    /// shapes far past anything a tensor can be. Each was a trap (an
    /// overflow, a conversion, an index) or an unbounded allocation in the
    /// compiler before it was bounded; each is now refused with an error.
    static let malformed: [(String, Onnx_GraphProto)] = {
        func int(_ name: String, _ value: Int64) -> Onnx_AttributeProto {
            var attribute = Onnx_AttributeProto()
            attribute.name = name
            attribute.type = .int
            attribute.i = value
            return attribute
        }
        func ints(_ name: String, _ values: [Int64]) -> Onnx_TensorProto {
            var tensor = ONNXBuilder.tensor(name, .int64, [Int64(values.count)])
            tensor.int64Data = values
            return tensor
        }
        func floats(_ name: String, _ values: [Float], _ dims: [Int64]) -> Onnx_TensorProto {
            var tensor = ONNXBuilder.tensor(name, .float, dims)
            tensor.floatData = values
            return tensor
        }
        func graph(_ x: [Int], _ nodes: [Onnx_NodeProto], _ constants: [Onnx_TensorProto] = [],
                   inputs: Bool = true) -> Onnx_GraphProto {
            var graph = Onnx_GraphProto()
            graph.name = "malformed"
            if inputs { graph.input = [ONNXBuilder.value("x", .float, x)] }
            graph.initializer = constants
            graph.node = nodes
            graph.output = [ONNXBuilder.value("y", .float, ["n"])]
            return graph
        }
        var value = ONNXBuilder.tensor("value", .float, [0])
        value.floatData = []
        var valueAttribute = Onnx_AttributeProto()
        valueAttribute.name = "value"
        valueAttribute.type = .tensor
        valueAttribute.t = value
        return [
            ("Cast to 2^31", graph([2, 3], [ONNXBuilder.node("Cast", ["x"], ["y"], [int("to", 1 << 31)])])),
            ("Conv of stride 2^32", graph([1, 1, 4, 4], [ONNXBuilder.node("Conv", ["x", "w"], ["y"],
                                                                          [ONNXBuilder.attribute("strides", ints: [1 << 32, 1])])],
                                          [floats("w", [1], [1, 1, 1, 1])])),
            ("MaxPool of kernel 2^33", graph([1, 1, 1, 1], [ONNXBuilder.node("MaxPool", ["x"], ["y"], [
                ONNXBuilder.attribute("kernel_shape", ints: [1 << 33, 1]),
                ONNXBuilder.attribute("pads", ints: [1 << 32, 0, 1 << 32, 0])])])),
            ("Reshape to 2^32 x 2^32", graph([2, 2], [ONNXBuilder.node("Reshape", ["x", "s"], ["y"])],
                                             [ints("s", [1 << 32, 1 << 32])])),
            ("an input of 2^33", graph([1 << 33], [ONNXBuilder.node("Relu", ["x"], ["y"])])),
            ("Gather of one constant", graph([1], [ONNXBuilder.node("Gather", ["c"], ["y"])], [ints("c", [1, 2, 3])])),
            ("Range to infinity", graph([1], [ONNXBuilder.node("Range", ["a", "b", "d"], ["y"])],
                                        [floats("a", [0], []), floats("b", [.infinity], []), floats("d", [1], [])])),
            ("ConstantOfShape of an empty value", graph([1], [ONNXBuilder.node("ConstantOfShape", ["s"], ["y"], [valueAttribute])],
                                                        [ints("s", [4])])),
            ("Expand to -5", graph([1], [ONNXBuilder.node("Expand", ["x", "s"], ["y"])], [ints("s", [-5])])),
            ("Pad by 2^62", graph([2, 2], [ONNXBuilder.node("Pad", ["x", "p"], ["y"])], [ints("p", [1 << 62, 0, 0, 0])])),
            ("Tile by 2^62", graph([4], [ONNXBuilder.node("Tile", ["x", "r"], ["y"])], [ints("r", [1 << 62])])),
            ("Resize by 1e30", graph([1, 1, 2, 2], [ONNXBuilder.node("Resize", ["x", "", "s"], ["y"])],
                                     [floats("s", [1, 1, 1e30, 1e30], [4])])),
        ]
    }()

    @Test("models with absurd attributes and shapes are refused with an error, never a trap",
          arguments: CompilerTests.malformed.indices)
    func malformedModels(index: Int) throws {
        let (what, graph) = Self.malformed[index]
        let imported = try ONNXImporter.load(try ONNXBuilder.bytes(ONNXBuilder.model(graph)))
        #expect(throws: NeuronCompilerError.self, "\(what)") { try NeuronCompiler.compile(imported) }
    }

    @Test("a Slice step past its axis takes one element")
    func sliceHugeStep() throws {
        var graph = Onnx_GraphProto()
        graph.name = "slice"
        graph.input = [ONNXBuilder.value("x", .float, [2, 8])]
        graph.output = [ONNXBuilder.value("y", .float, [2, 1])]
        var starts = ONNXBuilder.tensor("starts", .int64, [1]), ends = starts, axes = starts, steps = starts
        starts.name = "starts"; starts.int64Data = [1]
        ends.name = "ends"; ends.int64Data = [8]
        axes.name = "axes"; axes.int64Data = [1]
        steps.name = "steps"; steps.int64Data = [Int64.max]
        graph.initializer = [starts, ends, axes, steps]
        graph.node = [ONNXBuilder.node("Slice", ["x", "starts", "ends", "axes", "steps"], ["y"])]
        let imported = try ONNXImporter.load(try ONNXBuilder.bytes(ONNXBuilder.model(graph)))
        let (model, _) = try NeuronCompiler.compile(imported)
        let x = sample(16, seed: 3)
        #expect(try run(model, ["x": x])["y"] == [x[1], x[9]])
    }

    @Test("shape chains fold at compile time; views cost no instructions")
    func folding() throws {
        // y = Reshape(x, Concat(Gather(Shape(x), 0), [-1])) then Transpose then Relu.
        var model = ONNXBuilder.tiny()
        var graph = Onnx_GraphProto()
        graph.name = "fold"
        graph.input = [ONNXBuilder.value("x", .float, [2, 3, 4])]
        graph.output = [ONNXBuilder.value("y", .float, [12, 2])]
        var zero = ONNXBuilder.tensor("zero", .int64, [])
        zero.int64Data = [0]
        var minusOne = ONNXBuilder.tensor("minus_one", .int64, [1])
        minusOne.int64Data = [-1]
        var axes = ONNXBuilder.tensor("axes", .int64, [1])
        axes.int64Data = [0]
        graph.initializer = [zero, minusOne, axes]
        graph.node = [
            ONNXBuilder.node("Shape", ["x"], ["s"]),
            ONNXBuilder.node("Gather", ["s", "zero"], ["n"]),
            ONNXBuilder.node("Unsqueeze", ["n", "axes"], ["n1"]),
            ONNXBuilder.node("Concat", ["n1", "minus_one"], ["shape"], [{ var a = Onnx_AttributeProto(); a.name = "axis"; a.type = .int; a.i = 0; return a }()]),
            ONNXBuilder.node("Reshape", ["x", "shape"], ["r"]),
            ONNXBuilder.node("Transpose", ["r"], ["t"]),
            ONNXBuilder.node("Relu", ["t"], ["y"]),
        ]
        model.graph = graph
        let (neff, report) = try NeuronCompiler.compile(try ONNXImporter.load(try ONNXBuilder.bytes(model)))
        #expect(report.folded == 4)
        #expect(report.instructions == 1)      // the relu reads the transposed view in place
        let x = sample(24, seed: 9)
        let got = try run(neff, ["x": x])["y"] ?? []
        var want: [Float] = []
        for j in 0..<12 { for i in 0..<2 { want.append(max(0, x[i * 12 + j])) } }
        #expect(got == want)
    }

    @Test("open shapes, bad shapes and unsupported ops are refused with what to do")
    func refused() throws {
        let graph = try ONNXImporter.load(try ONNXBuilder.bytes(ONNXBuilder.tiny()))
        expectCompileError(.shape, mentioning: ["input x", "--input-shape x=Nx8"]) { () throws(NeuronCompilerError) in
            try NeuronCompiler.compile(graph)
        }
        expectCompileError(.shape, mentioning: ["fixes it at 8"]) { () throws(NeuronCompilerError) in
            try NeuronCompiler.compile(graph, options: CompileOptions(inputShapes: ["x": [2, 9]]))
        }
        expectCompileError(.shape, mentioning: ["not an input", "x"]) { () throws(NeuronCompilerError) in
            try NeuronCompiler.compile(graph, options: CompileOptions(inputShapes: ["x": [2, 8], "z": [1]]))
        }
        var model = ONNXBuilder.tiny()
        model.graph.node[2].opType = "Unique"
        let einsum = try ONNXImporter.load(try ONNXBuilder.bytes(model))
        expectCompileError(.unsupported, mentioning: ["Unique \"act\"", "does not compile Unique", "MatMul"]) { () throws(NeuronCompilerError) in
            try NeuronCompiler.compile(einsum, options: CompileOptions(inputShapes: ["x": [2, 8]]))
        }
        model = ONNXBuilder.tiny()
        model.graph.initializer[0].dims = [9, 4]
        model.graph.initializer[0].floatData = [Float](repeating: 1, count: 36)
        let mismatched = try ONNXImporter.load(try ONNXBuilder.bytes(model))
        expectCompileError(.shape, mentioning: ["MatMul \"mm+add\"", "inner dimensions 8 and 9"]) { () throws(NeuronCompilerError) in
            try NeuronCompiler.compile(mismatched, options: CompileOptions(inputShapes: ["x": [2, 8]]))
        }
    }

    @Test("the memory planner never overlaps live buffers, and reuses dead ones")
    func planner() {
        var state: UInt32 = 7
        func next(_ bound: Int) -> Int {
            state = state &* 1_664_525 &+ 1_013_904_223
            return Int(state >> 8) % bound
        }
        for _ in 0..<200 {
            let buffers = (0..<(1 + next(30))).map { id -> (id: Int, bytes: Int, first: Int, last: Int) in
                let first = next(50)
                return (id, 1 + next(5000), first, first + next(20))
            }
            let plan = MemoryPlanner.plan(buffers, alignment: 64)
            for a in buffers { for b in buffers where a.id < b.id && a.first <= b.last && b.first <= a.last {
                let (x, y) = (plan.offsets[a.id] ?? -1, plan.offsets[b.id] ?? -1)
                #expect(x + a.bytes <= y || y + b.bytes <= x, "buffers \(a) and \(b) overlap")
            } }
            #expect(plan.offsets.values.allSatisfy { $0 % 64 == 0 })
            #expect(plan.peak <= buffers.reduce(0) { $0 + ($1.bytes + 63) / 64 * 64 })
        }
        // A chain of ten equal buffers, each alive for two steps, fits in two.
        let chain = (0..<10).map { (id: $0, bytes: 4096, first: $0, last: $0 + 1) }
        #expect(MemoryPlanner.plan(chain, alignment: 64).peak == 8192)
    }

    @Test("neuron-cc compile writes the NEFF and a summary; errors say what to do")
    func command() throws {
        let dir = "/tmp/neuron-cc-compile-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try ONNXBuilder.bytes(ONNXBuilder.tiny()).write(to: URL(fileURLWithPath: "\(dir)/tiny.onnx"))
        let done = try runTool("neuron-cc", ["compile", "\(dir)/tiny.onnx", "--input-shape", "x=4x8", "--json"])
        #expect(done.status == 0, "\(done.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(done.stdout.utf8)) as? [String: Any]
        #expect(report?["instructions"] as? Int == 2 && report?["neff"] as? String == "\(dir)/tiny.neff")
        #expect(try NEFFModel(contentsOf: "\(dir)/tiny.neff").inputs.first?.shape == [4, 8])
        let open = try runTool("neuron-cc", ["compile", "\(dir)/tiny.onnx"])
        #expect(open.status != 0 && open.stderr.contains("--input-shape x=Nx8"), "\(open.stderr)")
        let bad = try runTool("neuron-cc", ["compile", "\(dir)/tiny.onnx", "--input-shape", "x=4xeight"])
        #expect(bad.status != 0 && bad.stderr.contains("--input-shape"), "\(bad.stderr)")
        let ops = try runTool("neuron-cc", ["ops"])
        #expect(ops.stdout.split(separator: "\n").contains("Gemm"))
        let checked = try runTool("neuron-cc", ["compile", "\(dir)/tiny.onnx", "--input-shape", "x=4x8", "--check", "-o", "\(dir)/no.neff"])
        #expect(checked.status == 0 && checked.stdout.contains("compiles"), "\(checked.stdout)\(checked.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/no.neff"))
        var einsum = ONNXBuilder.tiny()
        einsum.graph.node[2].opType = "Unique"
        try ONNXBuilder.bytes(einsum).write(to: URL(fileURLWithPath: "\(dir)/einsum.onnx"))
        let refused = try runTool("neuron-cc", ["compile", "\(dir)/einsum.onnx", "--check", "--json"])
        let verdict = try JSONSerialization.jsonObject(with: Data(refused.stdout.utf8)) as? [String: Any]
        #expect(refused.status != 0 && verdict?["compiles"] as? Bool == false, "\(refused.stdout)\(refused.stderr)")
        #expect((verdict?["problems"] as? [String])?.first?.contains("Unique (1 node: \"act\")") == true, "\(refused.stdout)")
    }

    /// Shapes that the compiler runs as the packed direct convolution
    /// (too few channels), Winograd's F(2x2, 3x3) (an output under 12x12,
    /// or under 64 output channels from more than 32 input channels) and
    /// F(4x4, 3x3); the weight bytes tell the layout: 9, 16 or 36 floats
    /// per kernel, in blocks of six output channels.
    static let convShapes: [(c: Int, h: Int, w: Int, m: Int, floatsPerKernel: Int)] = [
        (2, 5, 5, 3, 9), (16, 6, 7, 17, 16), (16, 13, 12, 17, 36), (40, 13, 12, 20, 16),
    ]

    @Test("conv + batchnorm + relu fuse into one instruction and compute the three, direct and by Winograd",
          arguments: convShapes.indices)
    func convFusion(_ shape: Int) throws {
        let (c, h, w, m, floatsPerKernel) = Self.convShapes[shape]
        let n = 1
        let x = sample(n * c * h * w, seed: 21), weight = sample(m * c * 9, seed: 22)
        let gamma = sample(m, seed: 23), beta = sample(m, seed: 24), mean = sample(m, seed: 25)
        let variance = sample(m, seed: 26).map { abs($0) + 0.5 }
        var graph = Onnx_GraphProto()
        graph.name = "convbn"
        graph.input = [ONNXBuilder.value("x", .float, [n, c, h, w])]
        graph.output = [ONNXBuilder.value("y", .float, [n, m, h, w])]
        func constant(_ name: String, _ values: [Float], _ dims: [Int64]) -> Onnx_TensorProto {
            var t = ONNXBuilder.tensor(name, .float, dims)
            t.floatData = values
            return t
        }
        graph.initializer = [constant("w", weight, [Int64(m), Int64(c), 3, 3]), constant("g", gamma, [Int64(m)]),
                             constant("b", beta, [Int64(m)]), constant("mu", mean, [Int64(m)]),
                             constant("var", variance, [Int64(m)])]
        graph.node = [ONNXBuilder.node("Conv", ["x", "w"], ["c"], name: "conv", [ONNXBuilder.attribute("pads", ints: [1, 1, 1, 1])]),
                      ONNXBuilder.node("BatchNormalization", ["c", "g", "b", "mu", "var"], ["bn"], name: "bn"),
                      ONNXBuilder.node("Relu", ["bn"], ["y"], name: "relu")]
        let (model, report) = try NeuronCompiler.compile(try ONNXImporter.load(try ONNXBuilder.bytes(ONNXBuilder.model(graph))))
        #expect(report.fused == 2 && report.instructions == 1)
        let program = try #require(model.programs.first)
        let sizes = program.slots.map { name in UInt64(name.flatMap { model.tensor(named: $0)?.byteCount } ?? 0) }
        let shown = try NeuronEngine.instructions(program.image, slotSizes: sizes).map(\.name)
        #expect(shown == [[9: "CONV2D.packed", 16: "CONV2D.winograd2x2", 36: "CONV2D.winograd4x4"][floatsPerKernel]],
                "\(shown)")
        let layoutBytes = floatsPerKernel * ((m + 5) / 6) * 6 * c * 4
        #expect(report.weightBytes >= layoutBytes && report.weightBytes < layoutBytes + 256,
                "\(report.weightBytes) weight bytes for \(layoutBytes) of weights laid out")
        let got = try run(model, ["x": x])["y"] ?? []
        var worst = 0.0
        for o in 0..<m { for i in 0..<h { for j in 0..<w {
            var acc = 0.0
            for ci in 0..<c { for ki in 0..<3 { for kj in 0..<3 {
                let (y0, x0) = (i + ki - 1, j + kj - 1)
                guard (0..<h).contains(y0), (0..<w).contains(x0) else { continue }
                acc += Double(x[(ci * h + y0) * w + x0]) * Double(weight[((o * c + ci) * 3 + ki) * 3 + kj])
            } } }
            let normalized = (acc - Double(mean[o])) / (Double(variance[o]) + 1e-5).squareRoot() * Double(gamma[o]) + Double(beta[o])
            let want = max(0, normalized)
            worst = max(worst, abs(Double(got[(o * h + i) * w + j]) - want) / max(1, abs(want)))
        } } }
        // F(4x4, 3x3) rounds more: its transforms scale by up to 8 around the
        // products; sums of more than 16 input channels' taps round more too.
        let tolerance = (floatsPerKernel == 36 ? 1e-4 : 1e-5) * max(1, Double(c) / 16)
        #expect(got.count == m * h * w && worst < tolerance, "relative error \(worst)")
    }

    /// Where a residual comes from: computed and read only by the Add,
    /// also a graph output (read after the Add), or broadcast per channel.
    enum ResidualCase: String, Sendable, CaseIterable { case dying, kept, broadcast }

    @Test("conv + add of a residual + relu run as one convolution accumulating in place; a kept or broadcast residual still adds right",
          arguments: ResidualCase.allCases)
    func residualFusion(_ kind: ResidualCase) throws {
        let (c, h, w, m) = (3, 6, 7, 8)
        let x = sample(c * h * w, seed: 31), weight = sample(m * c * 9, seed: 32), bias = sample(m, seed: 33)
        let residualShape = kind == .broadcast ? [1, m, 1, 1] : [1, m, h, w]
        let r = sample(residualShape.reduce(1, *), seed: 34)
        var graph = Onnx_GraphProto()
        graph.name = "residual"
        graph.input = [ONNXBuilder.value("x", .float, [1, c, h, w]), ONNXBuilder.value("r", .float, residualShape)]
        graph.output = [ONNXBuilder.value("y", .float, [1, m, h, w])]
        if kind == .kept { graph.output.append(ONNXBuilder.value("s", .float, residualShape)) }
        var wt = ONNXBuilder.tensor("w", .float, [Int64(m), Int64(c), 3, 3])
        wt.floatData = weight
        var bt = ONNXBuilder.tensor("b", .float, [Int64(m)])
        bt.floatData = bias
        graph.initializer = [wt, bt]
        // The residual s = sigmoid(r) is computed after the convolution, in node order.
        graph.node = [ONNXBuilder.node("Conv", ["x", "w", "b"], ["a"], name: "conv", [ONNXBuilder.attribute("pads", ints: [1, 1, 1, 1])]),
                      ONNXBuilder.node("Sigmoid", ["r"], ["s"], name: "shortcut"),
                      ONNXBuilder.node("Add", ["a", "s"], ["sum"], name: "add"),
                      ONNXBuilder.node("Relu", ["sum"], ["y"], name: "relu")]
        let (model, report) = try NeuronCompiler.compile(try ONNXImporter.load(try ONNXBuilder.bytes(ONNXBuilder.model(graph))))
        // sigmoid, then: the accumulating conv (its copy elided); the conv,
        // the copy of the kept residual; or conv, add and relu.
        #expect(report.fused == 2)
        #expect(report.instructions == [ResidualCase.dying: 2, .kept: 3, .broadcast: 4][kind])
        let outputs = try run(model, ["x": x, "r": r])
        let got = outputs["y"] ?? []
        let shortcut = r.map { 1 / (1 + exp(-Double($0))) }
        var worst = 0.0
        for o in 0..<m { for i in 0..<h { for j in 0..<w {
            var acc = Double(bias[o]) + shortcut[kind == .broadcast ? o : (o * h + i) * w + j]
            for ci in 0..<c { for ki in 0..<3 { for kj in 0..<3 {
                let (y0, x0) = (i + ki - 1, j + kj - 1)
                guard (0..<h).contains(y0), (0..<w).contains(x0) else { continue }
                acc += Double(x[(ci * h + y0) * w + x0]) * Double(weight[((o * c + ci) * 3 + ki) * 3 + kj])
            } } }
            worst = max(worst, abs(Double(got[(o * h + i) * w + j]) - max(0, acc)) / max(1, abs(acc)))
        } } }
        #expect(got.count == m * h * w && worst < 1e-5, "relative error \(worst)")
        if kind == .kept {
            let kept = outputs["s"] ?? []
            #expect(kept.count == shortcut.count && zip(kept, shortcut).allSatisfy { abs(Double($0) - $1) < 1e-6 },
                    "the residual, read after the convolution, is intact")
        }
    }

    /// Where a Pad before a Conv may become the Conv's own padding: zeros
    /// of the spatial axes (folded), or the channels, a value, a Pad read
    /// elsewhere too (kept).
    enum PadCase: String, Sendable, CaseIterable { case spatial, depthwise, channels, value, shared }

    @Test("a Pad of zeros before a Conv becomes the Conv's padding, with the same bits; other Pads stay",
          arguments: PadCase.allCases)
    func padFolding(_ kind: PadCase) throws {
        let (c, h, w) = (4, 9, 8)
        let group = kind == .depthwise ? c : 1, m = kind == .depthwise ? c : 5
        let channelPad = kind == .channels ? 1 : 0
        let x = sample(c * h * w, seed: 41), weight = sample(m * (c + 2 * channelPad) / group * 9, seed: 42)
        // pads [n, c, h, w] begin then end: asymmetric, as "same" of stride 2 writes it.
        let pads: [Int64] = [0, Int64(channelPad), 0, 1, 0, Int64(channelPad), 1, 2]
        let (ph, pw) = (h + 1, w + 3)
        let (ho, wo) = ((ph - 3) / 2 + 1, (pw - 3) / 2 + 1)
        func graph(fold: Bool) -> Onnx_GraphProto {
            var graph = Onnx_GraphProto()
            graph.name = "padconv"
            graph.input = [ONNXBuilder.value("x", .float, [1, c, h, w])]
            graph.output = [ONNXBuilder.value("y", .float, [1, m, ho, wo])]
            if !fold || kind == .shared { graph.output.append(ONNXBuilder.value("p", .float, [1, c + 2 * channelPad, ph, pw])) }
            var wt = ONNXBuilder.tensor("w", .float, [Int64(m), Int64((c + 2 * channelPad) / group), 3, 3])
            wt.floatData = weight
            var pt = ONNXBuilder.tensor("pads", .int64, [8])
            pt.int64Data = pads
            var vt = ONNXBuilder.tensor("value", .float, [])
            vt.floatData = [kind == .value ? 0.5 : 0]
            graph.initializer = [wt, pt, vt]
            graph.node = [ONNXBuilder.node("Pad", ["x", "pads", "value"], ["p"], name: "pad"),
                          ONNXBuilder.node("Conv", ["p", "w"], ["y"], name: "conv",
                                           [ONNXBuilder.attribute("strides", ints: [2, 2]),
                                            ONNXBuilder.attribute("group", int: Int64(group))])]
            return graph
        }
        let (model, report) = try NeuronCompiler.compile(try ONNXImporter.load(try ONNXBuilder.bytes(ONNXBuilder.model(graph(fold: true)))))
        // The reference: the same graph with the padded tensor also an output, so no fold.
        let (unfolded, plain) = try NeuronCompiler.compile(try ONNXImporter.load(try ONNXBuilder.bytes(ONNXBuilder.model(graph(fold: false)))))
        let folds = kind == .spatial || kind == .depthwise
        #expect(report.fused == (folds ? 1 : 0) && plain.fused == 0)
        if folds { #expect(report.instructions == 1 && plain.instructions > 1, "\(report.instructions) instructions, \(plain.instructions) unfolded") }
        let got = try run(model, ["x": x])["y"] ?? [], want = try run(unfolded, ["x": x])["y"] ?? []
        #expect(got.count == m * ho * wo && got.map(\.bitPattern) == want.map(\.bitPattern))
    }

    /// The scale after a convolution: per channel as [C, 1, 1] or
    /// [1, C, 1, 1], one value, or a shape that does not fold (over the
    /// last axis).
    enum ScaleCase: String, Sendable, CaseIterable { case channels, leading, scalar, lastAxis }

    @Test("Conv then Mul by a constant per output channel folds into the weights and bias, within rounding",
          arguments: ScaleCase.allCases)
    func scaleFolding(_ kind: ScaleCase) throws {
        let (c, h, w) = (6, 7, 9)
        let x = sample(c * h * w, seed: 61), weight = sample(c * 9, seed: 62), bias = sample(c, seed: 63)
        let scaleDims: [Int64] = [ScaleCase.channels: [6, 1, 1], .leading: [1, 6, 1, 1], .scalar: [], .lastAxis: [9]][kind] ?? []
        let scale = sample(Int(scaleDims.reduce(1, *)), seed: 64).map { $0 + 2.5 }
        func graph(fold: Bool) -> Onnx_GraphProto {
            var graph = Onnx_GraphProto()
            graph.name = "convscale"
            graph.input = [ONNXBuilder.value("x", .float, [1, c, h, w])]
            graph.output = [ONNXBuilder.value("y", .float, [1, c, h, w])]
            if !fold { graph.output.append(ONNXBuilder.value("a", .float, [1, c, h, w])) }
            var wt = ONNXBuilder.tensor("w", .float, [Int64(c), 1, 3, 3])
            wt.floatData = weight
            var bt = ONNXBuilder.tensor("b", .float, [Int64(c)])
            bt.floatData = bias
            var st = ONNXBuilder.tensor("s", .float, scaleDims)
            st.floatData = scale
            graph.initializer = [wt, bt, st]
            graph.node = [ONNXBuilder.node("Conv", ["x", "w", "b"], ["a"], name: "conv",
                                           [ONNXBuilder.attribute("pads", ints: [1, 1, 1, 1]),
                                            ONNXBuilder.attribute("group", int: Int64(c))]),
                          ONNXBuilder.node("Mul", ["a", "s"], ["y"], name: "scale")]
            return graph
        }
        let (model, report) = try NeuronCompiler.compile(try ONNXImporter.load(try ONNXBuilder.bytes(ONNXBuilder.model(graph(fold: true)))))
        let (unfolded, plain) = try NeuronCompiler.compile(try ONNXImporter.load(try ONNXBuilder.bytes(ONNXBuilder.model(graph(fold: false)))))
        #expect(report.fused == (kind == .lastAxis ? 0 : 1) && plain.fused == 0)
        if kind != .lastAxis { #expect(report.instructions == 1 && plain.instructions == 2) }
        let got = try run(model, ["x": x])["y"] ?? [], want = try run(unfolded, ["x": x])["y"] ?? []
        #expect(got.count == c * h * w && want.count == got.count)
        let worst = zip(got, want).map { abs(Double($0) - Double($1)) / max(1, abs(Double($1))) }.max() ?? 1
        #expect(worst < 1e-5, "relative difference \(worst)")
    }

    /// x · sigmoid(x) as tf2onnx writes Keras' swish (either operand
    /// order); with the sigmoid read elsewhere too it stays two ops.
    @Test("Sigmoid then Mul by its input runs as one SILU, with the same bits", arguments: [false, true])
    func swishFusion(_ sigmoidFirst: Bool) throws {
        let x = sample(210, seed: 75).map { $0 * 12 } + [.nan, .infinity, -.infinity, -0.0, 100, -100]
        let n = x.count
        func graph(fuse: Bool) -> Onnx_GraphProto {
            var graph = Onnx_GraphProto()
            graph.name = "swish"
            graph.input = [ONNXBuilder.value("x", .float, [1, n])]
            graph.output = [ONNXBuilder.value("y", .float, [1, n])]
            if !fuse { graph.output.append(ONNXBuilder.value("s", .float, [1, n])) }
            graph.node = [ONNXBuilder.node("Sigmoid", ["x"], ["s"], name: "sigmoid"),
                          ONNXBuilder.node("Mul", sigmoidFirst ? ["s", "x"] : ["x", "s"], ["y"], name: "mul")]
            return graph
        }
        let (model, report) = try NeuronCompiler.compile(try ONNXImporter.load(try ONNXBuilder.bytes(ONNXBuilder.model(graph(fuse: true)))))
        let (unfused, plain) = try NeuronCompiler.compile(try ONNXImporter.load(try ONNXBuilder.bytes(ONNXBuilder.model(graph(fuse: false)))))
        #expect(report.fused == 1 && plain.fused == 0 && report.instructions == 1 && plain.instructions == 2,
                "\(report.instructions) and \(plain.instructions) instructions")
        let got = try run(model, ["x": x])["y"] ?? [], want = try run(unfused, ["x": x])["y"] ?? []
        #expect(got.count == x.count && got.map { $0.isNaN ? 0 : $0.bitPattern } == want.map { $0.isNaN ? 0 : $0.bitPattern })
    }

    /// Convolutions over few output positions: batch, channels, input
    /// extent, kernel, strides, dilations, pads (top, left, bottom,
    /// right), output channels; each runs as a MATMUL (fewer than 16
    /// positions, or Winograd's 16).
    struct FewPositionsCase: Sendable, CustomStringConvertible {
        var n = 1
        var c: Int
        var h: Int
        var w: Int
        var kernel: (Int, Int)
        var strides = (1, 1)
        var dilations = (1, 1)
        var pads = (0, 0, 0, 0)
        var m: Int
        var bias = true
        var relu = true
        /// The first weight (output 0's top-left tap), when not as sampled.
        var corner: Float? = nil
        var description: String {
            "n\(n) c\(c) \(h)x\(w) k\(kernel) s\(strides) d\(dilations) p\(pads) m\(m)" + (corner.map { " corner \($0)" } ?? "")
        }
        var out: (Int, Int) {
            ((h + pads.0 + pads.2 - (kernel.0 - 1) * dilations.0 - 1) / strides.0 + 1,
             (w + pads.1 + pads.3 - (kernel.1 - 1) * dilations.1 - 1) / strides.1 + 1)
        }
    }

    static let fewPositions: [FewPositionsCase] = [
        // ResNet's last 3x3 on a 2x2 map; 40 output channels leave a tail of 8 lanes.
        FewPositionsCase(c: 20, h: 2, w: 2, kernel: (3, 3), pads: (1, 1, 1, 1), m: 40),
        // 1x1 of stride 1 reads the image in place.
        FewPositionsCase(c: 33, h: 3, w: 3, kernel: (1, 1), m: 88, relu: false),
        // 1x1 of stride 2 over a 4x4 map, batch 2.
        FewPositionsCase(n: 2, c: 12, h: 4, w: 4, kernel: (1, 1), strides: (2, 2), m: 19),
        // InceptionV3's 1x7 and 7x1 on a 3x3 map.
        FewPositionsCase(c: 9, h: 3, w: 3, kernel: (1, 7), pads: (0, 3, 0, 3), m: 24),
        FewPositionsCase(c: 9, h: 3, w: 3, kernel: (7, 1), pads: (3, 0, 3, 0), m: 17, bias: false),
        // Uneven strides, dilations and pads; windows that stop short of the input's end.
        FewPositionsCase(n: 2, c: 5, h: 7, w: 6, kernel: (3, 2), strides: (3, 2), dilations: (1, 2),
                         pads: (1, 0, 0, 2), m: 35),
        // Winograd would take this 4x4 output: 16 positions.
        FewPositionsCase(c: 16, h: 4, w: 4, kernel: (3, 3), pads: (1, 1, 1, 1), m: 17),
        // Weights in panels (ISA 1.11): two whole panels; four and a tail of two columns.
        FewPositionsCase(c: 24, h: 3, w: 3, kernel: (1, 7), pads: (0, 3, 0, 3), m: 64),
        FewPositionsCase(c: 10, h: 3, w: 3, kernel: (3, 3), pads: (1, 1, 1, 1), m: 130),
    ]

    @Test("a convolution over few positions runs as a window COPY and a MATMUL with the packed CONV2D's chain, bit for bit",
          arguments: fewPositions)
    func convOverFewPositions(_ t: FewPositionsCase) throws {
        let (shown, _, mismatches) = try convChain(t)
        #expect(shown.contains { $0.hasPrefix("MATMUL") } && !shown.contains { $0.hasPrefix("CONV2D") }, "\(shown)")
        // Weights of 32 output channels or more (the last panel's padding
        // a quarter at most) are laid out in panels (ISA 1.11).
        let panels = t.m >= 32 && (t.m + 31) / 32 * 32 * 4 <= t.m * 5
        #expect(shown.contains("MATMUL.panels") == panels, "\(shown)")
        #expect(mismatches == 0, "\(mismatches) outputs differ from the chain")
    }

    /// A convolution whose kernel reaches past the input into the padding
    /// alone on some taps, and the taps (rows, columns) every window leaves
    /// in the padding.
    static let paddingTaps: [(FewPositionsCase, kept: (Int, Int))] = [
        // InceptionV3's last 3x3 over a 1x1 map: the centre tap alone.
        (FewPositionsCase(c: 20, h: 1, w: 1, kernel: (3, 3), pads: (1, 1, 1, 1), m: 40), (1, 1)),
        // Its 1x7 over a 3x3 map: five columns of seven.
        (FewPositionsCase(c: 24, h: 3, w: 3, kernel: (1, 7), pads: (0, 3, 0, 3), m: 64), (1, 5)),
        // A CONV2D (40 positions): rows 1 to 3 of five over a 2-row map.
        (FewPositionsCase(c: 7, h: 2, w: 20, kernel: (5, 3), pads: (2, 1, 2, 1), m: 13), (3, 3)),
        // Stride 2 over one row; dilation 2 over a 1x1 map (no padding left).
        (FewPositionsCase(c: 6, h: 1, w: 9, kernel: (3, 3), strides: (2, 2), pads: (1, 1, 1, 1), m: 11), (1, 3)),
        (FewPositionsCase(c: 5, h: 1, w: 1, kernel: (3, 3), dilations: (2, 2), pads: (2, 2, 2, 2), m: 9, relu: false), (1, 1)),
        // The last tap alone, and the rows below it never read (the input cropped).
        (FewPositionsCase(c: 4, h: 4, w: 3, kernel: (5, 1), strides: (4, 1), pads: (4, 0, 0, 0), m: 8), (1, 1)),
        // Every tap reads the input somewhere: nothing dropped.
        (FewPositionsCase(c: 20, h: 2, w: 2, kernel: (3, 3), pads: (1, 1, 1, 1), m: 40), (3, 3)),
        // An infinite weight on a tap in the padding: its product with the zero is NaN, so it stays.
        (FewPositionsCase(c: 20, h: 1, w: 1, kernel: (3, 3), pads: (1, 1, 1, 1), m: 40, corner: .infinity), (3, 3)),
    ]

    @Test("kernel taps that only ever read padding are dropped from the weights, with the packed CONV2D's chain's bits",
          arguments: paddingTaps)
    func convPaddingTaps(_ t: FewPositionsCase, kept: (Int, Int)) throws {
        let (shown, list, mismatches) = try convChain(t)
        #expect(mismatches == 0, "\(mismatches) outputs differ from the chain")
        // The weights the product reads hold the kept taps: a CONV2D's
        // packed [Co/6, Ci, Kh, Kw, 6], or a MATMUL's Ci·Kh·Kw rows.
        if let conv = list.first(where: { $0.name.hasPrefix("CONV2D") }) {
            let weights = try #require(conv.operands.dropFirst(2).first)
            #expect(weights.dims.count == 5 && (weights.dims[2], weights.dims[3]) == (UInt32(kept.0), UInt32(kept.1)),
                    "\(conv.name) reads \(weights)")
        } else {
            let product = try #require(list.first { $0.name.hasPrefix("MATMUL") }, "\(shown)")
            let weights = try #require(product.operands.dropFirst(2).first)
            let rows = UInt32(t.c * kept.0 * kept.1)
            #expect(weights.dims.dropLast().last == rows, "\(product.name) reads \(weights), not \(rows) rows")
        }
    }

    /// Compile `t` as one Conv (and Relu), run it, and count the outputs
    /// whose bits differ from the packed CONV2D's chain.
    private func convChain(_ t: FewPositionsCase) throws
        -> (shown: [String], instructions: [NeuronEngine.InstructionSummary], mismatches: Int) {
        let (ho, wo) = t.out
        let x = sample(t.n * t.c * t.h * t.w, seed: 91).map { $0 * 3 }
        var weight = sample(t.m * t.c * t.kernel.0 * t.kernel.1, seed: 92)
        let bias = sample(t.m, seed: 93)
        if let corner = t.corner { weight[0] = corner }
        var graph = Onnx_GraphProto()
        graph.name = "fewpositions"
        graph.input = [ONNXBuilder.value("x", .float, [t.n, t.c, t.h, t.w])]
        graph.output = [ONNXBuilder.value("y", .float, [t.n, t.m, ho, wo])]
        var wt = ONNXBuilder.tensor("w", .float, [Int64(t.m), Int64(t.c), Int64(t.kernel.0), Int64(t.kernel.1)])
        wt.floatData = weight
        var bt = ONNXBuilder.tensor("b", .float, [Int64(t.m)])
        bt.floatData = bias
        graph.initializer = t.bias ? [wt, bt] : [wt]
        let attributes = [ONNXBuilder.attribute("pads", ints: [t.pads.0, t.pads.1, t.pads.2, t.pads.3].map { Int64($0) }),
                          ONNXBuilder.attribute("strides", ints: [Int64(t.strides.0), Int64(t.strides.1)]),
                          ONNXBuilder.attribute("dilations", ints: [Int64(t.dilations.0), Int64(t.dilations.1)])]
        graph.node = [ONNXBuilder.node("Conv", t.bias ? ["x", "w", "b"] : ["x", "w"], [t.relu ? "a" : "y"],
                                       name: "conv", attributes)]
        if t.relu { graph.node.append(ONNXBuilder.node("Relu", ["a"], ["y"], name: "relu")) }
        let (model, _) = try NeuronCompiler.compile(try ONNXImporter.load(try ONNXBuilder.bytes(ONNXBuilder.model(graph))))
        let program = try #require(model.programs.first)
        let sizes = program.slots.map { name in UInt64(name.flatMap { model.tensor(named: $0)?.byteCount } ?? 0) }
        let list = try NeuronEngine.instructions(program.image, slotSizes: sizes)
        let shown = list.map(\.name)
        let got = try run(model, ["x": x])["y"] ?? []
        #expect(got.count == t.n * t.m * ho * wo)
        // The packed CONV2D's chain: input channels, kernel rows, kernel
        // columns, a tap in the padding multiplying zero; then the bias, relu.
        var mismatches = 0
        for b in 0..<t.n { for o in 0..<t.m { for i in 0..<ho { for j in 0..<wo {
            var acc: Float = 0
            for ci in 0..<t.c { for ki in 0..<t.kernel.0 { for kj in 0..<t.kernel.1 {
                let y0 = i * t.strides.0 + ki * t.dilations.0 - t.pads.0
                let x0 = j * t.strides.1 + kj * t.dilations.1 - t.pads.1
                let value = (0..<t.h).contains(y0) && (0..<t.w).contains(x0) ? x[((b * t.c + ci) * t.h + y0) * t.w + x0] : 0
                acc = acc.addingProduct(value, weight[((o * t.c + ci) * t.kernel.0 + ki) * t.kernel.1 + kj])
            } } }
            if t.bias { acc += bias[o] }
            if t.relu { acc = acc > 0 || acc.isNaN ? acc : 0 }   // relu keeps NaN
            let index = ((b * t.m + o) * ho + i) * wo + j
            if index < got.count, got[index].bitPattern != acc.bitPattern, !(got[index].isNaN && acc.isNaN) {
                mismatches += 1
            }
        } } } }
        return (shown, list, mismatches)
    }

    /// A Clip after a Conv: its bounds, the image's size (3x3: a few
    /// positions, the convolution as a MATMUL), a NaN in the input.
    struct ClipCase: Sendable, CustomTestStringConvertible {
        var low: Float?
        var high: Float
        var h: Int
        var w: Int
        var nan = false
        var testDescription: String { "Clip(\(low.map { "\($0)" } ?? "-"), \(high)) over \(h)x\(w)\(nan ? " with a NaN" : "")" }
    }

    @Test("Conv then Clip with a constant upper bound runs as one CONV2D (relu and clamp), with the bits of MAX and MIN",
          arguments: [ClipCase(low: 0, high: 6, h: 6, w: 7), ClipCase(low: nil, high: 1.5, h: 6, w: 7, nan: true),
                      ClipCase(low: 0, high: -0.5, h: 5, w: 5), ClipCase(low: 0, high: 6, h: 3, w: 3, nan: true)])
    func clipFusion(_ clip: ClipCase) throws {
        let (c, h, w, m) = (3, clip.h, clip.w, 5)
        var x = sample(c * h * w, seed: 71).map { $0 * 4 }
        if clip.nan { x[h * w] = .nan }   // channel 1's corner: the windows around it
        let weight = sample(m * c * 9, seed: 72)
        func graph(fold: Bool) -> Onnx_GraphProto {
            var graph = Onnx_GraphProto()
            graph.name = "clip"
            graph.input = [ONNXBuilder.value("x", .float, [1, c, h, w])]
            graph.output = [ONNXBuilder.value("y", .float, [1, m, h, w])]
            if !fold { graph.output.append(ONNXBuilder.value("a", .float, [1, m, h, w])) }
            var wt = ONNXBuilder.tensor("w", .float, [Int64(m), Int64(c), 3, 3])
            wt.floatData = weight
            var lo = ONNXBuilder.tensor("lo", .float, [])
            lo.floatData = [clip.low ?? 0]
            var hi = ONNXBuilder.tensor("hi", .float, [])
            hi.floatData = [clip.high]
            graph.initializer = clip.low == nil ? [wt, hi] : [wt, lo, hi]
            graph.node = [ONNXBuilder.node("Conv", ["x", "w"], ["a"], name: "conv", [ONNXBuilder.attribute("pads", ints: [1, 1, 1, 1])]),
                          ONNXBuilder.node("Clip", ["a", clip.low == nil ? "" : "lo", "hi"], ["y"], name: "clip")]
            return graph
        }
        let (model, report) = try NeuronCompiler.compile(try ONNXImporter.load(try ONNXBuilder.bytes(ONNXBuilder.model(graph(fold: true)))))
        let (unfolded, plain) = try NeuronCompiler.compile(try ONNXImporter.load(try ONNXBuilder.bytes(ONNXBuilder.model(graph(fold: false)))))
        #expect(report.fused == (clip.low == nil ? 1 : 2) && plain.fused == 0, "\(report.fused) fusions")
        if h * w >= 16 {
            #expect(report.instructions == 1 && plain.instructions == (clip.low == nil ? 2 : 3),
                    "\(report.instructions) and \(plain.instructions) instructions")
        }
        let got = try run(model, ["x": x])["y"] ?? [], want = try run(unfolded, ["x": x])["y"] ?? []
        #expect(got.count == m * h * w && got.map(\.bitPattern) == want.map(\.bitPattern), "\(got) for \(want)")
        #expect(got.contains(clip.high) && (clip.high < 0 || got.contains { $0 < clip.high }),
                "the bound reached, and values below it")
        #expect(got.contains { $0.isNaN } == clip.nan, "a NaN kept")
    }

    @Test("A convolution of a channels-last image (Keras' input through its Transpose) reads it laid out as planes by one COPY, with the same bits")
    func channelsLastInput() throws {
        let (c, h, w, m) = (3, 9, 11, 8)
        let nhwc = sample(h * w * c, seed: 73), weight = sample(m * c * 9, seed: 74)
        func graph(transposed: Bool) -> Onnx_GraphProto {
            var graph = Onnx_GraphProto()
            graph.name = "stem"
            graph.input = [ONNXBuilder.value("x", .float, transposed ? [1, h, w, c] : [1, c, h, w])]
            graph.output = [ONNXBuilder.value("y", .float, [1, m, (h + 1) / 2, (w + 1) / 2])]
            var wt = ONNXBuilder.tensor("w", .float, [Int64(m), Int64(c), 3, 3])
            wt.floatData = weight
            graph.initializer = [wt]
            let conv = ONNXBuilder.node("Conv", [transposed ? "t" : "x", "w"], ["y"], name: "conv",
                                        [ONNXBuilder.attribute("pads", ints: [1, 1, 1, 1]),
                                         ONNXBuilder.attribute("strides", ints: [2, 2])])
            graph.node = transposed ? [ONNXBuilder.node("Transpose", ["x"], ["t"], name: "t",
                                                        [ONNXBuilder.attribute("perm", ints: [0, 3, 1, 2])]), conv]
                                    : [conv]
            return graph
        }
        let (model, _) = try NeuronCompiler.compile(try ONNXImporter.load(try ONNXBuilder.bytes(ONNXBuilder.model(graph(transposed: true)))))
        let (planes, _) = try NeuronCompiler.compile(try ONNXImporter.load(try ONNXBuilder.bytes(ONNXBuilder.model(graph(transposed: false)))))
        let program = try #require(model.programs.first)
        let sizes = program.slots.map { name in UInt64(name.flatMap { model.tensor(named: $0)?.byteCount } ?? 0) }
        let shown = try NeuronEngine.instructions(program.image, slotSizes: sizes).map(\.name)
        #expect(shown.first == "COPY" && shown.dropFirst().first?.hasPrefix("CONV2D") == true, "\(shown)")
        var nchw = [Float](repeating: 0, count: nhwc.count)
        for y in 0..<h { for x in 0..<w { for ch in 0..<c { nchw[(ch * h + y) * w + x] = nhwc[(y * w + x) * c + ch] } } }
        let got = try run(model, ["x": nhwc])["y"] ?? [], want = try run(planes, ["x": nchw])["y"] ?? []
        #expect(!got.isEmpty && got.map(\.bitPattern) == want.map(\.bitPattern))
    }

    @Test("Pow of a constant 2 or 3 runs as products, within two roundings of the power", arguments: [2.0, 3.0, 2.5])
    func smallPowers(_ exponent: Double) throws {
        let x = sample(64, seed: 51).map { $0 * 3 }
        var graph = Onnx_GraphProto()
        graph.name = "pow"
        graph.input = [ONNXBuilder.value("x", .float, [64])]
        graph.output = [ONNXBuilder.value("y", .float, [64])]
        var e = ONNXBuilder.tensor("e", .float, [])
        e.floatData = [Float(exponent)]
        graph.initializer = [e]
        graph.node = [ONNXBuilder.node("Pow", ["x", "e"], ["y"], name: "pow")]
        let (model, _) = try NeuronCompiler.compile(try ONNXImporter.load(try ONNXBuilder.bytes(ONNXBuilder.model(graph))))
        let program = try #require(model.programs.first)
        let sizes = program.slots.map { name in UInt64(name.flatMap { model.tensor(named: $0)?.byteCount } ?? 0) }
        let shown = try NeuronEngine.instructions(program.image, slotSizes: sizes).map(\.name)
        #expect(shown == [2.0: ["BINARY.mul"], 3.0: ["BINARY.mul", "BINARY.mul"], 2.5: ["BINARY.pow"]][exponent], "\(shown)")
        let got = try run(model, ["x": x])["y"] ?? []
        for (value, result) in zip(x, got) where value > 0 || exponent != 2.5 {
            let want = Foundation.pow(Double(value), exponent)
            #expect(abs(Double(result) - want) <= 3e-7 * abs(want) + 1e-30, "\(value)^\(exponent) = \(result)")
        }
    }

    @Test("matmul + add of a constant row fuse into the matmul's bias, same bits")
    func biasFusion() throws {
        var model = ONNXBuilder.tiny()
        model.graph.node[2] = ONNXBuilder.node("Identity", ["h2"], ["y"])
        let graph = try ONNXImporter.load(try ONNXBuilder.bytes(model))
        let (neff, report) = try NeuronCompiler.compile(graph, options: CompileOptions(inputShapes: ["x": [2, 8]]))
        #expect(report.fused == 1 && report.instructions == 1)
        let x = sample(16, seed: 31)
        let got = try run(neff, ["x": x])["y"] ?? []
        let w = (0..<32).map { Float($0) / 8 }, b: [Float] = [1, -2, 3, -4]
        var want: [Float] = []
        for i in 0..<2 { for j in 0..<4 {
            var acc: Float = 0
            for k in 0..<8 { acc = acc.addingProduct(x[i * 8 + k], w[k * 4 + j]) }
            want.append(acc + b[j])
        } }
        #expect(got.map(\.bitPattern) == want.map(\.bitPattern))
    }

    /// x [3, 256] · w [256, 136] + b: a product large enough to be cast (or
    /// x [rows, k] · w [k, n] + b); 136 columns pad the last panel by more
    /// than a quarter, so B stays in rows.
    static func castableMatmul(rows: Int = 3, k: Int = 256, n: Int = 136) -> Onnx_ModelProto {
        var graph = Onnx_GraphProto()
        graph.name = "castable"
        var w = ONNXBuilder.tensor("w", .float, [Int64(k), Int64(n)])
        w.floatData = sample(k * n, seed: 43)
        var b = ONNXBuilder.tensor("b", .float, [Int64(n)])
        b.floatData = sample(n, seed: 44)
        graph.initializer = [w, b]
        graph.input = [ONNXBuilder.value("x", .float, [rows, k])]
        graph.output = [ONNXBuilder.value("y", .float, [rows, n])]
        graph.node = [ONNXBuilder.node("MatMul", ["x", "w"], ["h"], name: "mm"),
                      ONNXBuilder.node("Add", ["h", "b"], ["y"], name: "add")]
        return ONNXBuilder.model(graph)
    }

    @Test("--auto-cast matmult: bf16 pairs, fp32 accumulation, half the weight bytes, close results; tiny products stay fp32")
    func autoCast() throws {
        let graph = try ONNXImporter.load(try ONNXBuilder.bytes(Self.castableMatmul()))
        let (fp32, plain) = try NeuronCompiler.compile(graph)
        let (bf16, cast) = try NeuronCompiler.compile(graph, options: CompileOptions(autoCast: .matmult))
        #expect(plain.autoCastOps == 0 && plain.accuracyNote == nil)
        #expect(cast.autoCastOps == 1 && cast.accuracyNote?.contains("bf16") == true)
        // ISA 1.9: the MATMUL rounds the input as it reads it (no cast
        // instruction); the weight is stored as bf16.
        #expect(cast.instructions == plain.instructions)
        #expect(cast.weightBytes < plain.weightBytes)
        let x = sample(120, seed: 41)
        let exact = try run(fp32, ["x": x])["y"] ?? [], approximate = try run(bf16, ["x": x])["y"] ?? []
        let scale = exact.map { abs($0) }.max() ?? 1
        let worst = zip(exact, approximate).map { abs($0 - $1) / scale }.max() ?? 1
        #expect(exact.count == 3 * 136 && worst > 0 && worst < 2e-2, "relative error \(worst)")
        // A B of 64 by 64 stays in the cache: fp32 (the same bits).
        let small = try ONNXImporter.load(try ONNXBuilder.bytes(Self.castableMatmul(rows: 16, k: 64, n: 64)))
        let (smallPlain, _) = try NeuronCompiler.compile(small)
        let (smallCast, smallReport) = try NeuronCompiler.compile(small, options: CompileOptions(autoCast: .matmult))
        let sx = sample(16 * 64, seed: 45)
        #expect(smallReport.autoCastOps == 0)
        #expect(try run(smallCast, ["x": sx])["y"]?.map(\.bitPattern) == (try run(smallPlain, ["x": sx])["y"])?.map(\.bitPattern))
        // A product of 8 taps by 4 columns gains nothing from bf16: fp32, the same bits.
        let tiny = try ONNXImporter.load(try ONNXBuilder.bytes(ONNXBuilder.tiny()))
        let (tinyPlain, _) = try NeuronCompiler.compile(tiny, options: CompileOptions(inputShapes: ["x": [3, 8]]))
        let (tinyCast, tinyReport) = try NeuronCompiler.compile(tiny, options: CompileOptions(inputShapes: ["x": [3, 8]], autoCast: .matmult))
        #expect(tinyReport.autoCastOps == 0)
        let tx = sample(24, seed: 42)
        #expect(try run(tinyCast, ["x": tx])["y"]?.map(\.bitPattern) == (try run(tinyPlain, ["x": tx])["y"])?.map(\.bitPattern))
        let bad = try runTool("neuron-cc", ["compile", "/nonexistent.onnx", "--auto-cast", "fp8"])
        #expect(bad.status != 0 && bad.stderr.contains("none, matmult or all"), "\(bad.stderr)")
    }

    /// ISA 1.14: constant weights of an even K and 32 columns or more (the
    /// last panel's padding a quarter at most) go in panels of bf16 pairs,
    /// which the engine reads in place; an odd K stays in rows. Either
    /// way the results are the pairs' (close to fp32), for a few rows and
    /// for more than a register block.
    @Test("--auto-cast matmult lays constant weights out as bf16 pairs in panels (even K), with the pairs' results")
    func autoCastPairPanels() throws {
        for (rows, k, n, panels) in [(3, 256, 128, true), (20, 192, 200, true), (5, 257, 128, false), (1, 1024, 40, false)] {
            let graph = try ONNXImporter.load(try ONNXBuilder.bytes(Self.castableMatmul(rows: rows, k: k, n: n)))
            let (fp32, _) = try NeuronCompiler.compile(graph)
            let (bf16, report) = try NeuronCompiler.compile(graph, options: CompileOptions(autoCast: .matmult))
            let program = try #require(bf16.programs.first)
            let sizes = program.slots.map { name in UInt64(name.flatMap { bf16.tensor(named: $0)?.byteCount } ?? 0) }
            let shown = try NeuronEngine.instructions(program.image, slotSizes: sizes).map(\.name)
            #expect(report.autoCastOps == 1 && shown.contains("MATMUL.panels") == panels, "\(rows)x\(k)x\(n): \(shown)")
            // bf16 weights: two bytes each (panels pad the last one's columns).
            #expect(report.weightBytes < k * n * 4, "\(report.weightBytes) bytes of weights")
            let x = sample(rows * k, seed: 41)
            let exact = try run(fp32, ["x": x])["y"] ?? [], approximate = try run(bf16, ["x": x])["y"] ?? []
            let scale = exact.map { abs($0) }.max() ?? 1
            let worst = zip(exact, approximate).map { abs($0 - $1) / scale }.max() ?? 1
            #expect(exact.count == rows * n && approximate.count == rows * n && worst > 0 && worst < 2e-2,
                    "\(rows)x\(k)x\(n): relative error \(worst)")
        }
    }

    /// x [1, 128, 8, 8] -> 1x1 conv to 48 + relu -> 3x3 conv to 128 -> 1x1
    /// conv + x (a residual) -> relu: a bottleneck block.
    static func bottleneck() -> Onnx_ModelProto {
        var graph = Onnx_GraphProto()
        graph.name = "bottleneck"
        graph.input = [ONNXBuilder.value("x", .float, [1, 128, 8, 8])]
        graph.output = [ONNXBuilder.value("y", .float, [1, 128, 8, 8])]
        for (name, dims, seed) in [("w1", [48, 128, 1, 1], 51), ("w2", [128, 48, 3, 3], 52), ("w3", [128, 128, 1, 1], 53)] {
            var w = ONNXBuilder.tensor(name, .float, dims.map(Int64.init))
            w.floatData = sample(dims.reduce(1, *), seed: UInt32(seed)).map { $0 / 8 }
            graph.initializer.append(w)
        }
        for (name, count, seed) in [("b1", 48, 54), ("b3", 128, 55)] {
            var b = ONNXBuilder.tensor(name, .float, [Int64(count)])
            b.floatData = sample(count, seed: UInt32(seed))
            graph.initializer.append(b)
        }
        graph.node = [ONNXBuilder.node("Conv", ["x", "w1", "b1"], ["c1"], name: "reduce"),
                      ONNXBuilder.node("Relu", ["c1"], ["r1"], name: "relu1"),
                      ONNXBuilder.node("Conv", ["r1", "w2"], ["c2"], name: "conv3x3", [ONNXBuilder.attribute("pads", ints: [1, 1, 1, 1])]),
                      ONNXBuilder.node("Conv", ["c2", "w3", "b3"], ["c3"], name: "expand"),
                      ONNXBuilder.node("Add", ["c3", "x"], ["s"], name: "residual"),
                      ONNXBuilder.node("Relu", ["s"], ["y"], name: "relu3")]
        return ONNXBuilder.model(graph)
    }

    @Test("--auto-cast all: 1x1 convolutions in bf16 pairs (bf16 weights, close results, the residual accumulated); matmult leaves them fp32")
    func autoCastConvolutions() throws {
        let graph = try ONNXImporter.load(try ONNXBuilder.bytes(Self.bottleneck()))
        let (fp32, plain) = try NeuronCompiler.compile(graph)
        let (matmult, matmultReport) = try NeuronCompiler.compile(graph, options: CompileOptions(autoCast: .matmult))
        let (all, report) = try NeuronCompiler.compile(graph, options: CompileOptions(autoCast: .all))
        // The two 1x1 convolutions; the 3x3 runs as Winograd in fp32.
        #expect(report.autoCastOps == 2 && report.autoCastConvolutions == 2 && matmultReport.autoCastOps == 0,
                "\(report.autoCastOps) cast")
        // The residual is accumulated into the second 1x1's output: no ADD or relu instruction.
        #expect(report.instructions == plain.instructions, "\(report.instructions) vs \(plain.instructions) instructions")
        // Their weights as given in bf16, where fp32 packs them in blocks of 6 channels.
        let packed = (48 * 128 + 132 * 128) * 4, halves = (48 * 128 + 128 * 128) * 2   // packed: Co in blocks of 6
        #expect(report.weightBytes == plain.weightBytes - packed + halves, "\(report.weightBytes) vs \(plain.weightBytes) weight bytes")
        let program = try #require(all.programs.first)
        let sizes = program.slots.map { name in UInt64(name.flatMap { all.tensor(named: $0)?.byteCount } ?? 0) }
        let shown = try NeuronEngine.instructions(program.image, slotSizes: sizes).map(\.name)
        #expect(shown.filter { $0 == "CONV2D.bf16pairs" }.count == 2 && shown.contains("CONV2D.winograd2x2"), "\(shown)")
        let x = sample(128 * 64, seed: 56)
        let exact = try run(fp32, ["x": x])["y"] ?? [], approximate = try run(all, ["x": x])["y"] ?? []
        let scale = exact.map { abs($0) }.max() ?? 1
        let worst = zip(exact, approximate).map { abs($0 - $1) / scale }.max() ?? 1
        #expect(exact.count == 128 * 64 && worst > 0 && worst < 2e-2, "relative error \(worst)")
        #expect(try run(matmult, ["x": x])["y"]?.map(\.bitPattern) == exact.map(\.bitPattern))
    }

    @Test("--auto-cast matmult leaves the products the compiler makes for other ops in fp32: Resize's interpolation, a convolution over a few positions")
    func autoCastSkipsMadeUpProducts() throws {
        var graph = Onnx_GraphProto()
        graph.name = "resizeconv"
        graph.input = [ONNXBuilder.value("x", .float, [1, 8, 2, 2])]
        graph.output = [ONNXBuilder.value("y", .float, [1, 12, 4, 4])]
        var w = ONNXBuilder.tensor("w", .float, [12, 8, 3, 3])
        w.floatData = sample(12 * 8 * 9, seed: 95)
        var scales = ONNXBuilder.tensor("s", .float, [4])
        scales.floatData = [1, 1, 2, 2]
        graph.initializer = [w, scales]
        var linear = Onnx_AttributeProto()
        linear.name = "mode"
        linear.type = .string
        linear.s = Data("linear".utf8)
        graph.node = [ONNXBuilder.node("Conv", ["x", "w"], ["c"], name: "conv", [ONNXBuilder.attribute("pads", ints: [1, 1, 1, 1])]),
                      ONNXBuilder.node("Resize", ["c", "", "s"], ["y"], name: "resize", [linear])]
        let loaded = try ONNXImporter.load(try ONNXBuilder.bytes(ONNXBuilder.model(graph)))
        let (fp32, plain) = try NeuronCompiler.compile(loaded)
        let (cast, report) = try NeuronCompiler.compile(loaded, options: CompileOptions(autoCast: .matmult))
        #expect(report.autoCastOps == 0 && report.instructions == plain.instructions, "\(report.autoCastOps) cast")
        let x = sample(32, seed: 96)
        let want = try run(fp32, ["x": x])["y"] ?? [], got = try run(cast, ["x": x])["y"] ?? []
        #expect(got.count == 12 * 16 && got.map(\.bitPattern) == want.map(\.bitPattern))
    }

    /// An MLP of `layers` layers of width 32: x [4, 32] through matmul, bias and relu each.
    static func deepMLP(layers: Int) -> Onnx_ModelProto {
        var graph = Onnx_GraphProto()
        graph.name = "deep"
        graph.input = [ONNXBuilder.value("x", .float, [4, 32])]
        graph.output = [ONNXBuilder.value("y", .float, [4, 32])]
        var previous = "x"
        for layer in 0..<layers {
            var w = ONNXBuilder.tensor("w\(layer)", .float, [32, 32])
            w.floatData = sample(32 * 32, seed: UInt32(100 + layer)).map { $0 / 8 }
            var b = ONNXBuilder.tensor("b\(layer)", .float, [32])
            b.floatData = sample(32, seed: UInt32(200 + layer))
            graph.initializer += [w, b]
            let out = layer == layers - 1 ? "y" : "h\(layer)"
            graph.node += [ONNXBuilder.node("MatMul", [previous, "w\(layer)"], ["m\(layer)"]),
                           ONNXBuilder.node("Add", ["m\(layer)", "b\(layer)"], ["a\(layer)"]),
                           ONNXBuilder.node("Relu", ["a\(layer)"], [out])]
            previous = out
        }
        return ONNXBuilder.model(graph)
    }

    @Test("--neuroncore-pipeline-cores: contiguous stages, one per NeuronCore, each after the one before; the same bits")
    func pipeline() throws {
        let graph = try ONNXImporter.load(try ONNXBuilder.bytes(Self.deepMLP(layers: 6)))
        let (single, one) = try NeuronCompiler.compile(graph)
        #expect(one.coreCount == 1 && one.stageShares.isEmpty && single.programs.count == 1)
        let x = sample(4 * 32, seed: 7)
        let want = try run(single, ["x": x])["y"] ?? []
        #expect(want.count == 128)
        for cores in [2, 3] {
            let (model, report) = try NeuronCompiler.compile(graph, options: CompileOptions(pipelineCores: cores))
            #expect(model.coreCount == cores && report.coreCount == cores)
            #expect(model.programs.map(\.core) == Array(0..<cores))
            #expect(model.programs.map(\.after) == [nil] + (0..<(cores - 1)).map { Optional($0) })
            // Every instruction in exactly one stage, in order; the stages about equal.
            #expect(model.programs.map { $0.slots } == Array(repeating: single.programs[0].slots, count: cores))
            #expect(abs(report.stageShares.reduce(0, +) - 1) < 1e-9)
            #expect(report.stageShares.allSatisfy { $0 > 0.8 / Double(cores) && $0 < 1.2 / Double(cores) },
                    "\(report.stageShares)")
            let got = try run(model, ["x": x])["y"] ?? []
            #expect(got.map(\.bitPattern) == want.map(\.bitPattern), "\(cores) NeuronCores")
        }
        // More cores than instructions: a stage each.
        let (short, shortReport) = try NeuronCompiler.compile(
            try ONNXImporter.load(try ONNXBuilder.bytes(ONNXBuilder.tiny())),
            options: CompileOptions(inputShapes: ["x": [2, 8]], pipelineCores: 8))
        #expect(short.coreCount == shortReport.instructions && short.programs.count == shortReport.instructions)
        expectCompileError(.unsupported, mentioning: ["1 to 8", "9"]) { () throws(NeuronCompilerError) in
            try NeuronCompiler.compile(graph, options: CompileOptions(pipelineCores: 9))
        }
        let bad = try runTool("neuron-cc", ["compile", "/nonexistent.onnx", "--neuroncore-pipeline-cores", "0"])
        #expect(bad.status != 0 && bad.stderr.contains("1 to 8"), "\(bad.stderr)")
    }

    @Test("the pipeline partition minimises the largest stage")
    func partition() {
        let runs = PipelinePartition.partition([5, 1, 1, 1, 1, 1, 5], parts: 3).map(\.range)
        #expect(runs == [0..<1, 1..<6, 6..<7])
        let even = PipelinePartition.partition(Array(repeating: 1, count: 10), parts: 4)
        #expect(even.map(\.work).max() == 3 && even.count == 4 && even.first?.range.lowerBound == 0 && even.last?.range.upperBound == 10)
        // Fewer items than parts: one each; zero work still splits.
        #expect(PipelinePartition.partition([1, 1], parts: 2).map(\.range) == [0..<1, 1..<2])
        #expect(PipelinePartition.partition([0, 0, 0], parts: 3).count == 3)
    }

    /// A graph x [3, 16] -> y from `nodes`, with scalar and vector constants.
    static func patternGraph(_ nodes: [Onnx_NodeProto], outputs: [String] = ["y"]) throws -> Graph {
        var graph = Onnx_GraphProto()
        graph.name = "pattern"
        graph.input = [ONNXBuilder.value("x", .float, [3, 16])]
        graph.output = outputs.map { ONNXBuilder.value($0, .float, [3, 16]) }
        func scalar(_ name: String, _ value: Float) -> Onnx_TensorProto {
            var t = ONNXBuilder.tensor(name, .float, [])
            t.floatData = [value]
            return t
        }
        var gamma = ONNXBuilder.tensor("gamma", .float, [16])
        gamma.floatData = sample(16, seed: 91)
        var beta = ONNXBuilder.tensor("beta", .float, [16])
        beta.floatData = sample(16, seed: 92)
        graph.initializer = [scalar("two", 2), scalar("eps", 1e-5), scalar("one", 1), scalar("half", 0.5),
                             scalar("sqrt2", Float(2.0.squareRoot())), scalar("rsqrt2", Float(0.5.squareRoot())), gamma, beta]
        graph.node = nodes
        return try ONNXImporter.load(try ONNXBuilder.bytes(ONNXBuilder.model(graph)))
    }

    static func layerNormNodes(square: String = "Pow", beta: Bool = true) -> [Onnx_NodeProto] {
        let axes = [ONNXBuilder.attribute("axes", ints: [-1])]
        return [ONNXBuilder.node("ReduceMean", ["x"], ["mean"], axes),
                ONNXBuilder.node("Sub", ["x", "mean"], ["d"]),
                square == "Pow" ? ONNXBuilder.node("Pow", ["d", "two"], ["sq"]) : ONNXBuilder.node("Mul", ["d", "d"], ["sq"]),
                ONNXBuilder.node("ReduceMean", ["sq"], ["var"], axes),
                ONNXBuilder.node("Add", ["var", "eps"], ["ve"]),
                ONNXBuilder.node("Sqrt", ["ve"], ["std"]),
                ONNXBuilder.node("Div", ["d", "std"], ["n"]),
                ONNXBuilder.node("Mul", ["n", "gamma"], [beta ? "g" : "y"])]
            + (beta ? [ONNXBuilder.node("Add", ["g", "beta"], ["y"])] : [])
    }

    @Test("exporters' layer norm subgraphs become one LAYERNORM; results within float rounding", arguments: [
        ("Pow", true), ("Mul", true), ("Pow", false)])
    func layerNormPattern(_ square: String, _ beta: Bool) throws {
        let graph = try Self.patternGraph(Self.layerNormNodes(square: square, beta: beta))
        let (model, report) = try NeuronCompiler.compile(graph)
        #expect(report.fused == 1 && report.instructions == 1, "\(report)")
        let list = try NeuronEngine.instructions(model.programs[0].image, slotSizes: model.programs[0].slots.map {
            UInt64($0.flatMap { model.tensor(named: $0)?.byteCount } ?? 0) })
        #expect(list.map(\.name) == ["LAYERNORM"])
        let x = sample(48, seed: 93), gamma = sample(16, seed: 91), bias = sample(16, seed: 92)
        let got = try run(model, ["x": x])["y"] ?? []
        for row in 0..<3 {
            let values = x[(row * 16)..<((row + 1) * 16)].map(Double.init)
            let mean = values.reduce(0, +) / 16
            let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 16
            for i in 0..<16 {
                let want = (values[i] - mean) / (variance + 1e-5).squareRoot() * Double(gamma[i]) + (beta ? Double(bias[i]) : 0)
                #expect(abs(Double(got[row * 16 + i]) - want) < 1e-5 * max(1, abs(want)), "row \(row) column \(i)")
            }
        }
    }

    @Test("GELU written with Erf becomes one instruction, in each grouping of its products")
    func geluPattern() throws {
        let head = [ONNXBuilder.node("Div", ["x", "sqrt2"], ["s"]), ONNXBuilder.node("Erf", ["s"], ["e"]),
                    ONNXBuilder.node("Add", ["e", "one"], ["a"])]
        let groupings: [[Onnx_NodeProto]] = [
            [ONNXBuilder.node("Mul", ["x", "a"], ["t"]), ONNXBuilder.node("Mul", ["t", "half"], ["y"])],
            [ONNXBuilder.node("Mul", ["a", "half"], ["t"]), ONNXBuilder.node("Mul", ["x", "t"], ["y"])],
            [ONNXBuilder.node("Mul", ["x", "half"], ["h"]), ONNXBuilder.node("Mul", ["h", "a"], ["y"])],
        ]
        let x = sample(48, seed: 94)
        for tail in groupings {
            let (model, report) = try NeuronCompiler.compile(try Self.patternGraph(head + tail))
            #expect(report.fused == 1 && report.instructions == 1, "\(tail.map(\.input))")
            let got = try run(model, ["x": x])["y"] ?? []
            for (value, out) in zip(x, got) {
                let want = Double(value) * 0.5 * (1 + erf(Double(value) / 2.0.squareRoot()))
                #expect(abs(Double(out) - want) < 1e-6 * max(1, abs(want)))
            }
        }
        // With 1/sqrt(2) as a multiplication too.
        var scaled = head
        scaled[0] = ONNXBuilder.node("Mul", ["x", "rsqrt2"], ["s"])
        #expect(try NeuronCompiler.compile(try Self.patternGraph(scaled + groupings[0])).1.fused == 1)
    }

    @Test("a pattern whose intermediate is read elsewhere is left op by op")
    func patternsKeepSharedValues() throws {
        // The mean is also a graph output: no fusion, the same values as written.
        let graph = try Self.patternGraph(Self.layerNormNodes() + [ONNXBuilder.node("Add", ["d", "x"], ["y2"])],
                                          outputs: ["y", "y2"])
        let (_, report) = try NeuronCompiler.compile(graph)
        #expect(report.fused == 0 && report.instructions > 1)
        let head = [ONNXBuilder.node("Div", ["x", "sqrt2"], ["s"]), ONNXBuilder.node("Erf", ["s"], ["e"]),
                    ONNXBuilder.node("Add", ["e", "one"], ["a"]), ONNXBuilder.node("Mul", ["x", "a"], ["t"]),
                    ONNXBuilder.node("Mul", ["t", "half"], ["y"]), ONNXBuilder.node("Neg", ["e"], ["y2"])]
        #expect(try NeuronCompiler.compile(try Self.patternGraph(head, outputs: ["y", "y2"])).1.fused == 0)
        // Not 0.5: not GELU.
        var wrong = head.dropLast()
        wrong[4] = ONNXBuilder.node("Mul", ["t", "one"], ["y"])
        #expect(try NeuronCompiler.compile(try Self.patternGraph(Array(wrong))).1.fused == 0)
    }

    @Test("compile progress: every stage in order, counts within their totals; neuron-cc --progress prints them")
    func progress() throws {
        let seen = Locked<[CompileProgress]>([])
        let graph = try ONNXImporter.load(try ONNXBuilder.bytes(Self.deepMLP(layers: 40)))
        _ = try NeuronCompiler.compile(graph, options: CompileOptions(progress: { step in seen.withLock { $0.append(step) } }))
        let steps = seen.withLock { $0 }
        let order = steps.map { CompileProgress.Stage.allCases.firstIndex(of: $0.stage) ?? -1 }
        #expect(order == order.sorted() && Set(steps.map(\.stage)) == Set(CompileProgress.Stage.allCases))
        #expect(steps.allSatisfy { $0.done >= 0 && $0.done < $0.total })
        #expect(steps.filter { $0.stage == .lowering }.count >= 3)

        let dir = "/tmp/neuron-cc-progress-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try ONNXBuilder.bytes(Self.deepMLP(layers: 3)).write(to: URL(fileURLWithPath: "\(dir)/deep.onnx"))
        let shown = try runTool("neuron-cc", ["compile", "\(dir)/deep.onnx", "--progress"])
        #expect(shown.status == 0 && shown.stderr.contains("reading") && shown.stderr.contains("lowering")
                && shown.stderr.contains("writing"), "\(shown.stderr)")
        let quiet = try runTool("neuron-cc", ["compile", "\(dir)/deep.onnx", "--no-progress"])
        #expect(quiet.status == 0 && quiet.stderr.isEmpty, "\(quiet.stderr)")
    }

    /// x [3, 4] -> y through one node with int64 constant `pads`/`repeats`.
    static func padTileGraph(_ op: String, _ list: [Int64], _ attributes: [Onnx_AttributeProto] = [],
                             out: [Int]) throws -> Graph {
        var graph = Onnx_GraphProto()
        graph.name = op
        graph.input = [ONNXBuilder.value("x", .float, [3, 4])]
        graph.output = [ONNXBuilder.value("y", .float, out)]
        var constant = ONNXBuilder.tensor("list", .int64, [Int64(list.count)])
        constant.int64Data = list
        graph.initializer = [constant]
        graph.node = [ONNXBuilder.node(op, ["x", "list"], ["y"], attributes)]
        return try ONNXImporter.load(try ONNXBuilder.bytes(ONNXBuilder.model(graph)))
    }

    @Test("Pad (constant with cropping, edge) and Tile compute their definitions")
    func padAndTile() throws {
        let x = (0..<12).map(Float.init)
        func at(_ r: Int, _ c: Int) -> Float { x[r * 4 + c] }
        // pads: rows +1 before, -1 after; columns -1 before, +2 after -> [3, 5]
        let (cropped, _) = try NeuronCompiler.compile(try Self.padTileGraph("Pad", [1, -1, -1, 2], out: [3, 5]))
        let got = try run(cropped, ["x": x])["y"] ?? []
        var want: [Float] = []
        for r in -1..<2 { for c in 1..<6 { want.append(r >= 0 && c < 4 ? at(r, c) : 0) } }
        #expect(got == want)
        var mode = Onnx_AttributeProto()
        mode.name = "mode"
        mode.type = .string
        mode.s = Data("edge".utf8)
        let (edge, _) = try NeuronCompiler.compile(try Self.padTileGraph("Pad", [2, 1, 1, 0], [mode], out: [6, 5]))
        let edged = try run(edge, ["x": x])["y"] ?? []
        want = []
        for r in -2..<4 { for c in -1..<4 { want.append(at(min(max(r, 0), 2), min(max(c, 0), 3))) } }
        #expect(edged == want)
        let (tiled, report) = try NeuronCompiler.compile(try Self.padTileGraph("Tile", [2, 3], out: [6, 12]))
        #expect(report.instructions == 1)
        let tiles = try run(tiled, ["x": x])["y"] ?? []
        want = []
        for r in 0..<6 { for c in 0..<12 { want.append(at(r % 3, c % 4)) } }
        #expect(tiles == want)
        // reflect mirrors about the edge element; wrap repeats from the other end.
        mode.s = Data("reflect".utf8)
        let (reflect, _) = try NeuronCompiler.compile(try Self.padTileGraph("Pad", [2, 1, 1, 3], [mode], out: [6, 8]))
        let reflected = try run(reflect, ["x": x])["y"] ?? []
        func mirror(_ i: Int, _ n: Int) -> Int { i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i }
        want = []
        for r in -2..<4 { for c in -1..<7 { want.append(at(mirror(r, 3), mirror(c, 4))) } }
        #expect(reflected == want)
        mode.s = Data("wrap".utf8)
        let (wrap, _) = try NeuronCompiler.compile(try Self.padTileGraph("Pad", [2, 1, 1, 3], [mode], out: [6, 8]))
        let wrapped = try run(wrap, ["x": x])["y"] ?? []
        want = []
        for r in -2..<4 { for c in -1..<7 { want.append(at((r + 3) % 3, (c + 4) % 4)) } }
        #expect(wrapped == want)
        mode.s = Data("reflect".utf8)
        let tooLong = try Self.padTileGraph("Pad", [3, 0, 0, 0], [mode], out: [6, 4])
        expectCompileError(.invalidModel, mentioning: ["reflect pads of 3", "shorter than the axis"]) { () throws(NeuronCompilerError) in
            try NeuronCompiler.compile(tooLong)
        }
    }

    @Test("Resize nearest: whole-number upsampling repeats, downsampling strides; other mappings interpolate")
    func resizeNearest() throws {
        func graph(_ scales: [Float], out: [Int], transform: String = "asymmetric") throws -> Graph {
            var g = Onnx_GraphProto()
            g.name = "resize"
            g.input = [ONNXBuilder.value("x", .float, [1, 1, 2, 4])]
            g.output = [ONNXBuilder.value("y", .float, out)]
            var s = ONNXBuilder.tensor("scales", .float, [4])
            s.floatData = scales
            g.initializer = [s]
            var mode = Onnx_AttributeProto()
            mode.name = "coordinate_transformation_mode"
            mode.type = .string
            mode.s = Data(transform.utf8)
            var rounding = Onnx_AttributeProto()   // as torch.onnx exports nn.Upsample(mode="nearest")
            rounding.name = "nearest_mode"
            rounding.type = .string
            rounding.s = Data("floor".utf8)
            g.node = [ONNXBuilder.node("Resize", ["x", "", "scales"], ["y"], [mode, rounding])]
            return try ONNXImporter.load(try ONNXBuilder.bytes(ONNXBuilder.model(g)))
        }
        let x = (0..<8).map(Float.init)
        let (up, report) = try NeuronCompiler.compile(try graph([1, 1, 2, 3], out: [1, 1, 4, 12]))
        #expect(report.instructions == 1)
        let got = try run(up, ["x": x])["y"] ?? []
        var want: [Float] = []
        for row in 0..<4 { for column in 0..<12 { want.append(x[(row / 2) * 4 + column / 3]) } }
        #expect(got == want)
        let (down, _) = try NeuronCompiler.compile(try graph([1, 1, 1, 0.5], out: [1, 1, 2, 2]))
        #expect(try run(down, ["x": x])["y"] == [0, 2, 4, 6])
        // Neither a repeat nor a stride: an interpolation matrix picks the columns.
        let odd = try graph([1, 1, 1, 1.75], out: [1, 1, 2, 7])    // columns 0 0 1 1 2 2 3
        let (oddModel, _) = try NeuronCompiler.compile(odd)
        #expect(try run(oddModel, ["x": x])["y"] == [0, 0, 1, 1, 2, 2, 3, 4, 4, 5, 5, 6, 6, 7])
    }
}
