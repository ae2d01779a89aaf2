import NeuronISA
import NeuronNEFF

/// One instruction with its operands bound: each a tensor descriptor
/// (slot, element offset, dims, strides), results first.
typealias BoundInstruction = (kind: AbstractOp.Kind, views: [NeuronTensorView], layer: Int)

/// Slot binding, after memory planning: the program's tensors and slots
/// (the weight blob, the scratch arena, then the graph's inputs and
/// outputs) and every operand as a descriptor of one of them. Only the
/// constants an instruction reads go into the NEFF (an auto-cast weight
/// keeps just its bf16 copy), packed anew.
struct SlotBinding {
    /// The compiler's own tensors are "weights" and "scratch", or
    /// "weights~1", ... when the model names an input or output so.
    static func ownName(_ base: String, avoiding taken: Set<String>) -> String {
        var name = base, suffix = 0
        while taken.contains(name) {
            suffix += 1
            name = "\(base)~\(suffix)"
        }
        return name
    }

    /// The NEFF's tensors and, slot by slot, their names.
    var tensors: [NEFFTensor] = []
    var slotNames: [String?] = []
    /// The weight blob (padded to whole float32 elements), by tensor name.
    var weights: [String: [UInt8]] = [:]
    /// Bytes of constants the program reads.
    var weightBytes = 0
    /// Slot of each buffer, and a temporary's byte offset in the arena.
    private var slotOf: [Int: Int] = [:]
    private var arenaOffset: [Int: Int] = [:]
    /// New byte offset of each weight entry that was kept, by its old one.
    private var moved: [Int: Int] = [:]

    init(_ lowering: Lowering, arena: ArenaPlan, graph: Graph) throws(NeuronCompilerError) {
        var packed: [UInt8] = []
        for op in lowering.ops {
            for view in op.operands where view.buffer == 0 {
                guard let entry = lowering.weightEntry(containing: view.offset * view.type.size),
                      moved[entry.offset] == nil else { continue }
                while packed.count % Lowering.alignment != 0 { packed.append(0) }
                moved[entry.offset] = packed.count
                packed += lowering.weightBlob[entry.offset..<(entry.offset + entry.bytes)]
            }
        }
        weightBytes = packed.count
        let modelNames = Set(graph.inputs.map(\.name) + graph.outputs.map(\.name))
        if weightBytes > 0 {
            var blob = packed
            while blob.count % 4 != 0 { blob.append(0) }
            let name = Self.ownName("weights", avoiding: modelNames)
            tensors.append(NEFFTensor(name: name, kind: .weight, dtype: .float32, shape: [blob.count / 4]))
            weights[name] = blob
            slotNames.append(name)
            slotOf[0] = 0
        }
        if arena.bytes > 0 {
            let name = Self.ownName("scratch", avoiding: modelNames)
            tensors.append(NEFFTensor(name: name, kind: .scratch, dtype: .float32, shape: [(arena.bytes + 3) / 4]))
            slotNames.append(name)
            for (id, offset) in arena.offsets {
                slotOf[id] = slotNames.count - 1
                arenaOffset[id] = offset
            }
        }
        let buffers = lowering.buffers
        let bound = graph.inputs.map { ($0.name, CompilerBuffer.Kind.input($0.name), NEFFTensor.Kind.input) }
            + graph.outputs.map { ($0.name, CompilerBuffer.Kind.output($0.name), NEFFTensor.Kind.output) }
        for (name, bufferKind, tensorKind) in bound {
            if case .constant(let empty)? = lowering.values[name], empty.shape.contains(0) {
                // Empty: in the NEFF for its name, type and shape, in no slot.
                tensors.append(NEFFTensor(name: name, kind: tensorKind, dtype: empty.type, shape: empty.shape))
                continue
            }
            guard let id = buffers.firstIndex(where: { $0.kind == bufferKind }),
                  case .tensor(let view)? = lowering.values[name] else { continue }
            tensors.append(NEFFTensor(name: name, kind: tensorKind, dtype: view.type, shape: view.dims))
            slotNames.append(name)
            slotOf[id] = slotNames.count - 1
        }
        guard slotNames.count <= 16 else {
            throw NeuronCompilerError(.unsupported, "the model has \(graph.inputs.count) inputs and \(graph.outputs.count) outputs; a NeuronCore program binds at most 14 besides its weights and scratch")
        }
    }

    /// `lowering`'s instructions with their operands bound.
    func instructions(_ lowering: Lowering, progress: (@Sendable (CompileProgress) -> Void)?)
        throws(NeuronCompilerError) -> [BoundInstruction] {
        var instructions: [BoundInstruction] = []
        for (index, op) in lowering.ops.enumerated() {
            if index % 64 == 0 { progress?(CompileProgress(stage: .emitting, done: index, total: lowering.ops.count)) }
            var views: [NeuronTensorView] = []
            for view in op.operands {
                guard let slot = slotOf[view.buffer] else {
                    throw NeuronCompilerError(.invalidModel, "node \(op.node): a buffer has no slot (an input or output not listed in the graph)")
                }
                views.append(view.descriptor(slot: slot, base: base(of: view, in: lowering)))
            }
            instructions.append((op.kind, views, op.layer))
        }
        return instructions
    }

    /// The element offset `view`'s own offset is counted from in its slot.
    private func base(of view: View, in lowering: Lowering) -> Int {
        guard view.buffer == 0 else { return (arenaOffset[view.buffer] ?? 0) / view.type.size }
        let byte = view.offset * view.type.size
        guard let entry = lowering.weightEntry(containing: byte), let to = moved[entry.offset] else { return 0 }
        return (to + byte - entry.offset) / view.type.size - view.offset
    }
}
