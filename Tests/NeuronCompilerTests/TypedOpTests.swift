import Foundation
import NeuronISA
import NeuronNEFF
import NeuronRuntime
import Testing
import TestSupport
@testable import NeuronCompiler

/// Models over run-time tensors of every element type (ISA 1.4), compiled
/// and run end to end: the NEFF carries each type, the engine computes it.
@Suite("neuron-cc: run-time tensors of every element type")
struct TypedOpTests {
    static func graph(_ inputs: [(String, ElementType, [Int])], _ outputs: [(String, ElementType)], _ nodes: [Node],
                      constants: [String: ConstantTensor] = [:]) -> Graph {
        Graph(name: "typed", opset: 18, inputs: inputs.map { ValueInfo(name: $0.0, type: $0.1, shape: $0.2.map { .fixed($0) }) },
              outputs: outputs.map { ValueInfo(name: $0.0, type: $0.1, shape: nil) }, constants: constants, nodes: nodes)
    }

    @Test("int8 arithmetic wraps, comparisons give bool, Where selects, ArgMax indexes; each output keeps its type")
    func integers() throws {
        let graph = Self.graph(
            [("a", .int8, [2, 3]), ("b", .int8, [2, 3])],
            [("sum", .int8), ("less", .bool), ("picked", .int8), ("index", .int64), ("rem", .int8)],
            [Node(name: "add", op: "Add", inputs: ["a", "b"], outputs: ["sum"]),
             Node(name: "lt", op: "Less", inputs: ["a", "b"], outputs: ["less"]),
             Node(name: "w", op: "Where", inputs: ["less", "a", "b"], outputs: ["picked"]),
             Node(name: "am", op: "ArgMax", inputs: ["a"], outputs: ["index"], attributes: ["axis": .int(1), "keepdims": .int(0)]),
             Node(name: "m", op: "Mod", inputs: ["a", "b"], outputs: ["rem"])])
        let (model, _) = try NeuronCompiler.compile(graph)
        #expect(model.outputs.map(\.dtype) == [.int8, .bool, .int8, .int64, .int8])
        let a: [Int8] = [100, -7, 3, 127, 0, -128], b: [Int8] = [100, 2, -3, 1, 5, -1]
        let out = try runBytes(model, ["a": a.map { UInt8(bitPattern: $0) }, "b": b.map { UInt8(bitPattern: $0) }])
        #expect(out["sum"]?.map { Int8(bitPattern: $0) } == zip(a, b).map { $0 &+ $1 })
        #expect(out["less"] == zip(a, b).map { $0 < $1 ? 1 : 0 })
        #expect(out["picked"]?.map { Int8(bitPattern: $0) } == zip(a, b).map { Swift.min($0, $1) })
        #expect(out["index"].map { NeuronDType.int64.values($0) } == [0, 0])
        // Python's %: the divisor's sign.
        #expect(out["rem"]?.map { Int8(bitPattern: $0) } == [0, 1, 0, 0, 0, 0])
    }

    @Test("float16 is computed in float32 and rounded once; bool logic; Cast to every type and back")
    func halvesAndBools() throws {
        let graph = Self.graph(
            [("h", .float16, [4]), ("p", .bool, [4]), ("q", .bool, [4])],
            [("soft", .float16), ("either", .bool), ("neither", .bool), ("wide", .float64), ("bytes", .uint8)],
            [Node(name: "sp", op: "Softplus", inputs: ["h"], outputs: ["soft"]),
             Node(name: "or", op: "Or", inputs: ["p", "q"], outputs: ["either"]),
             Node(name: "not", op: "Not", inputs: ["either"], outputs: ["neither"]),
             Node(name: "c1", op: "Cast", inputs: ["h"], outputs: ["wide"], attributes: ["to": .int(11)]),
             Node(name: "c2", op: "Cast", inputs: ["h"], outputs: ["bytes"], attributes: ["to": .int(2)])])
        let (model, _) = try NeuronCompiler.compile(graph)
        let h: [Float16] = [-2.5, 0.5, 3, 300]
        let out = try runBytes(model, ["h": NeuronDType.float16.bytes(h.map(Double.init)), "p": [0, 1, 0, 7], "q": [0, 0, 1, 0]])
        let soft = NeuronDType.float16.values(out["soft"] ?? [])
        for (x, got) in zip(h, soft) {
            let want = Double(Float16(Float(log1p(exp(-abs(Double(x)))) + max(Double(x), 0))))
            #expect(abs(got - want) <= abs(want) * 1e-3, "softplus(\(x)) = \(got), want \(want)")
        }
        #expect(out["either"] == [0, 1, 1, 1])
        #expect(out["neither"] == [1, 0, 0, 0])
        #expect(NeuronDType.float64.values(out["wide"] ?? []) == h.map(Double.init))
        #expect(out["bytes"] == [0, 0, 3, 255])   // toward zero, saturated
    }

    @Test("float64 computes where the ISA has the operation; other ops on it are refused, saying what to do; Cast carries it")
    func float64() throws {
        let refused = Self.graph([("d", .float64, [3])], [("y", .float64)],
                                 [Node(name: "r", op: "Sigmoid", inputs: ["d"], outputs: ["y"])])
        expectCompileError(.unsupported, mentioning: ["Sigmoid \"r\"", "input d is float64", "cast it to float32 in the model"]) {
            () throws(NeuronCompilerError) in try NeuronCompiler.compile(refused)
        }
        // 1e300 * 1e-300 + 0.1 and an exp beyond float32's range: float64 all the way.
        let computed = Self.graph([("d", .float64, [3]), ("e", .float64, [3])], [("y", .float64), ("z", .float64), ("s", .float64)],
                                  [Node(name: "m", op: "Mul", inputs: ["d", "e"], outputs: ["p"]),
                                   Node(name: "a", op: "Add", inputs: ["p", "d"], outputs: ["y"]),
                                   Node(name: "x", op: "Exp", inputs: ["e"], outputs: ["z"]),
                                   Node(name: "r", op: "ReduceSum", inputs: ["d"], outputs: ["s"], attributes: ["keepdims": .int(0)])])
        let (doubles, _) = try NeuronCompiler.compile(computed)
        let d: [Double] = [1e300, 0.1, -3], e: [Double] = [1e-300, 3, 700]
        let got = try runBytes(doubles, ["d": NeuronDType.float64.bytes(d), "e": NeuronDType.float64.bytes(e)])
        #expect(NeuronDType.float64.values(got["y"] ?? []) == zip(d, e).map { $0 * $1 + $0 })
        let exps = NeuronDType.float64.values(got["z"] ?? [])
        #expect(exps.count == 3 && zip(exps, e.map { Foundation.exp($0) }).allSatisfy { abs($0 - $1) <= 2 * $1.ulp }, "\(exps)")
        #expect(NeuronDType.float64.values(got["s"] ?? []) == [(1e300 + 0.1) - 3])
        let carried = Self.graph([("d", .float64, [3])], [("y", .float32)],
                                 [Node(name: "c", op: "Cast", inputs: ["d"], outputs: ["y"], attributes: ["to": .int(1)])])
        let (model, _) = try NeuronCompiler.compile(carried)
        let out = try runBytes(model, ["d": NeuronDType.float64.bytes([1e-50, 0.1, 1e300])])
        #expect(NeuronDType.float32.values(out["y"] ?? []) == [0, Double(Float(0.1)), .infinity])
    }

    @Test("QuantizeLinear rounds half to even and saturates, per axis; DequantizeLinear undoes it exactly")
    func quantization() throws {
        let scale = ConstantTensor.make(.float32, [2], [0.5, 2])
        let zero = ConstantTensor.make(.int8, [2], [3, -4])
        let graph = Self.graph(
            [("x", .float32, [2, 4])], [("q", .int8), ("y", .float32)],
            [Node(name: "quant", op: "QuantizeLinear", inputs: ["x", "s", "z"], outputs: ["q"], attributes: ["axis": .int(0)]),
             Node(name: "dequant", op: "DequantizeLinear", inputs: ["q", "s", "z"], outputs: ["y"], attributes: ["axis": .int(0)])],
            constants: ["s": scale, "z": zero])
        let (model, _) = try NeuronCompiler.compile(graph)
        let x: [Float] = [0.25, 0.75, -100, 100, 3, 5, -7, 1000]
        let out = try runBytes(model, ["x": NeuronDType.float32.bytes(x.map(Double.init))])
        let q = (out["q"] ?? []).map { Int8(bitPattern: $0) }
        var want: [Int8] = []
        for (index, value) in x.enumerated() {
            let (s, z): (Float, Float) = index < 4 ? (0.5, 3) : (2, -4)
            want.append(Int8(Swift.max(-128, Swift.min(127, (value / s).rounded(.toNearestOrEven) + z))))
        }
        #expect(q == want)   // 0.5 and 1.5 round to 0 and 2; ±100/0.5 saturate
        let y = NeuronDType.float32.values(out["y"] ?? [])
        #expect(y == q.enumerated().map { index, v in Double((Float(v) - (index < 4 ? 3 : -4)) * (index < 4 ? 0.5 : 2)) })
    }

    @Test("OneHot: negative indices count from the end, indices out of range give all off")
    func oneHot() throws {
        let graph = Self.graph([("i", .int64, [4])], [("y", .float32)],
                               [Node(name: "oh", op: "OneHot", inputs: ["i", "d", "v"], outputs: ["y"])],
                               constants: ["d": .make(.float32, [], [3]), "v": .make(.float32, [2], [-1, 5])])
        let (model, _) = try NeuronCompiler.compile(graph)
        let out = try runBytes(model, ["i": NeuronDType.int64.bytes([0, 2, -1, 7])])
        #expect(NeuronDType.float32.values(out["y"] ?? []) == [5, -1, -1, -1, -1, 5, -1, -1, 5, -1, -1, -1])
    }

    @Test("TopK: the k largest or smallest along an axis, equal values lower index first, of integers too")
    func topK() throws {
        for (type, largest) in [(ElementType.float32, true), (.float32, false), (.uint8, true), (.int64, false)] {
            let graph = Self.graph([("x", type, [2, 5])], [("v", type), ("i", .int64)],
                                   [Node(name: "t", op: "TopK", inputs: ["x", "k"], outputs: ["v", "i"],
                                         attributes: ["largest": .int(largest ? 1 : 0)])],
                                   constants: ["k": .integers([3])])
            let (model, _) = try NeuronCompiler.compile(graph)
            let x: [Double] = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3]
            let out = try runBytes(model, ["x": type.bytes(x)])
            let values = type.values(out["v"] ?? []), indices = NeuronDType.int64.values(out["i"] ?? []).map { Int($0) }
            var wantValues: [Double] = [], wantIndices: [Int] = []
            for row in 0..<2 {
                let items = (0..<5).map { (x[row * 5 + $0], $0) }
                let order = items.sorted { largest ? ($0.0 > $1.0 || ($0.0 == $1.0 && $0.1 < $1.1)) : ($0.0 < $1.0 || ($0.0 == $1.0 && $0.1 < $1.1)) }
                wantValues += order.prefix(3).map(\.0)
                wantIndices += order.prefix(3).map(\.1)
            }
            #expect(values == wantValues && indices == wantIndices, "\(type) largest=\(largest): \(values) \(indices)")
        }
    }

    @Test("float8, float4 and int4 at run time: Cast (saturate, round_mode), QuantizeLinear and DequantizeLinear; folding gives the NeuronCore's bits")
    func smallTypes() throws {
        let x: [Double] = [0.3, -1.7, 500, -1e6, 7.4, -8.6, 0.01, 3]
        let casts: [(String, Int, [String: AttributeValue])] = [
            ("e4m3", 17, [:]), ("e5m2_inf", 19, ["saturate": .int(0)]), ("e8m0", 24, ["round_mode": .string("down")]),
            ("fp4", 23, [:]), ("i4", 22, [:]), ("u2", 25, [:]),
        ]
        // The casts of x run on the NeuronCore; those of the constant c fold (a second model: a program binds 16 slots).
        var nodes: [Node] = [], folded: [Node] = [], outputs: [(String, ElementType)] = [], foldedOutputs: [(String, ElementType)] = []
        let types: [ElementType] = [.float8E4M3FN, .float8E5M2, .float8E8M0, .float4E2M1, .int4, .uint2]
        for ((name, to, attributes), type) in zip(casts, types) {
            var all = attributes
            all["to"] = .int(to)
            nodes.append(Node(name: name, op: "Cast", inputs: ["x"], outputs: [name], attributes: all))
            folded.append(Node(name: "k" + name, op: "Cast", inputs: ["c"], outputs: ["k" + name], attributes: all))
            outputs.append((name, type))
            foldedOutputs.append(("k" + name, type))
        }
        nodes.append(Node(name: "q", op: "QuantizeLinear", inputs: ["x", "s", "z"], outputs: ["q"]))
        nodes.append(Node(name: "dq", op: "DequantizeLinear", inputs: ["q", "s", "z"], outputs: ["dq"]))
        outputs += [("q", .int4), ("dq", .float32)]
        let constants: [String: ConstantTensor] = ["c": .make(.float32, [8], x), "s": .make(.float32, [], [0.5]),
                                                   "z": ConstantTensor(type: .int4, shape: [], bytes: [0xff])]
        let (model, _) = try NeuronCompiler.compile(Self.graph([("x", .float32, [8])], outputs, nodes, constants: constants))
        let (foldedModel, _) = try NeuronCompiler.compile(Self.graph([("x", .float32, [8])], foldedOutputs, folded, constants: constants))
        #expect(model.outputs.map(\.dtype) == outputs.map(\.1))
        var out = try runBytes(model, ["x": NeuronDType.float32.bytes(x)])
        out.merge(try runBytes(foldedModel, ["x": NeuronDType.float32.bytes(x)])) { first, _ in first }
        for ((name, _, attributes), type) in zip(casts, types) {
            let flags = NeuronProgram.castFlags(wrap: true, saturate: attributes["saturate"] == nil,
                                                e8m0: attributes["round_mode"] == nil ? .up : .down)
            let want = type.bytes(x, castFlags: flags)
            #expect(out[name] == want, "Cast to \(type): \(out[name] ?? []), want \(want)")
            #expect(out["k" + name] == want, "Cast of a constant to \(type), folded")
        }
        #expect(NeuronDType.float8E4M3FN.values(out["e4m3"] ?? []) == [0.3125, -1.75, 448, -448, 7.5, -9, 0.009765625, 3])
        #expect(NeuronDType.float8E5M2.values(out["e5m2_inf"] ?? [])[3] == -.infinity)
        #expect(NeuronDType.int4.values(out["i4"] ?? []) == [0, -1, 4, 0, 7, -8, 0, 3])   // 500 = 0x1f4: low bits 4
        // clip(round(x / 0.5) - 1, -8, 7), then (q + 1) / 2
        let q: [Double] = [0, -4, 7, -8, 7, -8, -1, 5]
        #expect(NeuronDType.int4.values(out["q"] ?? []) == q)
        #expect(NeuronDType.float32.values(out["dq"] ?? []) == q.map { ($0 + 1) * 0.5 })
    }

    @Test("int4 and uint2 initializers are unpacked from ONNX's packing, low bits first, signed ones sign-extended")
    func subBytePacking() {
        #expect(GraphReader.unpack([0x9f, 0x07], count: 3, type: .int4) == [0xff, 0xf9, 0x07])
        #expect(GraphReader.unpack([0x9f, 0x07], count: 4, type: .uint4) == [0x0f, 0x09, 0x07, 0x00])
        #expect(GraphReader.unpack([0b1110_0100], count: 4, type: .int2) == [0, 1, 0xfe, 0xff])
        #expect(GraphReader.unpack([0b1110_0100], count: 3, type: .uint2) == [0, 1, 2])
    }

    @Test("empty tensors: an empty input and output are in the NEFF, bound to no slot; empty parts drop out; a non-empty result from one is refused")
    func emptyTensors() throws {
        let graph = Self.graph([("x", .float32, [2, 3]), ("e", .float32, [0, 3])], [("y", .float32), ("none", .float32), ("t", .int8)],
                               [Node(name: "cat", op: "Concat", inputs: ["x", "e"], outputs: ["joined"], attributes: ["axis": .int(0)]),
                                Node(name: "neg", op: "Neg", inputs: ["joined"], outputs: ["y"]),
                                Node(name: "sl", op: "Slice", inputs: ["x", "starts", "ends"], outputs: ["none"]),
                                Node(name: "like", op: "CastLike", inputs: ["x", "k"], outputs: ["t"])],
                               constants: ["starts": .integers([5]), "ends": .integers([9]),
                                           "k": ConstantTensor(type: .int8, shape: [0], bytes: [])])
        let (model, _) = try NeuronCompiler.compile(graph)
        #expect(model.inputs.map(\.shape) == [[2, 3], [0, 3]])
        #expect(model.outputs.map(\.shape) == [[2, 3], [0, 3], [2, 3]])
        #expect(model.programs.allSatisfy { !$0.slots.contains("e") && !$0.slots.contains("none") })
        let x: [Double] = [1.5, -2, 3, 4, 5, 6.5]
        let out = try runBytes(model, ["x": NeuronDType.float32.bytes(x), "e": []])
        #expect(NeuronDType.float32.values(out["y"] ?? []) == x.map { -$0 })
        #expect(out["none"] == [])
        #expect(NeuronDType.int8.values(out["t"] ?? []) == [1, -2, 3, 4, 5, 6])   // toward zero
        // A MatMul over an empty axis would need its zeros computed: refused, saying so.
        let matmul = Self.graph([("a", .float32, [2, 0]), ("b", .float32, [0, 3])], [("p", .float32)],
                                [Node(name: "mm", op: "MatMul", inputs: ["a", "w"], outputs: ["p"])],
                                constants: ["w": .make(.float32, [0, 3], [])])
        expectCompileError(.shape, mentioning: ["MatMul \"mm\"", "non-empty result", "[2, 0]"]) {
            () throws(NeuronCompilerError) in try NeuronCompiler.compile(matmul)
        }
    }
}
