import NeuronNEFF

/// Constant folding, the first half of each node's step in the lowering
/// walk: a node whose op can fold (`ONNXOp.fold`) and whose inputs are all
/// known is evaluated at compile time (the Shape, Gather, Concat,
/// Unsqueeze chains exporters emit, and arithmetic on constants), and its
/// output becomes a constant. Float results are computed in double and
/// rounded once to the output type, which for one +, -, *, / or sqrt of
/// floats is the correctly rounded float result. What each op computes
/// is in its entry (`Ops/`); this file decides when, and checks inputs.
extension Lowering {
    /// Evaluate the current node with `op`'s fold when it can; false when
    /// it must run on the NeuronCore.
    func fold(_ op: ONNXOp) throws(NeuronCompilerError) -> Bool {
        guard let fold = op.fold, let value = try checked({ try fold(self) }) else { return false }
        set(0, .constant(value))
        folded += 1
        return true
    }

    /// The current node's inputs when every one given is known at compile
    /// time (nil for inputs left out), else nil; nil too when input 0 is
    /// left out.
    func knownInputs() throws(NeuronCompilerError) -> [ConstantTensor?]? {
        var inputs: [ConstantTensor?] = []
        for index in current.inputs.indices {
            if current.inputs[index].isEmpty {
                inputs.append(nil)
                continue
            }
            guard let tensor = constant(index) else { return nil }
            // Shapes come from the model's bytes: a negative dimension, or
            // an empty tensor whose other dimensions multiply past the
            // largest tensor, is refused before anything reads them.
            guard let bound = NEFFTensor.elementCount(of: tensor.shape.map { Swift.max($0, 1) }),
                  bound <= Lowering.maxTensorElements, tensor.shape.allSatisfy({ $0 >= 0 }),
                  tensor.bytes.count == tensor.count * tensor.type.size else {
                throw shapeError("input \(index) has the shape \(tensor.shape)")
            }
            inputs.append(tensor)
        }
        guard inputs.first ?? nil != nil else { return nil }
        return inputs
    }

    /// `body`'s result; an error it throws that is not a
    /// `NeuronCompilerError` (none should be) is reported as one, naming the node.
    func checked<T>(_ body: () throws -> T) throws(NeuronCompilerError) -> T {
        do {
            return try body()
        } catch let error as NeuronCompilerError {
            throw error
        } catch {
            throw invalid("\(error)")
        }
    }
}

/// A fold over the current node's known inputs: `body` gets input 0 and
/// all inputs (nil for those left out); the fold gives nil, without
/// calling `body`, when any input is not known at compile time.
func whenKnown(_ body: @escaping @Sendable (Lowering, _ first: ConstantTensor, _ inputs: [ConstantTensor?]) throws
               -> ConstantTensor) -> ONNXOp.Fold {
    { lowering in
        guard let inputs = try lowering.knownInputs(), let first = inputs[0] else { return nil }
        return try body(lowering, first, inputs)
    }
}
