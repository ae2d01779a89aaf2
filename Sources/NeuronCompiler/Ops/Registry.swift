import NeuronISA

/// One ONNX op (default domain): all the compiler knows about it, in one
/// entry. The entries live beside the code they name, one file per family
/// (`Elementwise.swift`, `Shapes.swift`, `MatMul.swift`, ...), and
/// `ONNXOps.all` joins them: the lowering walk, `neuron-cc ops`, the
/// supported set and `docs/onnx-ops.md` all read that one list.
///
/// Shapes have no rule of their own: every shape is static once the
/// inputs' are, so an op's `fold` and `lower` compute their outputs'
/// shapes as they go (a view carries its dims) and refuse shapes that do
/// not fit.
struct ONNXOp: Sendable {
    /// Evaluates the current node at compile time; nil when an input it
    /// needs is not known then. Throws `NeuronCompilerError` only (a
    /// closure literal cannot state a typed throw; the walk checks it).
    typealias Fold = @Sendable (Lowering) throws -> ConstantTensor?
    /// Emits the current node's instructions and sets its outputs.
    /// Throws `NeuronCompilerError` only.
    typealias Lower = @Sendable (Lowering) throws -> Void

    /// The op_type, as exporters write it.
    let name: String
    /// The element types its inputs may have when they are computed on the
    /// NeuronCore (checked before `lower` runs); empty for any the engine has.
    let takes: [NeuronDType]
    /// How many inputs, from the first, `takes` applies to (the others are
    /// the op's own to check: a reduction's integer axes).
    let typedInputs: Int
    /// Compile-time evaluation, tried first; nil when the op never folds.
    let fold: Fold?
    /// Lowering to engine instructions; nil when the op only folds.
    let lower: Lower?

    /// An op that runs on the NeuronCore and never folds.
    init(_ name: String, takes: [NeuronDType] = [], typedInputs: Int = .max, lower: @escaping Lower) {
        self.name = name
        self.takes = takes
        self.typedInputs = typedInputs
        self.fold = nil
        self.lower = lower
    }

    /// An op that folds, and runs on the NeuronCore too when given `lower`.
    init(_ name: String, takes: [NeuronDType] = [], typedInputs: Int = .max, fold: @escaping Fold, lower: Lower? = nil) {
        self.name = name
        self.takes = takes
        self.typedInputs = typedInputs
        self.fold = fold
        self.lower = lower
    }

    /// How the op is compiled, in words (for `neuron-cc ops --verbose` and the docs).
    var how: String {
        switch (fold != nil, lower != nil) {
        case (true, true): "folds when its inputs are known, else runs on the NeuronCore"
        case (false, true): "runs on the NeuronCore"
        case (true, false): "folds only: its inputs must be known at compile time"
        case (false, false): "nothing"
        }
    }

    /// The element types it takes on the NeuronCore, in words.
    var types: String {
        guard lower != nil else { return "any (at compile time)" }
        return takes.isEmpty ? "any" : takes.map(\.name).joined(separator: ", ")
    }
}

/// Every ONNX op neuron-cc compiles: the families' entries, joined.
enum ONNXOps {
    static let all: [ONNXOp] = elementwise + logic + shapes + matmul + einsum + reductions + scans + gathers + gridSample + pooling + tensors + normalization + attention + recurrent + quantization + signal + cnn + controlFlow + foldOnly

    /// The entries by name (the first wins; a test checks names are unique).
    static let byName: [String: ONNXOp] = Dictionary(all.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })

    /// The names, sorted.
    static var names: [String] { all.map(\.name).sorted() }
}
