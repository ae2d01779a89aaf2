/// Graph rewrites that save whole passes over memory on this engine:
/// - Conv then BatchNormalization (constant statistics): the scale and
///   shift go into the convolution's weights and bias;
/// - Conv then Relu: the convolution's relu flag; Conv then Clip from 0
///   (ReLU6): the flag, and a constant upper bound the convolution's
///   clamp (ISA 1.12), or else the Clip left with it;
/// - Conv then Add of another computed value (a residual): the sums start
///   from it, in its own buffer;
/// - MatMul of a 2-D B then Add of a constant [N]: the matmul's bias;
/// - Pad with zeros of the spatial axes only, then Conv: the convolution's
///   own padding (exporters write Keras' and TensorFlow's "same" padding of
///   strided convolutions so), which costs no copy;
/// - Conv then Mul by a constant per output channel (or one for all): the
///   scale goes into the weights and bias (tf2onnx leaves a depthwise
///   convolution's batch norm so);
/// - Sigmoid of x then Mul by x (swish, SiLU): ONNX's Swish, one UNARY
///   SILU with the same bits (half-precision values are rounded once for
///   the pair instead of after each).
/// Each applies only where the first node's output feeds nothing else.
/// It runs after the layer norm and GELU patterns (Patterns.swift).
enum Fusion {
    static func run(_ graph: Graph) -> (Graph, fused: Int) {
        var graph = graph, fused = 0
        var changed = true
        while changed {
            changed = false
            let readers = readerCounts(graph)
            for (index, node) in graph.nodes.enumerated() {
                guard let output = node.outputs.first, readers[output] == 1,
                      let nextIndex = graph.nodes.firstIndex(where: { $0.inputs.contains(output) }),
                      nextIndex > index else { continue }
                let next = graph.nodes[nextIndex]
                // A clamped convolution is finished: its bound comes last.
                if node.attributes["neuron.clamp"] != nil { continue }
                // Conv then Clip from 0 (ReLU6): the relu flag, and the Clip
                // keeps only its upper bound. Relu keeps NaN and makes -0 +0,
                // as MAX(x, 0) does: the same bits.
                if node.op == "Conv", next.op == "Clip", next.inputs.first == output, next.inputs.count == 3,
                   !next.inputs[2].isEmpty, node.attributes["neuron.relu"] == nil,
                   let low = graph.constants[next.inputs[1]], low.type == .float32, low.doubles() == [0] {
                    graph.nodes[index].attributes["neuron.relu"] = .int(1)
                    graph.nodes[nextIndex].inputs[1] = ""
                    fused += 1
                    changed = true
                    break
                }
                var replacement: Node?
                switch (node.op, next.op) {
                case ("Conv", "Clip") where next.inputs.count == 3 && next.inputs[1].isEmpty:
                    // A Clip left with its upper bound only (above, or as
                    // written): the convolution's clamp, when the bound is one
                    // float32 constant (MIN against it, the same bits).
                    if let high = graph.constants[next.inputs[2]], high.type == .float32, high.count == 1,
                       let bound = high.doubles().first, !bound.isNaN {
                        var conv = node
                        conv.attributes["neuron.clamp"] = .float(Float(bound))
                        replacement = conv
                    }
                case ("Conv", "BatchNormalization"):
                    replacement = foldBatchNorm(into: node, next, &graph)
                case ("Conv", "Relu") where node.attributes["neuron.relu"] == nil:
                    var conv = node
                    conv.attributes["neuron.relu"] = .int(1)
                    replacement = conv
                case ("MatMul", "Add") where node.inputs.count == 2:
                    replacement = foldBias(into: node, next, output: output, graph)
                case ("Conv", "Add"):
                    replacement = residual(into: node, next, output: output, graph)
                case ("Pad", "Conv") where next.inputs.first == output:
                    replacement = foldPad(node, into: next, graph)
                case ("Sigmoid", "Mul") where next.inputs.count == 2 && node.inputs.count == 1
                                           && next.inputs.contains(node.inputs[0]):
                    // x · sigmoid(x) (Keras' swish, tf2onnx's Sigmoid and
                    // Mul): ONNX's Swish, one UNARY SILU.
                    replacement = Node(name: node.name, op: "Swish", inputs: node.inputs, outputs: [])
                case ("Conv", "Mul") where node.attributes["neuron.relu"] == nil
                                        && node.attributes["neuron.residual"] == nil:
                    replacement = foldScale(into: node, next, output: output, &graph)
                default:
                    break
                }
                guard var merged = replacement else { continue }
                let atNext = merged.attributes["neuron.residual"] != nil || node.op == "Pad"
                merged.outputs = [next.outputs.first ?? ""]
                merged.name = "\(node.name)+\(next.name)"
                merged.fusedFrom = node.origins + next.origins
                if atNext {
                    // At the second node's place: the residual may be computed
                    // after the Conv, the Conv's weights after the Pad.
                    graph.nodes[nextIndex] = merged
                    graph.nodes.remove(at: index)
                } else {
                    graph.nodes[index] = merged
                    graph.nodes.remove(at: nextIndex)
                }
                fused += 1
                changed = true
                break
            }
        }
        return (graph, fused)
    }

    /// How many nodes (and graph outputs) read each value.
    static func readerCounts(_ graph: Graph) -> [String: Int] {
        var counts: [String: Int] = [:]
        for node in graph.nodes {
            for input in node.reads where !input.isEmpty { counts[input, default: 0] += 1 }
        }
        for output in graph.outputs { counts[output.name, default: 0] += 1 }
        return counts
    }

    static func foldBatchNorm(into conv: Node, _ bn: Node, _ graph: inout Graph) -> Node? {
        guard bn.inputs.count >= 5, bn.outputs.dropFirst().allSatisfy(\.isEmpty),
              bn.attributes["training_mode"] == nil || bn.attributes["training_mode"] == .int(0),
              conv.inputs.count >= 2, let weight = graph.constants[conv.inputs[1]], weight.type == .float32,
              weight.shape.count >= 3, weight.shape.allSatisfy({ $0 >= 1 }), weight.count > 0 else { return nil }
        let channels = weight.shape[0]
        let params = bn.inputs[1...4].map { graph.constants[$0]?.doubles() }
        guard params.allSatisfy({ $0?.count == channels }) else { return nil }
        let (scale, shift, mean, variance) = (params[0]!, params[1]!, params[2]!, params[3]!)
        var epsilon = 1e-5
        if case .float(let value)? = bn.attributes["epsilon"] { epsilon = Double(value) }
        let factors = (0..<channels).map { Double(Float(scale[$0] / (variance[$0] + epsilon).squareRoot())) }
        return rescaled(conv, weight, factors: factors, name: "\(bn.name)#fused", &graph) { c, bias, factor in
            (bias - mean[c]) * factor + shift[c]
        }
    }

    /// `conv` with output channel c's weights times `factors[c]` and its
    /// bias `newBias(c, bias, factors[c])` (bias 0 when it has none), as
    /// constants named after `name`; nil when its bias is not a constant.
    static func rescaled(_ conv: Node, _ weight: ConstantTensor, factors: [Double], name: String, _ graph: inout Graph,
                         newBias: (Int, Double, Double) -> Double) -> Node? {
        let channels = weight.shape[0]
        var bias = [Double](repeating: 0, count: channels)
        if conv.inputs.count > 2, !conv.inputs[2].isEmpty {
            guard let given = graph.constants[conv.inputs[2]]?.doubles(), given.count == channels else { return nil }
            bias = given
        }
        let per = weight.count / channels
        let w = weight.doubles()
        var weights = [Double](repeating: 0, count: w.count), biases = [Double](repeating: 0, count: channels)
        for c in 0..<channels {
            for i in 0..<per { weights[c * per + i] = w[c * per + i] * factors[c] }
            biases[c] = newBias(c, bias[c], factors[c])
        }
        let weightName = "\(name)_weight", biasName = "\(name)_bias"
        graph.constants[weightName] = .make(.float32, weight.shape, weights)
        graph.constants[biasName] = .make(.float32, [channels], biases)
        var merged = conv
        merged.inputs = [conv.inputs[0], weightName, biasName]
        return merged
    }

    /// Conv (constant weights, one group, no relu yet) then Add of another
    /// computed value: the convolution's sums start from that value
    /// (input 3); a Relu after the Add then fuses as the relu flag.
    static func residual(into conv: Node, _ add: Node, output: String, _ graph: Graph) -> Node? {
        guard add.inputs.count == 2, conv.attributes["neuron.relu"] == nil, conv.attributes["neuron.residual"] == nil,
              (2...3).contains(conv.inputs.count),
              let weight = graph.constants[conv.inputs[1]], weight.type == .float32,
              conv.attributes["group"] == nil || conv.attributes["group"] == .int(1) else { return nil }
        let other = add.inputs[0] == output ? add.inputs[1] : add.inputs[0]
        guard !other.isEmpty, graph.constants[other] == nil else { return nil }
        var merged = conv
        merged.inputs = [conv.inputs[0], conv.inputs[1], conv.inputs.count > 2 ? conv.inputs[2] : "", other]
        merged.attributes["neuron.residual"] = .int(1)
        return merged
    }

    /// Pad (constant mode, zeros, pads known) of only the spatial axes of
    /// a Conv's input: the Conv with those pads added to its own. The
    /// Conv's weights give the rank.
    static func foldPad(_ pad: Node, into conv: Node, _ graph: Graph) -> Node? {
        guard pad.domain.isEmpty, conv.domain.isEmpty, conv.inputs.count >= 2,
              let rank = graph.constants[conv.inputs[1]]?.shape.count, (3...4).contains(rank) else { return nil }
        if case .string(let mode)? = pad.attributes["mode"], mode != "constant" { return nil }
        switch conv.attributes["auto_pad"] {
        case nil, .string("NOTSET")?, .string("VALID")?: break
        default: return nil
        }
        // pads (and value) as attributes before opset 11, as inputs since.
        var padList: [Int], zero = true
        if pad.inputs.count > 1 {
            guard let given = graph.constants[pad.inputs[1]]?.integers() else { return nil }
            padList = given
            if pad.inputs.count > 2, !pad.inputs[2].isEmpty {
                guard let value = graph.constants[pad.inputs[2]]?.doubles(), value.count == 1 else { return nil }
                zero = value[0] == 0
            }
        } else {
            guard case .ints(let given)? = pad.attributes["pads"] else { return nil }
            padList = given
            if case .float(let value)? = pad.attributes["value"] { zero = value == 0 }
        }
        var axes = Array(0..<rank)
        if pad.inputs.count > 3, !pad.inputs[3].isEmpty {
            guard let given = graph.constants[pad.inputs[3]]?.integers(),
                  given.allSatisfy({ (-rank..<rank).contains($0) }) else { return nil }
            axes = given.map { $0 < 0 ? $0 + rank : $0 }
        }
        guard zero, padList.count == 2 * axes.count, Set(axes).count == axes.count,
              padList.allSatisfy({ (0...65535).contains($0) }) else { return nil }
        var begin = [Int](repeating: 0, count: rank), end = begin
        for (index, axis) in axes.enumerated() {
            begin[axis] = padList[index]
            end[axis] = padList[index + axes.count]
        }
        guard begin[0] == 0, begin[1] == 0, end[0] == 0, end[1] == 0 else { return nil }
        let spatial = rank - 2
        var pads = [Int](repeating: 0, count: 2 * spatial)
        if conv.attributes["auto_pad"] != .string("VALID"), case .ints(let given)? = conv.attributes["pads"] {
            guard given.count == 2 * spatial else { return nil }
            pads = given
        }
        for axis in 0..<spatial {
            pads[axis] += begin[2 + axis]
            pads[spatial + axis] += end[2 + axis]
        }
        guard pads.allSatisfy({ $0 <= 65535 }) else { return nil }
        var merged = conv
        merged.inputs[0] = pad.inputs[0]
        merged.attributes["pads"] = .ints(pads)
        merged.attributes["auto_pad"] = nil
        return merged
    }

    /// Conv (constant float weights) then Mul by a constant of one value
    /// per output channel ([C, 1, 1] or [1, C, 1, 1], or [1, C, 1] for a
    /// 1-D Conv) or one value: y = (x ∗ w + b) · s = x ∗ (w · s) + b · s.
    static func foldScale(into conv: Node, _ mul: Node, output: String, _ graph: inout Graph) -> Node? {
        guard mul.inputs.count == 2, conv.inputs.count >= 2,
              let weight = graph.constants[conv.inputs[1]], weight.type == .float32,
              (3...4).contains(weight.shape.count), weight.shape.allSatisfy({ $0 >= 1 }) else { return nil }
        let other = mul.inputs[0] == output ? mul.inputs[1] : mul.inputs[0]
        guard other != output, let scale = graph.constants[other], scale.type == .float32 else { return nil }
        let channels = weight.shape[0], rank = weight.shape.count
        // The scale's shape broadcast against the output [N, C, spatial...]:
        // ones but for the channel axis (counted from the end).
        let dims = scale.shape
        guard dims.count <= rank else { return nil }
        let padded = [Int](repeating: 1, count: rank - dims.count) + dims
        guard padded[0] == 1, padded.dropFirst(2).allSatisfy({ $0 == 1 }),
              padded[1] == 1 || padded[1] == channels else { return nil }
        let values = scale.doubles()
        let factors = (0..<channels).map { Double(Float(values.count == 1 ? values[0] : values[$0])) }
        return rescaled(conv, weight, factors: factors, name: "\(mul.name)#scaled", &graph) { _, bias, factor in bias * factor }
    }

    static func foldBias(into matmul: Node, _ add: Node, output: String, _ graph: Graph) -> Node? {
        guard add.inputs.count == 2, let weight = graph.constants[matmul.inputs[1]], weight.shape.count == 2 else { return nil }
        let other = add.inputs[0] == output ? add.inputs[1] : add.inputs[0]
        guard let bias = graph.constants[other], bias.type == .float32,
              bias.shape == [weight.shape[1]] else { return nil }
        var merged = matmul
        merged.inputs.append(other)
        return merged
    }
}
