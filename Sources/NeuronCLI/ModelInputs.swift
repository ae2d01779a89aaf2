import Foundation
import NeuronISA
import NeuronNEFF

/// A model's inputs as the tools take them: `--input NAME=FILE.npy`, and
/// deterministic values for any input not given (neuron-run, neuron-profile).
public enum ModelInputs {
    /// Why an input cannot be taken: what to do is in the message.
    public struct Problem: Error, CustomStringConvertible {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    /// The bytes of each input given as NAME=FILE.npy in `specs`. A name
    /// may hold "=" itself: the split is at the "=" after the longest input
    /// name that starts the argument.
    public static func parse(_ specs: [String], for model: NEFFModel) throws(Problem) -> [String: [UInt8]] {
        var given: [String: [UInt8]] = [:]
        for spec in specs {
            let splits = spec.indices.filter { spec[$0] == "=" }
            guard let first = splits.first else {
                throw Problem("--input takes NAME=FILE.npy, not \(spec)")
            }
            let equals = splits.last { at in model.inputs.contains { $0.name == String(spec[..<at]) } } ?? first
            let name = String(spec[..<equals]), file = String(spec[spec.index(after: equals)...])
            guard let tensor = model.inputs.first(where: { $0.name == name }) else {
                throw Problem("the model \(model.name.debugDescription) has no input \(name.debugDescription); its inputs: \(model.inputs.map(\.name.debugDescription).joined(separator: ", "))")
            }
            guard given[name] == nil else {
                throw Problem("--input gives \(displayName(name)) twice")
            }
            guard let data = FileManager.default.contents(atPath: file) else {
                throw Problem("cannot read \(file), given for input \(displayName(name)): it does not exist or is not readable")
            }
            let array: NPY.Array
            do {
                array = try NPY.decode(Array(data), name: file)
            } catch {
                throw Problem("\(error)")
            }
            given[name] = try bytes(for: tensor, from: array, file: file)
        }
        return given
    }

    /// Bytes for `tensor` from an .npy array of its type, or of float32
    /// for a float16, bfloat16, float8 or float4 input (rounded to nearest
    /// even, as CAST rounds), or of int8 or uint8 for a four- or two-bit
    /// integer one (each value in its range).
    public static func bytes(for tensor: NEFFTensor, from array: NPY.Array, file: String) throws(Problem) -> [UInt8] {
        guard array.shape == tensor.shape else {
            throw Problem("\(file) has shape \(array.shape); input \(tensor.name) is \(tensor.shape)")
        }
        if tensor.dtype == array.dtype { return array.bytes }
        let carrier = tensor.dtype.npyCarrier
        guard array.dtype == carrier || (tensor.dtype == .float16 && array.dtype == .float32) else {
            throw Problem("\(file) holds \(array.dtype); input \(tensor.name) is \(tensor.dtype): "
                          + "save it as np.save(path, x.astype(np.\(carrier.name)))")
        }
        let values = array.dtype.values(array.bytes)
        let converted = tensor.dtype.bytes(values)
        if tensor.dtype.isSubByteInteger, let bad = zip(values, tensor.dtype.values(converted)).first(where: { $0 != $1 }) {
            throw Problem("\(file) holds \(Int(bad.0)), which \(tensor.dtype) (input \(tensor.name)) cannot hold")
        }
        return converted
    }

    /// Deterministic inputs in [-1, 1) for floats, zeros for integers
    /// (indices) and false for bool.
    public static func deterministic(for tensor: NEFFTensor) -> [UInt8] {
        guard tensor.dtype.isFloatingPoint || tensor.dtype.isSmallFloat else {
            return [UInt8](repeating: 0, count: tensor.elementCount * tensor.dtype.size)
        }
        var state: UInt32 = 12345
        let values = (0..<tensor.elementCount).map { _ in
            state = state &* 1_664_525 &+ 1_013_904_223
            return Double(Float(state >> 8) / Float(1 << 23) - 1)
        }
        return tensor.dtype.bytes(values)
    }
}
