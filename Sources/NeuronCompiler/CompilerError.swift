/// Why a model cannot be compiled: what is wrong and where (the file,
/// the node, the attribute), and what to do about it when that is known.
public struct NeuronCompilerError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// The file cannot be read, or is not an ONNX model.
        case unreadable
        /// The model breaks ONNX's rules (a dangling name, a bad tensor).
        case invalidModel
        /// An opset, op, attribute value or data type neuron-cc does not take.
        case unsupported
        /// Shapes that do not fit, or a dimension left open.
        case shape
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { "\(kind.rawValue): \(message)" }
}
