import NeuronISA
import NeuronNEFF

/// Emission, the last stage: each pipeline stage's bound instructions
/// assembled into an ISA program, and the NEFF model made and validated.
enum Emission {
    /// With `layers` (the lowering's), the model keeps a debug section
    /// naming each instruction's layer, with the compiler's estimate.
    static func model(name: String, binding: SlotBinding, instructions: [BoundInstruction],
                      stages: [(range: Range<Int>, work: Double)], layers: [NEFFDebugInfo.Layer]?,
                      progress: (@Sendable (CompileProgress) -> Void)?) throws(NeuronCompilerError) -> NEFFModel {
        var programs: [NEFFProgram] = []
        var debugPrograms: [NEFFDebugInfo.Program] = []
        var allLayers = layers ?? []
        for (index, stage) in stages.enumerated() {
            var program = NeuronProgram()
            var debug = NEFFDebugInfo.Program(layers: [], estimates: [])
            for insn in instructions[stage.range] {
                let before = program.instructions.count
                append(insn.kind, insn.views, to: &program)
                let added = program.instructions.count - before
                let estimate = PipelinePartition.estimatedWork(insn)
                for _ in 0..<added {
                    debug.layers.append(insn.layer)
                    debug.estimates.append(estimate / Double(added))
                }
            }
            if program.instructions.isEmpty {
                program.nop()
                allLayers.append(NEFFDebugInfo.Layer(name: "(empty stage)", op: "NOP", nodes: []))
                debug.layers.append(allLayers.count - 1)
                debug.estimates.append(0)
            }
            programs.append(NEFFProgram(core: index, image: program.image(), slots: binding.slotNames,
                                        after: index > 0 ? index - 1 : nil))
            debugPrograms.append(debug)
        }
        let model = NEFFModel(name: name, coreCount: stages.count, tensors: binding.tensors,
                              programs: programs, weights: binding.weights,
                              debug: layers == nil ? nil : NEFFDebugInfo(layers: allLayers, programs: debugPrograms))
        progress?(CompileProgress(stage: .validating, done: 0, total: 1))
        do {
            try model.validate()
        } catch {
            throw NeuronCompilerError(.invalidModel, "the compiled program does not validate (\(error)); this is a compiler bug, please report it with the model")
        }
        return model
    }

    /// One instruction of `kind` on `views` (results first).
    static func append(_ kind: AbstractOp.Kind, _ views: [NeuronTensorView], to program: inout NeuronProgram) {
        switch kind {
        case .copy: program.copy(views[0], from: views[1])
        case .fill(let value): program.fill(views[0], value: value)
        case .unary(let unary, let alpha): program.unary(unary, views[0], views[1], alpha: alpha)
        case .binary(let binary): program.binary(binary, views[0], views[1], views[2])
        case .matmul(let bias, let pairs, let panels, let relu, let clamp):
            program.matmul(views[0], views[1], views[2], bias: bias ? views[3] : nil, bf16Pairs: pairs, bPanels: panels,
                           relu: relu, clamp: clamp)
        case .reduce(let reduce): program.reduce(reduce, views[0], views[1])
        case .reduceIndex(let reduce, let last): program.reduce(reduce, views[0], views[1], lastIndex: last)
        case .topK(let op): program.topK(op, views[0], views[1])
        case .compare(let compare): program.compare(compare, views[0], views[1], views[2])
        case .select: program.select(views[0], condition: views[1], views[2], views[3])
        case .softmax: program.softmax(views[0], views[1], laneSums: true)
        case .cast(let wrap, let saturate, let e8m0): program.cast(views[0], views[1], wrap: wrap, saturate: saturate, e8m0: e8m0)
        case .gather: program.gather(views[0], table: views[1], indices: views[2])
        case .scatter(let op): program.scatter(op, views[0], indices: views[1], updates: views[2])
        case .layerNorm(let epsilon): program.layerNorm(views[0], views[1], scale: views[2], bias: views[3], epsilon: epsilon,
                                                        laneSums: true)
        case .conv(let window, let bias, let relu, let clamp, let weights, let accumulate):
            program.conv2d(views[0], views[1], weight: views[2], bias: bias ? views[3] : nil, window: window, relu: relu,
                           clamp: clamp, packedWeights: weights == .packed, winograd: weights.winogradTile != nil, accumulate: accumulate,
                           bf16Pairs: weights == .bf16Pairs)
        case .pool(let pool, let kernel, let window, let countPadding):
            program.pool2d(pool, views[0], views[1], kernel: (UInt32(kernel.h), UInt32(kernel.w)), window: window,
                           countPadding: countPadding)
        }
    }
}
