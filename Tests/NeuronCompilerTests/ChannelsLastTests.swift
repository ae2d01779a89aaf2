import Foundation
@testable import NeuronCompiler
import NeuronISA
import NeuronNEFF
import Testing
import TestSupport

/// Channels last between depthwise and pointwise layers (docs/compiler.md):
/// an inverted residual block (1x1 with ReLU6, depthwise 3x3 with ReLU6,
/// 1x1, the block's input added) runs as MATMUL (relu and bound in it),
/// CONV2D reading and writing channels last in place, MATMUL, one add; and
/// gives the chains of the planes-first layers bit for bit (the residual
/// added after the last product).
@Suite("Compiler: channels last")
struct ChannelsLastTests {
    /// The graph compiled, and its program's instructions.
    func compiled(_ graph: Onnx_GraphProto) throws -> (NEFFModel, [NeuronEngine.InstructionSummary]) {
        let (model, _) = try NeuronCompiler.compile(try ONNXImporter.load(try ONNXBuilder.bytes(ONNXBuilder.model(graph))))
        let program = try #require(model.programs.first)
        let sizes = program.slots.map { name in UInt64(name.flatMap { model.tensor(named: $0)?.byteCount } ?? 0) }
        return (model, try NeuronEngine.instructions(program.image, slotSizes: sizes))
    }

    @Test("two inverted residual blocks run channels last with no copy between them, with the planes' bits",
          arguments: [(16, 9, 9), (24, 6, 11), (16, 1, 20)])
    func invertedResidual(_ shape: (Int, Int, Int)) throws {
        let (c, h, w) = shape
        let e = 3 * c
        let x = sample(c * h * w, seed: 5).map { $0 * 3 }
        let expand = sample(e * c, seed: 6), expandBias = sample(e, seed: 7)
        let depthwise = sample(e * 9, seed: 8), depthwiseBias = sample(e, seed: 9)
        let project = sample(c * e, seed: 10), projectBias = sample(c, seed: 11)
        var graph = Onnx_GraphProto()
        graph.name = "blocks"
        graph.input = [ONNXBuilder.value("x", .float, [1, c, h, w])]
        graph.output = [ONNXBuilder.value("y", .float, [1, c, h, w])]
        func tensor(_ name: String, _ dims: [Int], _ values: [Float]) -> Onnx_TensorProto {
            var t = ONNXBuilder.tensor(name, .float, dims.map(Int64.init))
            t.floatData = values
            return t
        }
        graph.initializer = [tensor("we", [e, c, 1, 1], expand), tensor("be", [e], expandBias),
                             tensor("wd", [e, 1, 3, 3], depthwise), tensor("bd", [e], depthwiseBias),
                             tensor("wp", [c, e, 1, 1], project), tensor("bp", [c], projectBias),
                             tensor("lo", [], [0]), tensor("hi", [], [6])]
        // Two blocks of the same weights: x -> y1 -> y (the first sum read by the second block).
        for (block, (input, output)) in [("x", "y1"), ("y1", "y")].enumerated() {
            let b = "b\(block)_"
            graph.node += [ONNXBuilder.node("Conv", [input, "we", "be"], [b + "e"], name: b + "expand"),
                           ONNXBuilder.node("Clip", [b + "e", "lo", "hi"], [b + "e6"], name: b + "expand_relu6"),
                           ONNXBuilder.node("Conv", [b + "e6", "wd", "bd"], [b + "d"], name: b + "depthwise",
                                            [ONNXBuilder.attribute("pads", ints: [1, 1, 1, 1]),
                                             ONNXBuilder.attribute("group", int: Int64(e))]),
                           ONNXBuilder.node("Clip", [b + "d", "lo", "hi"], [b + "d6"], name: b + "depthwise_relu6"),
                           ONNXBuilder.node("Conv", [b + "d6", "wp", "bp"], [b + "p"], name: b + "project"),
                           ONNXBuilder.node("Add", [b + "p", input], [output], name: b + "add")]
        }
        let (model, list) = try compiled(graph)
        let names = ["MATMUL", "CONV2D", "MATMUL", "BINARY.add"]
        #expect(list.map(\.name) == names + names, "\(list.map(\.name))")
        // The depthwise layers' operands, and the first sum, channels last.
        let views = list.filter { $0.name == "CONV2D" }.flatMap { $0.operands.prefix(2) }
            + list.filter { $0.name == "BINARY.add" }.prefix(1).flatMap { $0.operands.prefix(1) }
        for operand in views where h * w > 1 {
            #expect(operand.strides[1] == 1 && (operand.strides[3] == UInt64(e) || operand.strides[3] == UInt64(c)),
                    "channels last: \(operand)")
        }
        // The planes' chains: products over input channels in order, the
        // depthwise taps in order skipping the padding, bias, relu, bound.
        func relu6(_ v: Float) -> Float {
            let r = v > 0 || v.isNaN ? v : 0
            return r < 6 || r.isNaN ? r : 6
        }
        func block(_ x: [Float]) -> [Float] {
            var a = [Float](repeating: 0, count: e * h * w), d = a
            for o in 0..<e { for p in 0..<(h * w) {
                var acc: Float = 0
                for i in 0..<c { acc = acc.addingProduct(x[i * h * w + p], expand[o * c + i]) }
                a[o * h * w + p] = relu6(acc + expandBias[o])
            } }
            for o in 0..<e { for y in 0..<h { for z in 0..<w {
                var acc: Float = 0
                for i in 0..<3 { for j in 0..<3 where (0..<h).contains(y + i - 1) && (0..<w).contains(z + j - 1) {
                    acc = acc.addingProduct(a[(o * h + y + i - 1) * w + z + j - 1], depthwise[o * 9 + i * 3 + j])
                } }
                d[(o * h + y) * w + z] = relu6(acc + depthwiseBias[o])
            } } }
            var out = [Float](repeating: 0, count: c * h * w)
            for o in 0..<c { for p in 0..<(h * w) {
                var acc: Float = 0
                for i in 0..<e { acc = acc.addingProduct(d[i * h * w + p], project[o * e + i]) }
                out[o * h * w + p] = (acc + projectBias[o]) + x[o * h * w + p]
            } }
            return out
        }
        let want = block(block(x))
        let got = try run(model, ["x": x])["y"] ?? []
        #expect(got.count == want.count)
        let wrong = zip(got, want).filter { $0.0.bitPattern != $0.1.bitPattern }.count
        #expect(wrong == 0, "\(wrong) of \(want.count) outputs differ")
    }

    /// EfficientNet's blocks: a pointwise layer, swish (Sigmoid and Mul,
    /// fused into one SILU) and a depthwise layer of stride 2 after a Pad.
    /// The swish runs over the image channels last, with no copy into
    /// planes before it, and gives the bits of the same graph with the
    /// swish's result an output too (which keeps it in planes).
    @Test("swish between a pointwise and a depthwise layer runs channels last, with the planes' bits")
    func swishChannelsLast() throws {
        let (c, e, h, w) = (8, 24, 10, 10)
        let x = sample(c * h * w, seed: 15).map { $0 * 3 }
        func tensor(_ name: String, _ dims: [Int], _ values: [Float]) -> Onnx_TensorProto {
            var t = ONNXBuilder.tensor(name, .float, dims.map(Int64.init))
            t.floatData = values
            return t
        }
        func graph(swishOut: Bool) -> Onnx_GraphProto {
            var graph = Onnx_GraphProto()
            graph.name = "swish"
            graph.input = [ONNXBuilder.value("x", .float, [1, c, h, w])]
            graph.output = [ONNXBuilder.value("y", .float, [1, e, 5, 5])]
                + (swishOut ? [ONNXBuilder.value("s", .float, [1, e, h, w])] : [])
            var pads = ONNXBuilder.tensor("pads", .int64, [8])
            pads.int64Data = [0, 0, 0, 0, 0, 0, 1, 1]
            graph.initializer = [tensor("we", [e, c, 1, 1], sample(e * c, seed: 16)), tensor("be", [e], sample(e, seed: 17)),
                                 tensor("wd", [e, 1, 3, 3], sample(e * 9, seed: 18)), tensor("bd", [e], sample(e, seed: 19)),
                                 pads]
            graph.node = [ONNXBuilder.node("Conv", ["x", "we", "be"], ["p"], name: "expand"),
                          ONNXBuilder.node("Sigmoid", ["p"], ["g"], name: "gate"),
                          ONNXBuilder.node("Mul", ["p", "g"], ["s"], name: "swish"),
                          ONNXBuilder.node("Pad", ["s", "pads"], ["sp"], name: "pad"),
                          ONNXBuilder.node("Conv", ["sp", "wd", "bd"], ["y"], name: "depthwise",
                                           [ONNXBuilder.attribute("strides", ints: [2, 2]),
                                            ONNXBuilder.attribute("group", int: Int64(e))])]
            return graph
        }
        let (model, list) = try compiled(graph(swishOut: false))
        #expect(list.map(\.name) == ["MATMUL", "UNARY.silu", "CONV2D"], "\(list.map(\.name))")
        for operand in list.filter({ $0.name == "UNARY.silu" }).flatMap(\.operands) {
            #expect(operand.strides[1] == 1 && operand.strides[3] == UInt64(e), "channels last: \(operand)")
        }
        let (planes, planesList) = try compiled(graph(swishOut: true))
        for operand in planesList.filter({ $0.name == "UNARY.silu" }).flatMap(\.operands) {
            #expect(operand.strides[3] == 1, "planes: \(operand)")
        }
        let got = try run(model, ["x": x])["y"] ?? [], want = try run(planes, ["x": x])["y"] ?? []
        #expect(got.count == e * 25 && got.map(\.bitPattern) == want.map(\.bitPattern))
    }

    @Test("a stem of three channels writes channels last for the depthwise layer after it, with the planes' bits")
    func stem() throws {
        let (h, w, c) = (14, 17, 16)   // 9 output columns: engine_narrow.c takes 8 or more
        let (ho, wo) = ((h + 2 - 3) / 2 + 1, (w + 2 - 3) / 2 + 1)
        let x = sample(3 * h * w, seed: 21), stem = sample(c * 27, seed: 22), dw = sample(c * 9, seed: 23)
        let project = sample(c * c, seed: 24)
        var graph = Onnx_GraphProto()
        graph.name = "stem"
        graph.input = [ONNXBuilder.value("x", .float, [1, 3, h, w])]
        graph.output = [ONNXBuilder.value("y", .float, [1, c, ho, wo])]
        func tensor(_ name: String, _ dims: [Int], _ values: [Float]) -> Onnx_TensorProto {
            var t = ONNXBuilder.tensor(name, .float, dims.map(Int64.init))
            t.floatData = values
            return t
        }
        graph.initializer = [tensor("ws", [c, 3, 3, 3], stem), tensor("wd", [c, 1, 3, 3], dw), tensor("wp", [c, c, 1, 1], project)]
        let pads = ONNXBuilder.attribute("pads", ints: [1, 1, 1, 1])
        graph.node = [ONNXBuilder.node("Conv", ["x", "ws"], ["s"], name: "stem", [pads, ONNXBuilder.attribute("strides", ints: [2, 2])]),
                      ONNXBuilder.node("Relu", ["s"], ["r"], name: "relu"),
                      ONNXBuilder.node("Conv", ["r", "wd"], ["d"], name: "depthwise", [pads, ONNXBuilder.attribute("group", int: Int64(c))]),
                      ONNXBuilder.node("Conv", ["d", "wp"], ["y"], name: "project")]
        let (model, list) = try compiled(graph)
        #expect(list.map(\.name) == ["CONV2D.packed", "CONV2D", "MATMUL", "COPY"], "\(list.map(\.name))")
        let out = try #require(list.first?.operands.first)
        #expect(out.strides[1] == 1 && out.strides[3] == UInt64(c), "the stem's output channels last: \(out)")
        // The chains: the stem's over its window (the padding times zero), relu;
        // the depthwise taps inside; the product over channels.
        var s = [Float](repeating: 0, count: c * ho * wo), d = s, want = s
        for o in 0..<c { for y in 0..<ho { for z in 0..<wo {
            var acc: Float = 0
            for i in 0..<3 { for a in 0..<3 { for b in 0..<3 {
                let (iy, ix) = (y * 2 - 1 + a, z * 2 - 1 + b)
                let v = (0..<h).contains(iy) && (0..<w).contains(ix) ? x[(i * h + iy) * w + ix] : 0
                acc = acc.addingProduct(v, stem[((o * 3 + i) * 3 + a) * 3 + b])
            } } }
            s[(o * ho + y) * wo + z] = acc > 0 || acc.isNaN ? acc : 0
        } } }
        for o in 0..<c { for y in 0..<ho { for z in 0..<wo {
            var acc: Float = 0
            for a in 0..<3 { for b in 0..<3 where (0..<ho).contains(y + a - 1) && (0..<wo).contains(z + b - 1) {
                acc = acc.addingProduct(s[(o * ho + y + a - 1) * wo + z + b - 1], dw[o * 9 + a * 3 + b])
            } }
            d[(o * ho + y) * wo + z] = acc
        } } }
        for o in 0..<c { for p in 0..<(ho * wo) {
            var acc: Float = 0
            for i in 0..<c { acc = acc.addingProduct(d[i * ho * wo + p], project[o * c + i]) }
            want[o * ho * wo + p] = acc
        } }
        let got = try run(model, ["x": x])["y"] ?? []
        let wrong = zip(got, want).filter { $0.0.bitPattern != $0.1.bitPattern }.count
        #expect(got.count == want.count && wrong == 0, "\(wrong) of \(want.count) outputs differ")
    }
}
