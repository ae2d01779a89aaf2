/// Subgraphs that exporters write out op by op, recognised and replaced by
/// the one engine instruction that computes them in a single pass:
/// - layer norm, as torch.onnx writes it before opset 17:
///   d = x - ReduceMean(x), y = d / Sqrt(ReduceMean(d^2) + eps), then
///   optionally y * gamma + beta (constants over the last axis)
///   -> LayerNormalization(x, gamma, beta, axis -1, epsilon eps);
/// - GELU with erf: x * 0.5 * (1 + Erf(x / sqrt 2)) in any grouping of the
///   products, the division also as a multiplication by 1/sqrt 2
///   -> Gelu(x).
/// A pattern applies only where none of its intermediate values is read
/// outside it (or is a graph output). The results differ from the
/// op-by-op ones in the last bits, as the fused kernels round differently.
enum Patterns {
    static func run(_ graph: Graph) -> (Graph, fused: Int) {
        var graph = graph
        var fused = 0
        var changed = true
        while changed {
            changed = false
            let index = Index(graph)
            for position in graph.nodes.indices {
                var match: Match?
                switch graph.nodes[position].op {
                case "ReduceMean": match = layerNorm(from: position, index)
                case "Erf": match = gelu(from: position, index)
                default: break
                }
                guard let match else { continue }
                graph.replace(match.nodes, with: match.replacement)
                fused += 1
                changed = true
                break
            }
        }
        return (graph, fused)
    }

    struct Match {
        var nodes: Set<Int>         // positions of the nodes to remove
        var replacement: Node       // placed where the last of them was
    }

    /// A node and where it is.
    struct At {
        var position: Int
        var node: Node
        var op: String { node.op }
        var inputs: [String] { node.inputs }
        var outputs: [String] { node.outputs }
    }

    /// Who writes and who reads each value.
    struct Index {
        var producer: [String: At] = [:]
        var readers: [String: [At]] = [:]
        var outputs: Set<String>
        var constants: [String: ConstantTensor]
        var nodes: [Node]

        init(_ graph: Graph) {
            outputs = Set(graph.outputs.map(\.name))
            constants = graph.constants
            nodes = graph.nodes
            for (position, node) in graph.nodes.enumerated() {
                for output in node.outputs where !output.isEmpty { producer[output] = At(position: position, node: node) }
                for input in Set(node.reads) where !input.isEmpty {   // a node reading a value twice reads it once here
                    readers[input, default: []].append(At(position: position, node: node))
                }
            }
        }

        /// The only reader of `value`, when it has exactly one and is no graph output.
        func sole(_ value: String) -> At? {
            guard !outputs.contains(value), let list = readers[value], list.count == 1 else { return nil }
            return list[0]
        }

        /// The value of a one-element constant.
        func scalar(_ value: String) -> Double? {
            guard let tensor = constants[value], tensor.count == 1 else { return nil }
            return tensor.doubles().first
        }

        /// The input of binary `node` other than `value` (nil when both or neither are it).
        func other(_ node: At, _ value: String) -> String? {
            guard node.inputs.count == 2 else { return nil }
            if node.inputs[0] == value, node.inputs[1] != value { return node.inputs[1] }
            if node.inputs[1] == value, node.inputs[0] != value { return node.inputs[0] }
            return nil
        }
    }

    /// ReduceMean over the last axis, keeping it.
    static func meanOverLast(_ at: At) -> Bool {
        let node = at.node
        guard node.op == "ReduceMean", node.inputs.count == 1 else { return false }
        if case .int(let keep)? = node.attributes["keepdims"], keep == 0 { return false }
        return node.attributes["axes"] == .ints([-1])
    }

    static func layerNorm(from position: Int, _ index: Index) -> Match? {
        let mean = At(position: position, node: index.nodes[position])
        guard meanOverLast(mean), let x = mean.inputs.first, let meanOut = mean.outputs.first,
              let sub = index.sole(meanOut), sub.op == "Sub", sub.inputs == [x, meanOut],
              let d = sub.outputs.first, let dReaders = index.readers[d], dReaders.count == 2,
              !index.outputs.contains(d) else { return nil }
        // d^2: Pow(d, 2) or Mul(d, d).
        guard let square = dReaders.first(where: {
                  ($0.op == "Pow" && $0.inputs.count == 2 && $0.inputs[0] == d && index.scalar($0.inputs[1]) == 2)
                      || ($0.op == "Mul" && $0.inputs == [d, d]) }),
              let div = dReaders.first(where: { $0.op == "Div" && $0.inputs.first == d }),
              let squared = square.outputs.first, let varianceNode = index.sole(squared), meanOverLast(varianceNode),
              let variance = varianceNode.outputs.first, let add = index.sole(variance), add.op == "Add",
              let epsilon = index.other(add, variance).flatMap(index.scalar), epsilon >= 0, epsilon < 1,
              let addOut = add.outputs.first, let sqrt = index.sole(addOut), sqrt.op == "Sqrt",
              let std = sqrt.outputs.first, index.sole(std)?.position == div.position, div.inputs == [d, std],
              let normalized = div.outputs.first,
              // Then * gamma (a constant over the last axis) and, optionally, + beta.
              let mul = index.sole(normalized), mul.op == "Mul", let gamma = index.other(mul, normalized),
              let scale = index.constants[gamma], scale.type == .float32, scale.shape.count == 1, scale.count > 1,
              let scaled = mul.outputs.first else { return nil }
        var removed: Set<Int> = [mean.position, sub.position, square.position, varianceNode.position, add.position,
                                 sqrt.position, div.position, mul.position]
        var inputs = [x, gamma], output = scaled
        if let shift = index.sole(scaled), shift.op == "Add", let beta = index.other(shift, scaled),
           let bias = index.constants[beta], bias.type == .float32, bias.shape == scale.shape,
           let shifted = shift.outputs.first {
            removed.insert(shift.position)
            inputs.append(beta)
            output = shifted
        }
        let fused = Node(name: "\(mean.node.name)#layernorm", op: "LayerNormalization", inputs: inputs, outputs: [output],
                         attributes: ["axis": .int(-1), "epsilon": .float(Float(epsilon))])
        return Match(nodes: removed, replacement: fused)
    }

    static func gelu(from position: Int, _ index: Index) -> Match? {
        let erf = At(position: position, node: index.nodes[position])
        guard let erfIn = erf.inputs.first, let scaled = index.producer[erfIn], index.sole(erfIn)?.position == erf.position,
              scaled.inputs.count == 2, let x = scaled.inputs.first, let c = index.scalar(scaled.inputs[1]),
              (scaled.op == "Div" && abs(c - 2.0.squareRoot()) < 1e-4)
                || (scaled.op == "Mul" && abs(c - 0.5.squareRoot()) < 1e-4),
              let erfOut = erf.outputs.first, let plus = index.sole(erfOut), plus.op == "Add",
              let one = index.other(plus, erfOut), index.scalar(one) == 1,
              let a = plus.outputs.first, let first = index.sole(a), first.op == "Mul",
              let firstOut = first.outputs.first else { return nil }
        var removed: Set<Int> = [scaled.position, erf.position, plus.position, first.position]
        // x * 0.5 * a in any grouping: (x * a) * 0.5, x * (a * 0.5), (x * 0.5) * a.
        let partner = index.other(first, a)
        var output: String?
        if partner == x, let second = index.sole(firstOut), second.op == "Mul",
           let half = index.other(second, firstOut), index.scalar(half) == 0.5 {
            removed.insert(second.position)
            output = second.outputs.first
        } else if let p = partner, index.scalar(p) == 0.5, let second = index.sole(firstOut), second.op == "Mul",
                  index.other(second, firstOut) == x {
            removed.insert(second.position)
            output = second.outputs.first
        } else if let p = partner, let halfNode = index.producer[p], halfNode.op == "Mul",
                  index.sole(p)?.position == first.position, index.other(halfNode, x).flatMap(index.scalar) == 0.5 {
            removed.insert(halfNode.position)
            output = firstOut
        }
        guard let output, index.readers[x] != nil else { return nil }
        return Match(nodes: removed, replacement: Node(name: "\(erf.node.name)#gelu", op: "Gelu", inputs: [x], outputs: [output]))
    }
}

extension Graph {
    /// Remove the nodes at `positions` and put `node` where the last of them was.
    /// The replacement records the nodes it stands for (`Node.fusedFrom`).
    mutating func replace(_ positions: Set<Int>, with node: Node) {
        guard let last = positions.max() else { return }
        var node = node
        node.fusedFrom = positions.sorted().flatMap { nodes[$0].origins }
        nodes[last] = node
        for position in positions.sorted(by: >) where position != last { nodes.remove(at: position) }
    }
}
