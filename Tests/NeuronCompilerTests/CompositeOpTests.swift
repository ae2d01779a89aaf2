import Foundation
import NeuronISA
import Testing
import TestSupport
@testable import NeuronCompiler

/// Ops lowered as short programs of existing instructions (activations,
/// reductions, normalisations, Split, Trilu): the edges ONNX's node tests
/// do not reach, where a naive program overflows, divides 0 by 0 or traps.
@Suite("neuron-cc: ops built from other instructions")
struct CompositeOpTests {
    /// A graph of one `op` node over a float32 input `x` of `shape`.
    static func graph(_ op: String, shape: [Int], inputs: [String] = ["x"], outputs: [String] = ["y"],
                      attributes: [String: AttributeValue] = [:], constants: [String: ConstantTensor] = [:],
                      opset: Int = 18) -> Graph {
        Graph(name: op, opset: opset, inputs: [ValueInfo(name: "x", type: .float32, shape: shape.map { .fixed($0) })],
              outputs: outputs.map { ValueInfo(name: $0, type: .float32, shape: nil) }, constants: constants,
              nodes: [Node(name: "n", op: op, inputs: inputs, outputs: outputs, attributes: attributes)])
    }

    static func compute(_ graph: Graph, _ x: [Float]) throws -> [String: [Float]] {
        let (model, _) = try NeuronCompiler.compile(graph)
        return try run(model, ["x": x])
    }

    @Test("Softplus, Mish and LogSoftmax stay finite where exp overflows; ReduceLogSumExp too")
    func noOverflow() throws {
        let x: [Float] = [-1000, -100, 0, 100, 1000, 20]
        let softplus = try Self.compute(Self.graph("Softplus", shape: [6]), x)["y"] ?? []
        #expect(softplus[0] == 0 && softplus[4] == 1000 && softplus[3] == 100)
        #expect(abs(softplus[2] - Float(log(2.0))) < 1e-6)
        let mish = try Self.compute(Self.graph("Mish", shape: [6]), x)["y"] ?? []
        #expect(mish[4] == 1000 && mish.allSatisfy(\.isFinite))
        let logSoftmax = try Self.compute(Self.graph("LogSoftmax", shape: [3, 2]), [1000, 0, 0, 1000, 5, 5])["y"] ?? []
        #expect(logSoftmax[0] == 0 && logSoftmax[1] == -1000 && logSoftmax[2] == -1000 && logSoftmax[3] == 0)
        #expect(abs(logSoftmax[4] + Float(log(2.0))) < 1e-6)
        let lse = try Self.compute(Self.graph("ReduceLogSumExp", shape: [2, 2], inputs: ["x", "a"], attributes: ["keepdims": .int(0)],
                                              constants: ["a": .integers([1])]),
                                   [1000, 1000, -1000, -1000])["y"] ?? []
        #expect(lse.count == 2 && abs(lse[0] - 1000.6931) < 1e-3 && abs(lse[1] + 999.3069) < 1e-3, "\(lse)")
    }

    @Test("Sign is exact for zeros, subnormals, infinities and NaN")
    func sign() throws {
        let x: [Float] = [-.infinity, -.leastNonzeroMagnitude, -0.0, 0, .leastNonzeroMagnitude, 3, .infinity, .nan]
        let y = try Self.compute(Self.graph("Sign", shape: [8]), x)["y"] ?? []
        #expect(Array(y.prefix(7)) == [-1, -1, 0, 0, 1, 1, 1])
        #expect(y.count == 8 && y[7].isNaN)
    }

    @Test("LpNormalization gives 0, not NaN, for a row of zeros; ELU, SELU, CELU and PRelu keep each branch")
    func branches() throws {
        let norm = try Self.compute(Self.graph("LpNormalization", shape: [2, 2], attributes: ["p": .int(2)]), [0, 0, 3, 4])["y"] ?? []
        #expect(norm == [0, 0, 0.6, 0.8])
        let x: [Float] = [-2, -0.5, 0, 0.5, 2, .infinity]
        let elu = try Self.compute(Self.graph("Elu", shape: [6], attributes: ["alpha": .float(2)]), x)["y"] ?? []
        for (got, v) in zip(elu, x) {
            let want = v > 0 ? v : 2 * (Float(exp(Double(v))) - 1)
            #expect(got == want || abs(got - want) < 1e-6, "Elu(\(v)) = \(got), want \(want)")
        }
        let prelu = try Self.compute(Self.graph("PRelu", shape: [2, 3], inputs: ["x", "s"],
                                                constants: ["s": .make(.float32, [3], [0.5, 1, -1])]),
                                     [-2, -2, -2, 4, .infinity, -.infinity])["y"] ?? []
        #expect(prelu == [-1, -2, 2, 4, .infinity, .infinity])
    }

    @Test("Split: sizes given, num_outputs with a short last part, and sizes that do not add up refused")
    func split() throws {
        let x = (0..<10).map(Float.init)
        let sizes = try Self.compute(Self.graph("Split", shape: [10], inputs: ["x", "s"], outputs: ["a", "b"],
                                                constants: ["s": .integers([3, 7])]), x)
        #expect(sizes["a"] == [0, 1, 2] && sizes["b"] == Array(x[3...]))
        let parts = try Self.compute(Self.graph("Split", shape: [2, 5], outputs: ["a", "b", "c"],
                                                attributes: ["axis": .int(1), "num_outputs": .int(3)]), x)
        #expect(parts["a"] == [0, 1, 5, 6] && parts["b"] == [2, 3, 7, 8] && parts["c"] == [4, 9])
        expectCompileError(.invalidModel, mentioning: ["Split \"n\"", "must be 2 sizes adding up to axis 0's 10"]) {
            () throws(NeuronCompilerError) in
            try NeuronCompiler.compile(Self.graph("Split", shape: [10], inputs: ["x", "s"], outputs: ["a", "b"],
                                                  constants: ["s": .integers([3, 8])]))
        }
    }

    @Test("Trilu keeps each triangle from diagonal k, and a k far beyond either end keeps all or nothing")
    func trilu() throws {
        let x = (1...12).map(Float.init)   // 3x4
        func trilu(_ k: Int, upper: Bool) throws -> [Float] {
            try Self.compute(Self.graph("Trilu", shape: [3, 4], inputs: ["x", "k"], attributes: ["upper": .int(upper ? 1 : 0)],
                                        constants: ["k": .integers([k], shape: [])]), x)["y"] ?? []
        }
        func want(_ k: Int, upper: Bool) -> [Float] {
            (0..<12).map { i in
                let (r, c) = (i / 4, i % 4)
                return (upper ? c >= r + k : c <= r + k) ? x[i] : 0
            }
        }
        for k in [-4, -1, 0, 1, 3, 5] {
            #expect(try trilu(k, upper: true) == want(k, upper: true), "upper k=\(k)")
            #expect(try trilu(k, upper: false) == want(k, upper: false), "lower k=\(k)")
        }
        #expect(try trilu(Int(Int64.max), upper: true) == [Float](repeating: 0, count: 12))
        #expect(try trilu(Int(Int64.min), upper: true) == x)
        #expect(try trilu(Int(Int64.max), upper: false) == x)
    }

    @Test("normalisations refuse groups, blocks and axes that do not fit, saying which")
    func refusals() {
        expectCompileError(.invalidModel, mentioning: ["GroupNormalization \"n\"", "num_groups=0 must divide the 4 channels"]) {
            () throws(NeuronCompilerError) in
            try NeuronCompiler.compile(Self.graph("GroupNormalization", shape: [1, 4, 2, 2], inputs: ["x", "s", "b"],
                                                  attributes: ["num_groups": .int(0)],
                                                  constants: ["s": .make(.float32, [4], [1, 1, 1, 1]),
                                                              "b": .make(.float32, [4], [0, 0, 0, 0])]))
        }
        expectCompileError(.shape, mentioning: ["DepthToSpace \"n\"", "multiple of blocksize²"]) {
            () throws(NeuronCompilerError) in
            try NeuronCompiler.compile(Self.graph("DepthToSpace", shape: [1, 3, 2, 2], attributes: ["blocksize": .int(2)]))
        }
        expectCompileError(.unsupported, mentioning: ["LpNormalization \"n\"", "p=3"]) {
            () throws(NeuronCompilerError) in
            try NeuronCompiler.compile(Self.graph("LpNormalization", shape: [2, 2], attributes: ["p": .int(3)]))
        }
        expectCompileError(.invalidModel, mentioning: ["Celu \"n\"", "alpha=0.0"]) {
            () throws(NeuronCompilerError) in
            try NeuronCompiler.compile(Self.graph("Celu", shape: [2], attributes: ["alpha": .float(0)]))
        }
    }

    @Test("Attention: causal over grouped heads equals its definition; heads that do not fit are refused")
    func attention() throws {
        // Q [1, 4, 3, 2] over K, V [1, 2, 3, 2]: query heads 0-1 read
        // key-value head 0, 2-3 head 1; causal, scale 1/sqrt(2).
        let (b, h, kvh, s, d) = (1, 4, 2, 3, 2)
        let q = (0..<(b * h * s * d)).map { Float(($0 * 7) % 11) / 5 - 1 }
        let k = (0..<(b * kvh * s * d)).map { Float(($0 * 5) % 13) / 6 - 1 }
        let v = (0..<(b * kvh * s * d)).map { Float(($0 * 3) % 7) - 3 }
        let graph = Graph(name: "a", opset: 23,
                          inputs: [ValueInfo(name: "q", type: .float32, shape: [b, h, s, d].map { .fixed($0) }),
                                   ValueInfo(name: "k", type: .float32, shape: [b, kvh, s, d].map { .fixed($0) }),
                                   ValueInfo(name: "v", type: .float32, shape: [b, kvh, s, d].map { .fixed($0) })],
                          outputs: [ValueInfo(name: "y", type: .float32, shape: nil)], constants: [:],
                          nodes: [Node(name: "n", op: "Attention", inputs: ["q", "k", "v"], outputs: ["y"],
                                       attributes: ["is_causal": .int(1)])])
        let (model, _) = try NeuronCompiler.compile(graph)
        let got = try run(model, ["q": q, "k": k, "v": v])["y"] ?? []
        var want: [Float] = []
        for head in 0..<h {
            let kv = head / (h / kvh)
            for i in 0..<s {
                var scores: [Double] = []
                for j in 0...i {
                    var dot = 0.0
                    for c in 0..<d { dot += Double(q[(head * s + i) * d + c]) * Double(k[(kv * s + j) * d + c]) }
                    scores.append(dot / Double(d).squareRoot())
                }
                let top = scores.max() ?? 0
                let exps = scores.map { exp($0 - top) }, sum = exps.reduce(0, +)
                for c in 0..<d {
                    want.append(Float(exps.enumerated().reduce(0.0) { $0 + $1.element / sum * Double(v[(kv * s + $1.offset) * d + c]) }))
                }
            }
        }
        #expect(got.count == want.count && zip(got, want).allSatisfy { abs($0 - $1) < 1e-5 }, "\(got) vs \(want)")

        var ungrouped = graph
        ungrouped.inputs[1].shape = [b, 3, s, d].map { .fixed($0) }
        ungrouped.inputs[2].shape = [b, 3, s, d].map { .fixed($0) }
        expectCompileError(.shape, mentioning: ["Attention \"n\"", "4 query heads do not share 3 key-value heads evenly"]) {
            () throws(NeuronCompilerError) in try NeuronCompiler.compile(ungrouped)
        }
        var flat = graph
        for index in 0..<3 { flat.inputs[index].shape = [b, s, 8].map { .fixed($0) } }
        expectCompileError(.invalidModel, mentioning: ["Attention \"n\"", "need q_num_heads and kv_num_heads"]) {
            () throws(NeuronCompilerError) in try NeuronCompiler.compile(flat)
        }
        // nonpad_kv_seqlen at run time gives the bits of the same lengths known at compile time.
        var padded = graph
        padded.inputs.append(ValueInfo(name: "lengths", type: .int64, shape: [.fixed(1)]))
        padded.nodes[0].inputs = ["q", "k", "v", "", "", "", "lengths"]
        let (runtime, _) = try NeuronCompiler.compile(padded)
        for length in 1...s {
            var known = graph
            known.constants["lengths"] = .integers([length])
            known.nodes[0].inputs = ["q", "k", "v", "", "", "", "lengths"]
            let (folded, _) = try NeuronCompiler.compile(known)
            let want = try run(folded, ["q": q, "k": k, "v": v])["y"] ?? []
            let bytes = try runBytes(runtime, ["q": NeuronDType.float32.bytes(q.map(Double.init)), "k": NeuronDType.float32.bytes(k.map(Double.init)),
                                               "v": NeuronDType.float32.bytes(v.map(Double.init)), "lengths": NeuronDType.int64.bytes([Double(length)])])
            let got = NeuronDType.float32.values(bytes["y"] ?? []).map { Float($0) }
            #expect(got.map(\.bitPattern) == want.map(\.bitPattern), "nonpad_kv_seqlen \(length)")
        }
    }

    @Test("Resize: linear (align_corners), a nearest resize that is no repeat or stride, and keep_aspect_ratio_policy")
    func resize() throws {
        func resize(_ shape: [Int], _ sizes: [Int], _ attributes: [String: AttributeValue], _ x: [Float]) throws -> [Float] {
            let graph = Self.graph("Resize", shape: shape, inputs: ["x", "", "", "s"], attributes: attributes,
                                   constants: ["s": .integers(sizes)], opset: 19)
            return try Self.compute(graph, x)["y"] ?? []
        }
        // [0, 3] to 4 positions over the same corners: 0, 1, 2, 3; rows the same.
        let linear = try resize([1, 1, 2, 2], [1, 1, 4, 4],
                                ["mode": .string("linear"), "coordinate_transformation_mode": .string("align_corners")], [0, 3, 0, 3])
        #expect(linear.count == 16 && zip(linear, (0..<16).map { Float($0 % 4) }).allSatisfy { abs($0 - $1) < 1e-6 }, "\(linear)")
        // 2 to 7, half_pixel, round_prefer_floor: source (o + 0.5) · 2/7 - 0.5.
        let nearest = try resize([2], [7], [:], [10, 20])
        let want = (0..<7).map { o -> Float in
            let p = (Double(o) + 0.5) * 2 / 7 - 0.5
            let i = p - p.rounded(.down) == 0.5 ? p.rounded(.down) : p.rounded()
            return [10, 20][Swift.min(Swift.max(Int(i), 0), 1)]
        }
        #expect(nearest == want)
        // not_larger: 2x4 to fit in 4x4 takes one scale, 1 (4/4), for both axes.
        let fitted = try resize([2, 4], [4, 4], ["keep_aspect_ratio_policy": .string("not_larger"), "axes": .ints([0, 1])],
                                (0..<8).map(Float.init))
        #expect(fitted == (0..<8).map(Float.init))
    }

    @Test("LSTM: its definition step by step, and a sequence shorter than the rest keeps its state and outputs zeros")
    func lstm() throws {
        let (steps, batch, width, hidden) = (3, 2, 2, 2)
        let w = (0..<(4 * hidden * width)).map { Float(($0 * 7) % 9) / 10 - 0.4 }
        let r = (0..<(4 * hidden * hidden)).map { Float(($0 * 5) % 7) / 10 - 0.3 }
        let x = (0..<(steps * batch * width)).map { Float(($0 * 3) % 5) / 4 - 0.5 }
        var graph = Graph(name: "lstm", opset: 22,
                          inputs: [ValueInfo(name: "x", type: .float32, shape: [steps, batch, width].map { .fixed($0) }),
                                   ValueInfo(name: "lens", type: .int32, shape: [.fixed(batch)])],
                          outputs: [ValueInfo(name: "y", type: .float32, shape: nil), ValueInfo(name: "yh", type: .float32, shape: nil)],
                          constants: ["w": .make(.float32, [1, 4 * hidden, width], w.map(Double.init)),
                                      "r": .make(.float32, [1, 4 * hidden, hidden], r.map(Double.init))],
                          nodes: [Node(name: "n", op: "LSTM", inputs: ["x", "w", "r", "", "lens"], outputs: ["y", "yh"],
                                       attributes: ["hidden_size": .int(hidden)])])
        let (model, _) = try NeuronCompiler.compile(graph)
        let out = try runBytes(model, ["x": NeuronDType.float32.bytes(x.map(Double.init)), "lens": NeuronDType.int32.bytes([3, 1])])
        let y = NeuronDType.float32.values(out["y"] ?? []), yh = NeuronDType.float32.values(out["yh"] ?? [])
        // The reference: gates i, o, f, c; sequence 1 stops after one step.
        func sigmoid(_ v: Double) -> Double { 1 / (1 + exp(-v)) }
        var want = [Double](repeating: 0, count: steps * batch * hidden), wantH: [Double] = []
        for b in 0..<batch {
            var h = [Double](repeating: 0, count: hidden), c = h
            for t in 0..<(b == 0 ? 3 : 1) {
                var gates = [Double](repeating: 0, count: 4 * hidden)
                for j in 0..<(4 * hidden) {
                    for k in 0..<width { gates[j] += Double(x[(t * batch + b) * width + k]) * Double(w[j * width + k]) }
                    for k in 0..<hidden { gates[j] += h[k] * Double(r[j * hidden + k]) }
                }
                for j in 0..<hidden {
                    let i = sigmoid(gates[j]), o = sigmoid(gates[hidden + j]), f = sigmoid(gates[2 * hidden + j])
                    c[j] = f * c[j] + i * tanh(gates[3 * hidden + j])
                    h[j] = o * tanh(c[j])
                    want[(t * batch + b) * hidden + j] = h[j]
                }
            }
            wantH += h
        }
        #expect(y.count == want.count && zip(y, want).allSatisfy { abs($0 - $1) < 1e-5 }, "\(y) vs \(want)")
        #expect(yh.count == wantH.count && zip(yh, wantH).allSatisfy { abs($0 - $1) < 1e-5 }, "\(yh) vs \(wantH)")
        graph.nodes[0].attributes["direction"] = .string("sideways")
        expectCompileError(.invalidModel, mentioning: ["LSTM \"n\"", "direction=sideways"]) {
            () throws(NeuronCompilerError) in try NeuronCompiler.compile(graph)
        }
    }

    @Test("ConvTranspose equals its definition: strides, pads, output_padding, dilations, groups, weights given at run time")
    func convTranspose() throws {
        let (n, ci, h, wd, co, kh, kw, group) = (1, 4, 3, 2, 6, 3, 2, 2)
        let (sh, sw, dh, dw) = (2, 3, 1, 2)
        let pads = [1, 0, 0, 2], extra = [1, 0]
        let oh = sh * (h - 1) + extra[0] + (kh - 1) * dh + 1 - pads[0] - pads[2]
        let ow = sw * (wd - 1) + extra[1] + (kw - 1) * dw + 1 - pads[1] - pads[3]
        let x = (0..<(n * ci * h * wd)).map { Float(($0 * 7) % 11) / 5 - 1 }
        let w = (0..<(ci * (co / group) * kh * kw)).map { Float(($0 * 5) % 13) / 6 - 1 }
        let graph = Graph(name: "ct", opset: 22,
                          inputs: [ValueInfo(name: "x", type: .float32, shape: [n, ci, h, wd].map { .fixed($0) }),
                                   ValueInfo(name: "w", type: .float32, shape: [ci, co / group, kh, kw].map { .fixed($0) })],
                          outputs: [ValueInfo(name: "y", type: .float32, shape: nil)], constants: [:],
                          nodes: [Node(name: "n", op: "ConvTranspose", inputs: ["x", "w"], outputs: ["y"],
                                       attributes: ["strides": .ints([sh, sw]), "dilations": .ints([dh, dw]), "pads": .ints(pads),
                                                    "output_padding": .ints(extra), "group": .int(group)])])
        let (model, _) = try NeuronCompiler.compile(graph)
        let got = try run(model, ["x": x, "w": w])["y"] ?? []
        var want = [Double](repeating: 0, count: n * co * oh * ow)
        for c in 0..<ci { for i in 0..<h { for j in 0..<wd { for o in 0..<(co / group) { for a in 0..<kh { for b in 0..<kw {
            let g = c / (ci / group)
            let (y0, x0) = (i * sh - pads[0] + a * dh, j * sw - pads[1] + b * dw)
            guard y0 >= 0, y0 < oh, x0 >= 0, x0 < ow else { continue }
            want[((g * (co / group) + o) * oh + y0) * ow + x0] += Double(x[(c * h + i) * wd + j]) * Double(w[((c * (co / group) + o) * kh + a) * kw + b])
        } } } } } }
        #expect(got.count == want.count && zip(got, want).allSatisfy { abs(Double($0) - $1) < 1e-5 }, "\(got) vs \(want)")
    }

    /// ConvTranspose cases of one group with a stride above 1: channels
    /// in and out, input extent, kernel, strides, pads (top, left,
    /// bottom, right), output_padding, a bias.
    struct PhaseCase: Sendable, CustomStringConvertible {
        var ci: Int
        var co: Int
        var extent: (Int, Int)
        var kernel: (Int, Int)
        var strides: (Int, Int)
        var pads = [0, 0, 0, 0]
        var extra = [0, 0]
        var bias = true
        /// output_shape, which replaces the pads: total = natural − shape,
        /// the start's pad total − ⌊total / 2⌋ and the end's ⌊total / 2⌋.
        var outputShape: [Int]?
        var description: String { "ci\(ci) co\(co) \(extent) k\(kernel) s\(strides) p\(pads) e\(extra) o\(outputShape ?? [])" }
        var effectivePads: [Int] {
            guard let shape = outputShape else { return pads }
            let natural = [strides.0 * (extent.0 - 1) + extra[0] + kernel.0, strides.1 * (extent.1 - 1) + extra[1] + kernel.1]
            let total = zip(natural, shape).map { $0 - $1 }
            let half = total.map { Int((Double($0) / 2).rounded(.down)) }
            return [total[0] - half[0], total[1] - half[1], half[0], half[1]]
        }
    }

    static let phaseCases: [PhaseCase] = [
        // A segmentation head's 3x3 of stride 2 (tf2onnx's pads).
        PhaseCase(ci: 6, co: 5, extent: (4, 4), kernel: (3, 3), strides: (2, 2), pads: [0, 0, 1, 1]),
        // Kernel equal to the stride: no phase shares a tap.
        PhaseCase(ci: 3, co: 7, extent: (3, 5), kernel: (2, 2), strides: (2, 2), bias: false),
        // DCGAN's 4x4 of stride 2, pad 1.
        PhaseCase(ci: 4, co: 2, extent: (3, 3), kernel: (4, 4), strides: (2, 2), pads: [1, 1, 1, 1]),
        // Uneven strides and output_padding: outputs that do not divide into phases.
        PhaseCase(ci: 2, co: 3, extent: (3, 2), kernel: (3, 2), strides: (2, 3), pads: [1, 0, 0, 1], extra: [1, 2]),
        // A kernel smaller than the stride: phases no tap reaches hold the bias.
        PhaseCase(ci: 2, co: 2, extent: (2, 3), kernel: (1, 1), strides: (3, 2)),
        // output_shape one short of the natural extent, and one beyond it.
        PhaseCase(ci: 2, co: 3, extent: (3, 3), kernel: (4, 4), strides: (2, 3), outputShape: [7, 9]),
        PhaseCase(ci: 2, co: 2, extent: (3, 2), kernel: (3, 3), strides: (2, 2), outputShape: [8, 6]),
        // A height of 1, as a 1-D ConvTranspose becomes.
        PhaseCase(ci: 3, co: 4, extent: (1, 6), kernel: (1, 5), strides: (1, 3), pads: [0, 2, 0, 1]),
    ]

    @Test("ConvTranspose of constant weights and a stride runs as one CONV2D over all phases and a COPY, with the zero-spread form's bits",
          arguments: phaseCases)
    func convTransposeByPhases(_ t: PhaseCase) throws {
        let (h, wd) = t.extent, (kh, kw) = t.kernel, (sh, sw) = t.strides, pads = t.effectivePads
        let oh = sh * (h - 1) + t.extra[0] + kh - pads[0] - pads[2]
        let ow = sw * (wd - 1) + t.extra[1] + kw - pads[1] - pads[3]
        let x = sample(t.ci * h * wd, seed: 61).map { $0 * 2 }
        let w = sample(t.ci * t.co * kh * kw, seed: 62), b = sample(t.co, seed: 63)
        func graph(constant: Bool) -> Graph {
            var inputs = [ValueInfo(name: "x", type: .float32, shape: [1, t.ci, h, wd].map { .fixed($0) })]
            var constants: [String: ConstantTensor] = [:]
            if constant {
                constants["w"] = .make(.float32, [t.ci, t.co, kh, kw], w.map(Double.init))
            } else {
                inputs.append(ValueInfo(name: "w", type: .float32, shape: [t.ci, t.co, kh, kw].map { .fixed($0) }))
            }
            if t.bias { constants["b"] = .make(.float32, [t.co], b.map(Double.init)) }
            return Graph(name: "ctp", opset: 22, inputs: inputs, outputs: [ValueInfo(name: "y", type: .float32, shape: nil)],
                         constants: constants,
                         nodes: [Node(name: "n", op: "ConvTranspose", inputs: t.bias ? ["x", "w", "b"] : ["x", "w"], outputs: ["y"],
                                      attributes: t.outputShape.map { ["strides": .ints([sh, sw]), "output_shape": .ints($0),
                                                                        "output_padding": .ints(t.extra)] }
                                          ?? ["strides": .ints([sh, sw]), "pads": .ints(t.pads), "output_padding": .ints(t.extra)])])
        }
        let (phased, _) = try NeuronCompiler.compile(graph(constant: true))
        let (spread, _) = try NeuronCompiler.compile(graph(constant: false))
        let program = try #require(phased.programs.first)
        let sizes = program.slots.map { name in UInt64(name.flatMap { phased.tensor(named: $0)?.byteCount } ?? 0) }
        let shown = try NeuronEngine.instructions(program.image, slotSizes: sizes).map(\.name)
        #expect(shown.first == "CONV2D.packed" && shown.dropFirst().allSatisfy { $0 == "COPY" }, "\(shown)")
        let got = try run(phased, ["x": x])["y"] ?? [], same = try run(spread, ["x": x, "w": w])["y"] ?? []
        #expect(got.count == t.co * oh * ow && got.map(\.bitPattern) == same.map(\.bitPattern))
        var want = [Double](repeating: 0, count: t.co * oh * ow)
        for o in 0..<t.co { for y0 in 0..<oh { for x0 in 0..<ow { want[(o * oh + y0) * ow + x0] = t.bias ? Double(b[o]) : 0 } } }
        for c in 0..<t.ci { for i in 0..<h { for j in 0..<wd { for o in 0..<t.co { for a in 0..<kh { for e in 0..<kw {
            let (y0, x0) = (i * sh - pads[0] + a, j * sw - pads[1] + e)
            guard (0..<oh).contains(y0), (0..<ow).contains(x0) else { continue }
            want[(o * oh + y0) * ow + x0] += Double(x[(c * h + i) * wd + j]) * Double(w[((c * t.co + o) * kh + a) * kw + e])
        } } } } } }
        #expect(zip(got, want).allSatisfy { abs(Double($0) - $1) < 1e-5 }, "\(got) vs \(want)")
    }

    @Test("DFT of a real signal equals the sum of x·e^(-2πikn/N); BitCast refuses another size; CenterCropPad crops and pads")
    func signals() throws {
        let x: [Float] = [1, -2, 0.5, 3, 0, -1]
        let dft = try Self.compute(Self.graph("DFT", shape: [1, 6, 1], attributes: ["axis": .int(1)], opset: 19), x)["y"] ?? []
        for k in 0..<6 {
            var (re, im) = (0.0, 0.0)
            for n in 0..<6 {
                re += Double(x[n]) * cos(-2 * .pi * Double(k * n) / 6)
                im += Double(x[n]) * sin(-2 * .pi * Double(k * n) / 6)
            }
            #expect(abs(Double(dft[2 * k]) - re) < 1e-5 && abs(Double(dft[2 * k + 1]) - im) < 1e-5, "X[\(k)]")
        }
        expectCompileError(.unsupported, mentioning: ["BitCast \"n\"", "float32 to int64, of another size"]) {
            () throws(NeuronCompilerError) in
            try NeuronCompiler.compile(Self.graph("BitCast", shape: [2], attributes: ["to": .int(7)]))
        }
        // [2, 5] to [4, 3]: rows padded one above and one below, columns 1-3 kept.
        let cropped = try Self.compute(Self.graph("CenterCropPad", shape: [2, 5], inputs: ["x", "s"],
                                                  constants: ["s": .integers([4, 3])]), (0..<10).map(Float.init))["y"] ?? []
        #expect(cropped == [0, 0, 0, 1, 2, 3, 6, 7, 8, 0, 0, 0])
        expectCompileError(.invalidModel, mentioning: ["CenterCropPad \"n\"", "one size of at least 1 per axis"]) {
            () throws(NeuronCompilerError) in
            try NeuronCompiler.compile(Self.graph("CenterCropPad", shape: [2, 5], inputs: ["x", "s"], constants: ["s": .integers([4])]))
        }
    }
}
