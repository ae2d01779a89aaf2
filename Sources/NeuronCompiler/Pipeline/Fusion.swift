/// Graph rewrites that save whole passes over memory on this engine:
/// - Conv then BatchNormalization (constant statistics): the scale and
///   shift go into the convolution's weights and bias;
/// - Conv then Relu: the convolution's relu flag;
/// - Conv then Add of another computed value (a residual): the sums start
///   from it, in its own buffer;
/// - MatMul of a 2-D B then Add of a constant [N]: the matmul's bias;
/// - Pad with zeros of the spatial axes only, then Conv: the convolution's
///   own padding (exporters write Keras' and TensorFlow's "same" padding of
///   strided convolutions so), which costs no copy.
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
                var replacement: Node?
                switch (node.op, next.op) {
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
        var bias = [Double](repeating: 0, count: channels)
        if conv.inputs.count > 2, !conv.inputs[2].isEmpty {
            guard let given = graph.constants[conv.inputs[2]]?.doubles(), given.count == channels else { return nil }
            bias = given
        }
        let per = weight.count / channels
        let w = weight.doubles()
        var newWeight = [Double](repeating: 0, count: w.count), newBias = [Double](repeating: 0, count: channels)
        for c in 0..<channels {
            let factor = Double(Float(scale[c] / (variance[c] + epsilon).squareRoot()))
            for i in 0..<per { newWeight[c * per + i] = w[c * per + i] * factor }
            newBias[c] = (bias[c] - mean[c]) * factor + shift[c]
        }
        let weightName = "\(bn.name)#fused_weight", biasName = "\(bn.name)#fused_bias"
        graph.constants[weightName] = .make(.float32, weight.shape, newWeight)
        graph.constants[biasName] = .make(.float32, [channels], newBias)
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
