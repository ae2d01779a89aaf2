import NeuronISA

/// Small models built directly in the ISA, for demos, tests and
/// benchmarks until neuron-cc compiles real ones.
public enum NEFFExamples {
    /// An MLP: x [batch, width] through `layers` of matmul + bias + relu
    /// (width x width), then a matmul to 10 classes and a softmax, on one
    /// NeuronCore. Weights are deterministic.
    public static func mlp(batch: Int = 8, width: Int = 256, layers: Int = 3) -> NEFFModel {
        var tensors = [NEFFTensor(name: "x", kind: .input, dtype: .float32, shape: [batch, width])]
        var weights: [String: [UInt8]] = [:]
        var state: UInt32 = 2024
        func values(_ count: Int, scale: Float) -> [UInt8] {
            var out = [Float]()
            out.reserveCapacity(count)
            for _ in 0..<count {
                state = state &* 1_664_525 &+ 1_013_904_223
                out.append((Float(state >> 8) / Float(1 << 24) - 0.5) * scale)
            }
            return out.withUnsafeBytes { Array($0) }
        }
        let scale = 2 / Float(width).squareRoot()
        for layer in 0..<layers {
            tensors.append(NEFFTensor(name: "w\(layer)", kind: .weight, dtype: .float32, shape: [width, width]))
            tensors.append(NEFFTensor(name: "b\(layer)", kind: .weight, dtype: .float32, shape: [width]))
            weights["w\(layer)"] = values(width * width, scale: scale)
            weights["b\(layer)"] = values(width, scale: 0.1)
        }
        tensors.append(NEFFTensor(name: "w_out", kind: .weight, dtype: .float32, shape: [width, 10]))
        weights["w_out"] = values(width * 10, scale: scale)
        tensors.append(NEFFTensor(name: "act", kind: .scratch, dtype: .float32, shape: [2, batch, width]))
        tensors.append(NEFFTensor(name: "logits", kind: .scratch, dtype: .float32, shape: [batch, 10]))
        tensors.append(NEFFTensor(name: "probs", kind: .output, dtype: .float32, shape: [batch, 10]))

        // Slots: 0 x, 1 act, 2 logits, 3 probs, 4 w_out, then w_i, b_i.
        var program = NeuronProgram()
        let dims = [UInt32(batch), UInt32(width)]
        var input = NeuronTensorView.contiguous(slot: 0, dims: dims)
        for layer in 0..<layers {
            let out = NeuronTensorView.contiguous(slot: 1, dims: dims, offset: UInt64((layer % 2) * batch * width))
            program.matmul(out, input, .contiguous(slot: 5 + 2 * layer, dims: [UInt32(width), UInt32(width)]),
                           bias: .contiguous(slot: 6 + 2 * layer, dims: [UInt32(width)]))
            program.unary(.relu, out, out)
            input = out
        }
        program.matmul(.contiguous(slot: 2, dims: [UInt32(batch), 10]), input,
                       .contiguous(slot: 4, dims: [UInt32(width), 10]))
        program.softmax(.contiguous(slot: 3, dims: [UInt32(batch), 10]), .contiguous(slot: 2, dims: [UInt32(batch), 10]))
        var slots: [String?] = ["x", "act", "logits", "probs", "w_out"]
        for layer in 0..<layers { slots += ["w\(layer)", "b\(layer)"] }
        return NEFFModel(name: "mlp", coreCount: 1, tensors: tensors,
                         programs: [NEFFProgram(core: 0, image: program.image(), slots: slots)], weights: weights)
    }
}
