import Foundation
import NeuronISA
import NeuronNEFF
import Testing
import TestSupport
@testable import NeuronCompiler

/// CumSum and CumProd (log-step scans) and Einsum (diagonals, sums and
/// batched products), against direct Swift definitions, on shapes the
/// ONNX node tests do not reach: lengths that are no power of two, every
/// direction, float64 and wrapping integers, three operands, broadcast
/// ellipses.
@Suite("neuron-cc: CumSum, CumProd and Einsum")
struct ScanEinsumTests {
    static func graph(_ op: String, _ inputs: [(String, ElementType, [Int])], output: ElementType,
                      attributes: [String: AttributeValue] = [:], constants: [String: ConstantTensor] = [:]) -> Graph {
        Graph(name: op, opset: 18, inputs: inputs.map { ValueInfo(name: $0.0, type: $0.1, shape: $0.2.map { .fixed($0) }) },
              outputs: [ValueInfo(name: "y", type: output, shape: nil)], constants: constants,
              nodes: [Node(name: "n", op: op, inputs: inputs.map(\.0) + constants.keys.sorted(), outputs: ["y"],
                           attributes: attributes)])
    }

    /// The scan of rows of `length` in `values` ([rows, length], axis 1), as defined.
    static func scan<T>(_ values: [T], length: Int, exclusive: Bool, reverse: Bool, identity: T,
                        _ op: (T, T) -> T) -> [T] {
        var out = values
        for row in 0..<(values.count / length) {
            var acc = identity
            let order = reverse ? Array((0..<length).reversed()) : Array(0..<length)
            for i in order {
                let x = values[row * length + i]
                if exclusive {
                    out[row * length + i] = acc
                    acc = op(acc, x)
                } else {
                    acc = op(acc, x)
                    out[row * length + i] = acc
                }
            }
        }
        return out
    }

    @Test("CumSum of float64 and CumProd of int32 (wrapping) in every direction, over 37 elements")
    func scans() throws {
        let length = 37, rows = 3
        let doubles = (0..<(rows * length)).map { Double($0 % 11) * 0.37 - 1.5 }
        let ints = (0..<(rows * length)).map { Int32($0 % 7) - 3 }
        for exclusive in [false, true] {
            for reverse in [false, true] {
                let attributes: [String: AttributeValue] = ["exclusive": .int(exclusive ? 1 : 0), "reverse": .int(reverse ? 1 : 0)]
                let sum = try NeuronCompiler.compile(Self.graph("CumSum", [("x", .float64, [rows, length])], output: .float64,
                                                                attributes: attributes, constants: ["axis": .integers([-1])])).0
                let got = NeuronDType.float64.values(try runBytes(sum, ["x": NeuronDType.float64.bytes(doubles)])["y"] ?? [])
                let want = Self.scan(doubles, length: length, exclusive: exclusive, reverse: reverse, identity: 0.0, +)
                #expect(got.count == want.count && zip(got, want).allSatisfy { abs($0 - $1) <= 1e-12 * max(1, abs($1)) },
                        "CumSum exclusive=\(exclusive) reverse=\(reverse)")
                let product = try NeuronCompiler.compile(Self.graph("CumProd", [("x", .int32, [rows, length])], output: .int32,
                                                                    attributes: attributes, constants: ["axis": .integers([1])])).0
                let bytes = try runBytes(product, ["x": NeuronDType.int32.bytes(ints.map(Double.init))])["y"] ?? []
                let products = NeuronDType.int32.values(bytes).map { Int32($0) }
                // Integer products are exact in any grouping (wrapping is a ring).
                #expect(products == Self.scan(ints, length: length, exclusive: exclusive, reverse: reverse, identity: 1, &*),
                        "CumProd exclusive=\(exclusive) reverse=\(reverse)")
            }
        }
        // The axis must be known and one integer.
        #expect(throws: NeuronCompilerError.self) {
            try NeuronCompiler.compile(Self.graph("CumSum", [("x", .float32, [4])], output: .float32,
                                                  constants: ["axis": .integers([0, 0])]))
        }
    }

    /// out[i, l] of `equation` over row-major operands, by definition.
    static func naive(_ letters: [[Character]], _ output: [Character], _ operands: [[Double]], _ shapes: [[Int]]) -> [Double] {
        var size: [Character: Int] = [:]
        for (term, shape) in zip(letters, shapes) { for (c, d) in zip(term, shape) { size[c] = max(size[c] ?? 1, d) } }
        let all = Array(Set(letters.joined())).sorted()
        let outSizes = output.map { size[$0] ?? 1 }
        var out = [Double](repeating: 0, count: outSizes.reduce(1, *))
        var index = [Character: Int]()
        func visit(_ k: Int) {
            if k == all.count {
                var product = 1.0
                for (n, term) in letters.enumerated() {
                    var flat = 0
                    for (axis, c) in term.enumerated() { flat = flat * shapes[n][axis] + (shapes[n][axis] == 1 ? 0 : index[c] ?? 0) }
                    product *= operands[n][flat]
                }
                var at = 0
                for c in output { at = at * (size[c] ?? 1) + (index[c] ?? 0) }
                out[at] += product
                return
            }
            for i in 0..<(size[all[k]] ?? 1) {
                index[all[k]] = i
                visit(k + 1)
            }
        }
        visit(0)
        return out
    }

    @Test("Einsum: attention scores, three operands, a broadcast ellipsis, a trace, float32 and float64",
          arguments: [
              ("bhid,bhjd->bhij", [[2, 3, 4, 5], [2, 3, 6, 5]]),
              ("ij,jk,kl->li", [[3, 4], [4, 5], [5, 2]]),
              ("...ij,...jk->...ik", [[1, 2, 3], [4, 3, 2]]),
              ("ii", [[4, 4]]),
              ("bii->b", [[3, 4, 4]]),
              ("ij,ij->", [[3, 5], [3, 5]]),
              ("ijk->kji", [[2, 3, 4]]),
          ])
    func einsum(_ equation: String, _ shapes: [[Int]]) throws {
        let names = shapes.indices.map { "x\($0)" }
        var values: [[Double]] = []
        for (n, shape) in shapes.enumerated() {
            let count = shape.reduce(1, *)
            values.append((0..<count).map { (i: Int) -> Double in Double((i * 7 + n * 3) % 13) / 4 - 1.5 })
        }
        let sides = equation.components(separatedBy: "->")
        let digits: [Character] = Array("ZYXWVU")
        var terms: [[Character]] = []
        for (term, shape) in zip(sides[0].components(separatedBy: ","), shapes) {
            guard term.contains("...") else {
                terms.append(Array(term))
                continue
            }
            let parts = term.components(separatedBy: "...")
            let span = shape.count - parts[0].count - parts[1].count
            let middle: [Character] = Array(digits.prefix(span).reversed())
            terms.append(Array(parts[0]) + middle + Array(parts[1]))
        }
        var output: [Character]
        if sides.count == 2 {
            let parts = sides[1].components(separatedBy: "...")
            let span = terms.map { $0.filter { digits.contains($0) }.count }.max() ?? 0
            output = parts.count == 2 ? Array(parts[0]) + Array(digits.prefix(span).reversed()) + Array(parts[1]) : Array(sides[1])
        } else {
            var count: [Character: Int] = [:]
            for c in terms.joined() { count[c, default: 0] += 1 }
            output = count.filter { $0.value == 1 }.keys.sorted()
        }
        let want = Self.naive(terms, output, values, shapes)
        for type in [ElementType.float32, .float64] {
            let graph = Self.graph("Einsum", zip(names, shapes).map { ($0, type, $1) }, output: type,
                                   attributes: ["equation": .string(equation)])
            let (model, _) = try NeuronCompiler.compile(graph)
            let out = try runBytes(model, Dictionary(uniqueKeysWithValues: zip(names, values.map { type.bytes($0) })))
            let got = type.values(out["y"] ?? [])
            #expect(got.count == want.count, "\(equation) \(type.name): \(got.count) values, want \(want.count)")
            #expect(zip(got, want).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) }, "\(equation) \(type.name): \(got) vs \(want)")
        }
    }

    @Test("Einsum refuses equations that do not fit their inputs, with the equation in the message")
    func einsumRefusals() {
        let cases: [(String, [[Int]])] = [("ij->ij", [[2, 3, 4]]), ("ij,jk->ik", [[2, 3]]), ("ij->k", [[2, 3]]),
                                          ("ij,jk->ik", [[2, 3], [4, 5]]), ("i1->i", [[2, 3]]), ("ij->ii", [[2, 2]])]
        for (equation, shapes) in cases {
            let names = shapes.indices.map { "x\($0)" }
            let graph = Self.graph("Einsum", zip(names, shapes).map { ($0, .float32, $1) }, output: .float32,
                                   attributes: ["equation": .string(equation)])
            do {
                _ = try NeuronCompiler.compile(graph)
                Issue.record("\(equation) over \(shapes) compiled")
            } catch {
                #expect(error.message.contains("Einsum"), "\(equation): \(error)")
            }
        }
    }
}

/// GatherElements and GatherND: flat indices computed on the NeuronCore,
/// against the definitions, with negative indices, batch_dims, and an
/// index out of range, which fails the run instead of reading elsewhere.
@Suite("neuron-cc: GatherElements and GatherND")
struct GatherOpTests {
    @Test("GatherElements picks along any axis, negative indices from the end; out of range fails the run")
    func gatherElements() throws {
        let dims = [3, 4, 5]
        let data = (0..<60).map { Double($0) * 1.5 - 7 }
        for axis in 0..<3 {
            var shape = dims
            shape[axis] = 2
            shape[(axis + 1) % 3] -= 1   // smaller than the data on another axis too
            let count = shape.reduce(1, *)
            let indices = (0..<count).map { Double(($0 * 7 + axis) % (2 * dims[axis]) - dims[axis]) }
            let graph = ScanEinsumTests.graph("GatherElements", [("d", .float32, dims), ("i", .int64, shape)], output: .float32,
                                              attributes: ["axis": .int(axis)])
            let (model, _) = try NeuronCompiler.compile(graph)
            let got = NeuronDType.float32.values(try runBytes(model, ["d": NeuronDType.float32.bytes(data),
                                                                      "i": NeuronDType.int64.bytes(indices)])["y"] ?? [])
            var want: [Double] = []
            forEachIndex(shape) { at in
                var source = at
                let raw = Int(indices[want.count])
                source[axis] = raw < 0 ? raw + dims[axis] : raw
                want.append(data[(source[0] * 4 + source[1]) * 5 + source[2]])
            }
            #expect(got == want, "axis \(axis)")
        }
        let graph = ScanEinsumTests.graph("GatherElements", [("d", .float32, [2, 3]), ("i", .int32, [2, 1])], output: .float32,
                                          attributes: ["axis": .int(1)])
        let (model, _) = try NeuronCompiler.compile(graph)
        for bad in [3.0, -4] {
            #expect(throws: (any Error).self, "index \(bad)") {
                try runBytes(model, ["d": NeuronDType.float32.bytes([1, 2, 3, 4, 5, 6]), "i": NeuronDType.int32.bytes([0, bad])])
            }
        }
    }

    @Test("GatherND picks rows and elements, with batch_dims, negative indices from the end")
    func gatherND() throws {
        let data = (0..<24).map { Double($0) }   // [2, 3, 4]
        // batch_dims 0: [[1, -1], [0, 2]] picks rows [1, 3] and [0, 2] of the last axis.
        let rows = ScanEinsumTests.graph("GatherND", [("d", .float32, [2, 3, 4]), ("i", .int64, [2, 2])], output: .float32)
        let (rowModel, _) = try NeuronCompiler.compile(rows)
        let picked = NeuronDType.float32.values(try runBytes(rowModel, ["d": NeuronDType.float32.bytes(data),
                                                                        "i": NeuronDType.int64.bytes([1, -1, 0, 2])])["y"] ?? [])
        #expect(picked == [20, 21, 22, 23, 8, 9, 10, 11])
        // batch_dims 1: per batch b, element [i, j] of data[b].
        let batched = ScanEinsumTests.graph("GatherND", [("d", .float32, [2, 3, 4]), ("i", .int64, [2, 1, 2])], output: .float32,
                                            attributes: ["batch_dims": .int(1)])
        let (batchModel, _) = try NeuronCompiler.compile(batched)
        let elements = NeuronDType.float32.values(try runBytes(batchModel, ["d": NeuronDType.float32.bytes(data),
                                                                            "i": NeuronDType.int64.bytes([2, -1, 0, 1])])["y"] ?? [])
        #expect(elements == [11, 13])
        let wrong = ScanEinsumTests.graph("GatherND", [("d", .float32, [2, 3]), ("i", .int64, [1, 3])], output: .float32)
        #expect(throws: NeuronCompilerError.self) { try NeuronCompiler.compile(wrong) }
    }
}

@Suite("neuron-cc: RotaryEmbedding")
struct RotaryEmbeddingTests {
    @Test("RotaryEmbedding turns pairs (halves or interleaved) of the first rotary_embedding_dim by the cached angles of each position",
          arguments: [false, true])
    func rotary(_ interleaved: Bool) throws {
        let (b, h, s, d, rotary, positions) = (2, 3, 4, 8, 6, 10)
        let x = (0..<(b * h * s * d)).map { Double(($0 * 13) % 17) / 8 - 1 }
        let angles = (0..<(positions * rotary / 2)).map { Double($0) * 0.37 }
        let cos = angles.map { Foundation.cos($0) }, sin = angles.map { Foundation.sin($0) }
        let ids = (0..<(b * s)).map { Double(($0 * 3) % positions) }
        let graph = ScanEinsumTests.graph("RotaryEmbedding", [("x", .float32, [b, h, s, d]), ("c", .float32, [positions, rotary / 2]),
                                                               ("n", .float32, [positions, rotary / 2]), ("p", .int64, [b, s])],
                                          output: .float32,
                                          attributes: ["interleaved": .int(interleaved ? 1 : 0), "rotary_embedding_dim": .int(rotary)])
        let (model, _) = try NeuronCompiler.compile(graph)
        let got = NeuronDType.float32.values(try runBytes(model, [
            "x": NeuronDType.float32.bytes(x), "c": NeuronDType.float32.bytes(cos.map { Double(Float($0)) }),
            "n": NeuronDType.float32.bytes(sin.map { Double(Float($0)) }), "p": NeuronDType.int64.bytes(ids)])["y"] ?? [])
        var want = x.map { Double(Float($0)) }
        for batch in 0..<b {
            for head in 0..<h {
                for t in 0..<s {
                    let base = ((batch * h + head) * s + t) * d, p = Int(ids[batch * s + t])
                    for i in 0..<(rotary / 2) {
                        let (a, c) = interleaved ? (base + 2 * i, base + 2 * i + 1) : (base + i, base + rotary / 2 + i)
                        let co = Double(Float(cos[p * rotary / 2 + i])), si = Double(Float(sin[p * rotary / 2 + i]))
                        want[a] = co * x[a] - si * x[c]
                        want[c] = si * x[a] + co * x[c]
                    }
                }
            }
        }
        #expect(got.count == want.count && zip(got, want).allSatisfy { abs($0 - $1) < 1e-6 }, "\(got) vs \(want)")
    }
}

@Suite("neuron-cc: pooling by axes")
struct PoolingByAxesTests {
    /// Pooling of x [1, 2, D, H, W] by definition: every window position
    /// inside the input (max, or the sum over the count) or the padding.
    static func pool(_ x: [Double], dims: [Int], kernel: [Int], strides: [Int], dilations: [Int], pads: [Int],
                     out: [Int], max: Bool, includePad: Bool) -> [Double] {
        var result: [Double] = []
        for c in 0..<2 {
            forEachIndex(out) { o in
                var best = -Double.infinity, sum = 0.0, count = 0
                forEachIndex(kernel) { k in
                    let at = (0..<3).map { o[$0] * strides[$0] - pads[$0] + k[$0] * dilations[$0] }
                    let inside = (0..<3).allSatisfy { (0..<dims[$0]).contains(at[$0]) }
                    let inPadding = (0..<3).allSatisfy { (-pads[$0]..<(dims[$0] + pads[$0 + 3])).contains(at[$0]) }
                    if inside {
                        let v = x[((c * dims[0] + at[0]) * dims[1] + at[1]) * dims[2] + at[2]]
                        best = Swift.max(best, v)
                        sum += v
                    }
                    if inside || (includePad && inPadding) { count += 1 }
                }
                result.append(max ? best : sum / Double(count))
            }
        }
        return result
    }

    @Test("3-D MaxPool and AveragePool with strides, dilations, pads and ceil_mode equal their definitions",
          arguments: [(false, false), (true, false), (true, true)])
    func pool3d(_ ceil: Bool, _ includePad: Bool) throws {
        let dims = [5, 6, 7], kernel = [2, 3, 2], strides = [2, 1, 3], dilations = [1, 2, 2]
        let pads = [1, 0, 1, 1, 2, 0]
        let x: [Double] = (0..<420).map { (i: Int) -> Double in Double((i * 29) % 31) / 4 - 3 }
        var out: [Int] = []
        for a in 0..<3 {
            let span = (kernel[a] - 1) * dilations[a] + 1, room = dims[a] + pads[a] + pads[a + 3] - span
            var n = (ceil ? (room + strides[a] - 1) / strides[a] : room / strides[a]) + 1
            if ceil, (n - 1) * strides[a] >= dims[a] + pads[a] { n -= 1 }
            out.append(n)
        }
        for op in ["MaxPool", "AveragePool"] {
            var attributes: [String: AttributeValue] = ["kernel_shape": .ints(kernel), "strides": .ints(strides), "dilations": .ints(dilations),
                                                        "pads": .ints(pads), "ceil_mode": .int(ceil ? 1 : 0)]
            if op == "AveragePool" { attributes["count_include_pad"] = .int(includePad ? 1 : 0) }
            let graph = ScanEinsumTests.graph(op, [("x", .float32, [1, 2] + dims)], output: .float32, attributes: attributes)
            let (model, _) = try NeuronCompiler.compile(graph)
            let got = NeuronDType.float32.values(try runBytes(model, ["x": NeuronDType.float32.bytes(x)])["y"] ?? [])
            let want = Self.pool(x, dims: dims, kernel: kernel, strides: strides, dilations: dilations, pads: pads,
                                 out: out, max: op == "MaxPool", includePad: includePad)
            #expect(got.count == want.count && zip(got, want).allSatisfy { abs($0 - $1) < 1e-5 }, "\(op): \(got) vs \(want)")
        }
    }
}

@Suite("neuron-cc: CausalConvWithState, ReverseSequence, DynamicQuantizeLinear, SwiGLU")
struct SequenceOpTests {
    @Test("CausalConvWithState: taps over the past state and the input, bias, SiLU; the state is the last k − 1 steps")
    func causalConv() throws {
        let (b, c, l, k) = (2, 3, 5, 3)
        let x = (0..<(b * c * l)).map { Double(($0 * 7) % 9) / 4 - 1 }
        let w = (0..<(c * k)).map { Double(($0 * 5) % 7) / 4 - 0.5 }
        let past = (0..<(b * c * (k - 1))).map { Double($0 % 4) - 1.5 }
        let bias: [Double] = [0.25, -0.5, 1]
        var graph = ScanEinsumTests.graph("CausalConvWithState", [("x", .float32, [b, c, l]), ("w", .float32, [c, 1, k]),
                                                                   ("bias", .float32, [c]), ("past", .float32, [b, c, k - 1])],
                                          output: .float32, attributes: ["activation": .string("silu")])
        graph.outputs.append(ValueInfo(name: "state", type: .float32, shape: nil))
        graph.nodes[0].outputs = ["y", "state"]
        let (model, _) = try NeuronCompiler.compile(graph)
        let out = try runBytes(model, ["x": NeuronDType.float32.bytes(x), "w": NeuronDType.float32.bytes(w),
                                       "bias": NeuronDType.float32.bytes(bias), "past": NeuronDType.float32.bytes(past)])
        let y = NeuronDType.float32.values(out["y"] ?? []), state = NeuronDType.float32.values(out["state"] ?? [])
        var wantY: [Double] = [], wantState: [Double] = []
        for n in 0..<b {
            for ch in 0..<c {
                let padded = Array(past[((n * c + ch) * (k - 1))..<((n * c + ch + 1) * (k - 1))]) + Array(x[((n * c + ch) * l)..<((n * c + ch + 1) * l)])
                for t in 0..<l {
                    let v = (0..<k).reduce(bias[ch]) { $0 + padded[t + $1] * w[ch * k + $1] }
                    wantY.append(v / (1 + Foundation.exp(-v)))
                }
                wantState += padded.suffix(k - 1)
            }
        }
        #expect(y.count == wantY.count && zip(y, wantY).allSatisfy { abs($0 - $1) < 1e-5 }, "\(y) vs \(wantY)")
        #expect(state == wantState.map { Double(Float($0)) })
    }

    @Test("ReverseSequence reverses each batch's first sequence_lens steps, along either axis")
    func reverseSequence() throws {
        let x = (0..<12).map(Double.init)   // [3, 4]
        for (batchAxis, timeAxis, lengths, want) in [
            (0, 1, [4.0, 1, 2], [3.0, 2, 1, 0, 4, 5, 6, 7, 9, 8, 10, 11]),
            (1, 0, [3.0, 2, 1, 0], [8.0, 5, 2, 3, 4, 1, 6, 7, 0, 9, 10, 11]),
        ] {
            let graph = ScanEinsumTests.graph("ReverseSequence", [("x", .float32, [3, 4]), ("n", .int64, [batchAxis == 0 ? 3 : 4])],
                                              output: .float32, attributes: ["batch_axis": .int(batchAxis), "time_axis": .int(timeAxis)])
            let (model, _) = try NeuronCompiler.compile(graph)
            let got = NeuronDType.float32.values(try runBytes(model, ["x": NeuronDType.float32.bytes(x), "n": NeuronDType.int64.bytes(lengths)])["y"] ?? [])
            #expect(got == want, "batch_axis \(batchAxis)")
        }
    }

    @Test("DynamicQuantizeLinear: the range includes 0, a constant input gets scale 1/255, y saturates at 0 and 255")
    func dynamicQuantize() throws {
        var graph = ScanEinsumTests.graph("DynamicQuantizeLinear", [("x", .float32, [4])], output: .uint8)
        graph.outputs += [ValueInfo(name: "scale", type: .float32, shape: nil), ValueInfo(name: "zp", type: .uint8, shape: nil)]
        graph.nodes[0].outputs = ["y", "scale", "zp"]
        let (model, _) = try NeuronCompiler.compile(graph)
        for (x, scale, zp, y) in [([1.0, 2, 3, 5.1], 5.1 / 255, 0.0, [50.0, 100, 150, 255]),
                                  ([-2.0, -1, 0, 3], 5.0 / 255, 102, [0.0, 51, 102, 255]),
                                  ([0.0, 0, 0, 0], 1.0 / 255, 0, [0.0, 0, 0, 0])] {
            let out = try runBytes(model, ["x": NeuronDType.float32.bytes(x)])
            #expect(NeuronDType.float32.values(out["scale"] ?? []) == [Double(Float(scale))], "\(x)")
            #expect(NeuronDType.uint8.values(out["zp"] ?? []) == [zp], "\(x)")
            #expect(NeuronDType.uint8.values(out["y"] ?? []) == y, "\(x)")
        }
    }
}

@Suite("neuron-cc: Upsample and training-mode Dropout")
struct LegacyOpTests {
    @Test("Upsample (opset 9) repeats by its scales; Dropout in training mode passes a ratio of 0 and refuses others")
    func upsampleAndDropout() throws {
        let up = ScanEinsumTests.graph("Upsample", [("x", .float32, [1, 1, 2, 2])], output: .float32,
                                       attributes: ["mode": .string("nearest")],
                                       constants: ["scales": .make(.float32, [4], [1, 1, 2, 3])])
        let (model, _) = try NeuronCompiler.compile(up)
        let got = NeuronDType.float32.values(try runBytes(model, ["x": NeuronDType.float32.bytes([1, 2, 3, 4])])["y"] ?? [])
        #expect(got == [1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4])
        for (ratio, compiles) in [(0.0, true), (0.25, false)] {
            var graph = ScanEinsumTests.graph("Dropout", [("x", .float32, [3])], output: .float32,
                                              constants: ["r": .make(.float32, [], [ratio]), "t": .make(.bool, [], [1])])
            graph.nodes[0].inputs = ["x", "r", "t"]
            if compiles {
                let (dropout, _) = try NeuronCompiler.compile(graph)
                let y = NeuronDType.float32.values(try runBytes(dropout, ["x": NeuronDType.float32.bytes([1, -2, 3])])["y"] ?? [])
                #expect(y == [1, -2, 3])
            } else {
                expectCompileError(.unsupported, mentioning: ["training_mode=true", "random"]) { () throws(NeuronCompilerError) in
                    try NeuronCompiler.compile(graph)
                }
            }
        }
    }
}
