import NeuronISA
import NeuronNEFF

/// The compiler's graph: what the ONNX importer produces and the passes
/// (shape inference, folding, fusion, lowering) work on. Values are named
/// as in the model; an empty input name is an optional input left out.

/// Element types the importer knows: the engine's own (ISA 1.4 has every
/// ONNX numeric type but the 8-bit floats and 4-bit integers, which the
/// importer refuses).
public typealias ElementType = NeuronDType

/// A constant tensor: an initializer, a Constant node's value, or a
/// folded result. Little-endian bytes, row-major.
public struct ConstantTensor: Sendable, Equatable {
    public var type: ElementType
    public var shape: [Int]
    public var bytes: [UInt8]

    public init(type: ElementType, shape: [Int], bytes: [UInt8]) {
        self.type = type
        self.shape = shape
        self.bytes = bytes
    }

    /// Elements; 0 when the shape is malformed (a negative dimension, or a
    /// product past Int's range), so that nothing is read from it.
    public var count: Int { NEFFTensor.elementCount(of: shape) ?? 0 }

    /// The elements as Double (every element type converts exactly but
    /// 64-bit integers past 2^53).
    public func doubles() -> [Double] {
        type.values(Array(bytes.prefix(count * type.size)))
    }

    /// Integer elements (shapes, axes, indices) as Int; nil for floats.
    public func integers() -> [Int]? {
        guard !type.isFloatingPoint else { return nil }
        if type == .int64 {
            return bytes.withUnsafeBytes { raw in
                (0..<count).map { Int(raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }
            }
        }
        var values: [Int] = []
        for value in doubles() {
            guard let exact = Int(exactly: value) else { return nil }   // a uint64 past Int.max
            values.append(exact)
        }
        return values
    }
}

/// A dimension: a number, or a name the model leaves open (`batch`).
public enum Dimension: Sendable, Equatable, CustomStringConvertible {
    case fixed(Int)
    case open(String)

    public var description: String {
        switch self {
        case .fixed(let value): "\(value)"
        case .open(let name): name.isEmpty ? "?" : name
        }
    }
}

/// A graph input or output: its name, element type and (maybe partial) shape.
public struct ValueInfo: Sendable, Equatable {
    public var name: String
    public var type: ElementType
    /// nil when the model gives no shape at all.
    public var shape: [Dimension]?

    public init(name: String, type: ElementType, shape: [Dimension]?) {
        self.name = name
        self.type = type
        self.shape = shape
    }
}

/// An attribute's value.
public enum AttributeValue: Sendable, Equatable {
    case float(Float)
    case int(Int)
    case string(String)
    case tensor(ConstantTensor)
    case floats([Float])
    case ints([Int])
    case strings([String])
    /// A subgraph (the branches of If, the bodies of Loop and Scan),
    /// inlined where its op is lowered.
    indirect case graph(Graph)
    /// A list of subgraphs: no inference op takes one.
    case graphs
}

/// One operation.
public struct Node: Sendable, Equatable {
    public var name: String
    public var op: String
    public var domain: String
    public var inputs: [String]
    public var outputs: [String]
    public var attributes: [String: AttributeValue]
    /// The imported nodes a rewrite fused into this one, in graph order
    /// (empty for a node as imported): what profiles and the NEFF's debug
    /// section name as the layer's nodes.
    public var fusedFrom: [Origin] = []

    /// An imported node, by name and op type.
    public struct Origin: Sendable, Equatable {
        public var name: String
        public var op: String
    }

    public init(name: String, op: String, domain: String = "", inputs: [String], outputs: [String],
                attributes: [String: AttributeValue] = [:]) {
        self.name = name
        self.op = op
        self.domain = domain
        self.inputs = inputs
        self.outputs = outputs
        self.attributes = attributes
    }

    /// The imported nodes it stands for: itself, or those fused into it.
    public var origins: [Origin] { fusedFrom.isEmpty ? [Origin(name: name, op: op)] : fusedFrom }

    /// How errors name it: `Conv "conv1"` (or its index when unnamed).
    public var label: String { "\(op) \"\(name)\"" }

    /// The values it reads: its inputs, and those its subgraphs read from
    /// the graph around them (captured by name, as ONNX allows).
    public var reads: [String] {
        var names = inputs
        for case .graph(let body) in attributes.values { names += body.captured }
        return names
    }
}

extension Graph {
    /// The names its nodes (and theirs, nested) read that it does not define.
    public var captured: [String] {
        var defined = Set(inputs.map(\.name)).union(constants.keys), names: [String] = []
        for node in nodes {
            for name in node.reads where !name.isEmpty && !defined.contains(name) { names.append(name) }
            defined.formUnion(node.outputs)
        }
        return names
    }
}

/// A whole model: its nodes in topological order, the inputs the
/// application feeds, the outputs it reads, and the constants.
public struct Graph: Sendable, Equatable {
    public var name: String
    /// The default domain's opset.
    public var opset: Int
    public var inputs: [ValueInfo]
    public var outputs: [ValueInfo]
    public var constants: [String: ConstantTensor]
    public var nodes: [Node]

    public init(name: String, opset: Int, inputs: [ValueInfo], outputs: [ValueInfo],
                constants: [String: ConstantTensor], nodes: [Node]) {
        self.name = name
        self.opset = opset
        self.inputs = inputs
        self.outputs = outputs
        self.constants = constants
        self.nodes = nodes
    }

    /// Bytes of constant data.
    public var constantBytes: Int { constants.values.reduce(0) { $0 + $1.bytes.count } }

    /// How many nodes of each op.
    public var opCounts: [String: Int] { nodes.reduce(into: [:]) { $0[$1.op, default: 0] += 1 } }
}
