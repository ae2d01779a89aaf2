import Foundation
import NeuronISA

/// A NEFF's optional debug section (`debug.json` in the payload,
/// docs/neff.md): for every instruction of every program, the layer it
/// came from (an ONNX node, or nodes the compiler fused into one) and the
/// compiler's estimate of its time. Profiles name their slices with it;
/// `neuron-cc compile --no-debug-info` leaves it out, and a model without
/// it loads and runs the same.
public struct NEFFDebugInfo: Codable, Sendable, Equatable {
    /// An ONNX node, by name and op type.
    public struct Node: Codable, Sendable, Equatable {
        public var name: String
        public var op: String

        public init(name: String, op: String) {
            self.name = name
            self.op = op
        }
    }

    /// What instructions are attributed to: a node of the compiled graph
    /// (its name and op, and the ONNX nodes fused into it), or a model
    /// input or output (op `input` or `output`, no nodes); and the layers
    /// whose results it reads (through nodes that became no instruction,
    /// such as a Reshape), which draw the graph.
    public struct Layer: Codable, Sendable, Equatable {
        public var name: String
        public var op: String
        public var nodes: [Node]
        public var inputs: [Int]

        public init(name: String, op: String, nodes: [Node], inputs: [Int] = []) {
            self.name = name
            self.op = op
            self.nodes = nodes
            self.inputs = inputs
        }

        enum CodingKeys: String, CodingKey { case name, op, nodes, inputs }

        /// `inputs` may be missing (a section written before it existed).
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            name = try container.decode(String.self, forKey: .name)
            op = try container.decode(String.self, forKey: .op)
            nodes = try container.decode([Node].self, forKey: .nodes)
            inputs = try container.decodeIfPresent([Int].self, forKey: .inputs) ?? []
        }

        /// The fused group's op types, "Conv+Relu", or the op.
        public var opGroup: String { nodes.count > 1 ? nodes.map(\.op).joined(separator: "+") : op }
    }

    /// One program's instructions, in order: each one's layer (an index
    /// into `layers`) and the compiler's estimate of its time, in cycles
    /// of one CPU core (the work the pipeline partitioner balances).
    public struct Program: Codable, Sendable, Equatable {
        public var layers: [Int]
        public var estimates: [Double]

        public init(layers: [Int], estimates: [Double]) {
            self.layers = layers
            self.estimates = estimates
        }
    }

    /// The version of this section's layout.
    public static let formatVersion = 1

    public var format: Int
    public var layers: [Layer]
    public var programs: [Program]

    public init(layers: [Layer], programs: [Program]) {
        self.format = Self.formatVersion
        self.layers = layers
        self.programs = programs
    }

    /// The layer of instruction `index` of program `program`, if recorded.
    public func layer(program: Int, instruction index: Int) -> Layer? {
        guard programs.indices.contains(program), programs[program].layers.indices.contains(index) else { return nil }
        let layer = programs[program].layers[index]
        return layers.indices.contains(layer) ? layers[layer] : nil
    }

    /// Checks it against the model's programs (`instructionCounts`, one per
    /// program): the same programs, an entry per instruction, layer indices
    /// in range, finite estimates.
    func validate(instructionCounts: [Int]) throws(NEFFError) {
        guard format == Self.formatVersion else {
            throw NEFFError(.metadata, "debug.json has format \(format); this runtime reads \(Self.formatVersion) (the debug section can be left out: neuron-cc --no-debug-info)")
        }
        guard programs.count == instructionCounts.count else {
            throw NEFFError(.metadata, "debug.json describes \(programs.count) programs; the model has \(instructionCounts.count)")
        }
        for (index, layer) in layers.enumerated() {
            if let bad = layer.inputs.first(where: { !layers.indices.contains($0) || $0 == index }) {
                throw NEFFError(.metadata, "debug.json: layer \(index) reads layer \(bad), which is not another layer")
            }
        }
        for (index, program) in programs.enumerated() {
            guard program.layers.count == instructionCounts[index], program.estimates.count == instructionCounts[index] else {
                throw NEFFError(.metadata, "debug.json gives program \(index) \(program.layers.count) layers and \(program.estimates.count) estimates; it has \(instructionCounts[index]) instructions")
            }
            if let bad = program.layers.first(where: { !layers.indices.contains($0) }) {
                throw NEFFError(.metadata, "debug.json: program \(index) names layer \(bad); there are \(layers.count)")
            }
            if let bad = program.estimates.first(where: { !$0.isFinite || $0 < 0 }) {
                throw NEFFError(.metadata, "debug.json: program \(index) has the estimate \(bad)")
            }
        }
    }
}
