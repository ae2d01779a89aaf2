import NeuronISA
import NeuronNEFF

/// How to compile.
public struct CompileOptions: Sendable {
    /// Shapes for inputs whose dimensions the model leaves open (or to check fixed ones).
    public var inputShapes: [String: [Int]]
    /// The NEFF's model name (the graph's, else "model").
    public var name: String?
    /// bf16 operands for speed (fp32 accumulation), as AWS's --auto-cast.
    public var autoCast: AutoCast
    /// NeuronCores to split the layers over (NeuronCore Pipeline), 1 to
    /// NEFFModel.maxCores: each runs a contiguous stage of about equal
    /// estimated work and starts a request when the stage before ends.
    public var pipelineCores: Int

    /// Called as the compile advances (on the compiling thread).
    public var progress: (@Sendable (CompileProgress) -> Void)?

    public init(inputShapes: [String: [Int]] = [:], name: String? = nil, autoCast: AutoCast = .none,
                pipelineCores: Int = 1, progress: (@Sendable (CompileProgress) -> Void)? = nil) {
        self.inputShapes = inputShapes
        self.name = name
        self.autoCast = autoCast
        self.pipelineCores = pipelineCores
        self.progress = progress
    }
}

/// Where a compile is: its stage, and how far through it.
public struct CompileProgress: Sendable, Equatable {
    public enum Stage: String, Sendable, CaseIterable {
        case fusing, lowering, emitting, validating
    }
    public var stage: Stage
    /// Nodes lowered (lowering), instructions emitted (emitting); 0 of 1 otherwise.
    public var done: Int
    public var total: Int
}

/// What --auto-cast casts to bfloat16.
public enum AutoCast: String, Sendable, CaseIterable {
    /// Nothing: fp32 throughout.
    case none
    /// The operands of matrix multiplications (MatMul, Gemm); they
    /// accumulate in fp32.
    case matmult
    /// Every operation the engine runs in bf16: today the same as
    /// matmult (the ISA's convolutions and elementwise ops are fp32).
    case all
}

/// What a compile made.
public struct CompileReport: Sendable, Equatable {
    /// ONNX nodes by op, and how many were evaluated at compile time.
    public var nodes: [String: Int]
    public var folded: Int
    /// Fusions: pairs of nodes into one (conv+batchnorm, conv+relu,
    /// matmul+bias) and exporters' layer norm and GELU subgraphs into one op.
    public var fused = 0
    /// Matrix multiplications given bf16 operands by --auto-cast.
    public var autoCastOps = 0

    /// What --auto-cast does to accuracy, in words.
    public var accuracyNote: String? {
        guard autoCastOps > 0 else { return nil }
        return "\(autoCastOps) matrix multiplication(s) take bf16 operands (8-bit significands, fp32 accumulation): expect relative differences of about 1e-3 to 1e-2 from fp32 in their outputs, more where values cancel"
    }
    /// Engine instructions emitted.
    public var instructions: Int
    public var weightBytes: Int
    /// The scratch arena: the most intermediate bytes alive at once,
    /// after buffers were packed by lifetime.
    public var scratchBytes: Int
    /// What the intermediates would take without reuse.
    public var unplannedScratchBytes: Int
    public var coreCount: Int
    /// With a pipeline: each stage's share of the estimated work.
    public var stageShares: [Double] = []
}

/// The compiler: an ONNX graph into a NEFF for one NeuronCore, or a pipeline over several.
public enum NeuronCompiler {
    /// The ONNX ops it compiles (some only when they fold at compile time).
    public static var supportedOps: [String] { Lowering.supportedOps.sorted() }

    public static func compile(_ graph: Graph, options: CompileOptions = CompileOptions())
        throws(NeuronCompilerError) -> (NEFFModel, CompileReport) {
        guard (1...NEFFModel.maxCores).contains(options.pipelineCores) else {
            throw NeuronCompilerError(.unsupported, "a pipeline spans 1 to \(NEFFModel.maxCores) NeuronCores (the NeuronCores of one device), not \(options.pipelineCores)")
        }
        options.progress?(CompileProgress(stage: .fusing, done: 0, total: 1))
        let (fusedGraph, fused) = Fusion.run(graph)
        let lowering = Lowering(graph: fusedGraph)
        lowering.autoCast = options.autoCast
        lowering.progress = options.progress
        try lowering.run(inputShapes: options.inputShapes)
        var (model, report) = try Emitter(lowering: lowering, graph: fusedGraph, options: options).emit()
        report.nodes = graph.opCounts
        report.fused = fused
        report.autoCastOps = lowering.autoCastOps
        return (model, report)
    }
}

/// Buffers to slots and arena offsets, abstract ops to an ISA program.
struct Emitter {
    let lowering: Lowering
    let graph: Graph
    let options: CompileOptions

    static let weightsName = "weights", arenaName = "scratch"
    typealias Instruction = (kind: AbstractOp.Kind, views: [NeuronTensorView])

    func emit() throws(NeuronCompilerError) -> (NEFFModel, CompileReport) {
        let buffers = lowering.buffers
        // Lifetimes of the temps: first and last instruction touching them.
        let (first, last) = lowering.lifetimes()
        let temps = buffers.indices.filter { buffers[$0].kind == .temp && last[$0] >= 0 }
        let placement = MemoryPlanner.plan(temps.map { (id: $0, bytes: buffers[$0].bytes, first: first[$0], last: last[$0]) },
                                           alignment: Lowering.alignment)
        let arenaBytes = placement.peak

        // Slots: the weight blob, the arena, then inputs and outputs.
        var tensors: [NEFFTensor] = []
        var slotNames: [String?] = []
        var slotOf: [Int: Int] = [:]      // buffer -> slot
        var baseOf: [Int: Int] = [:]      // buffer -> element offset base (bytes until divided)
        // Only the constants an instruction reads go into the NEFF (an
        // auto-cast weight keeps just its bf16 copy), packed anew.
        var remap: [Int: Int] = [:]
        var packed: [UInt8] = []
        for op in lowering.ops {
            for view in op.operands where view.buffer == 0 {
                guard let entry = lowering.weightEntry(containing: view.offset * view.type.size),
                      remap[entry.offset] == nil else { continue }
                while packed.count % Lowering.alignment != 0 { packed.append(0) }
                remap[entry.offset] = packed.count
                packed += lowering.weightBlob[entry.offset..<(entry.offset + entry.bytes)]
            }
        }
        func weightBase(_ view: View) -> Int {
            let byte = view.offset * view.type.size
            guard let entry = lowering.weightEntry(containing: byte), let moved = remap[entry.offset] else { return 0 }
            return (moved + byte - entry.offset) / view.type.size - view.offset
        }
        let weightBytes = packed.count
        var weights: [String: [UInt8]] = [:]
        if weightBytes > 0 {
            var blob = packed
            while blob.count % 4 != 0 { blob.append(0) }
            tensors.append(NEFFTensor(name: Emitter.weightsName, kind: .weight, dtype: .float32, shape: [blob.count / 4]))
            weights[Emitter.weightsName] = blob
            slotNames.append(Emitter.weightsName)
            slotOf[0] = 0
        }
        if arenaBytes > 0 {
            tensors.append(NEFFTensor(name: Emitter.arenaName, kind: .scratch, dtype: .float32,
                                      shape: [(arenaBytes + 3) / 4]))
            slotNames.append(Emitter.arenaName)
            for (id, offset) in placement.offsets {
                slotOf[id] = slotNames.count - 1
                baseOf[id] = offset
            }
        }
        let bound = graph.inputs.map { ($0.name, CompilerBuffer.Kind.input($0.name), NEFFTensor.Kind.input) }
            + graph.outputs.map { ($0.name, CompilerBuffer.Kind.output($0.name), NEFFTensor.Kind.output) }
        for (name, bufferKind, tensorKind) in bound {
            guard let id = buffers.firstIndex(where: { $0.kind == bufferKind }),
                  case .tensor(let view)? = lowering.values[name] else { continue }
            tensors.append(NEFFTensor(name: name, kind: tensorKind, dtype: view.type, shape: view.dims))
            slotNames.append(name)
            slotOf[id] = slotNames.count - 1
        }
        guard slotNames.count <= 16 else {
            throw NeuronCompilerError(.unsupported, "the model has \(graph.inputs.count) inputs and \(graph.outputs.count) outputs; a NeuronCore program binds at most 14 besides its weights and scratch")
        }

        var instructions: [Instruction] = []
        for (index, op) in lowering.ops.enumerated() {
            if index % 64 == 0 { options.progress?(CompileProgress(stage: .emitting, done: index, total: lowering.ops.count)) }
            var views: [NeuronTensorView] = []
            for view in op.operands {
                guard let slot = slotOf[view.buffer] else {
                    throw NeuronCompilerError(.invalidModel, "node \(op.node): a buffer has no slot (an input or output not listed in the graph)")
                }
                let base = view.buffer == 0 ? weightBase(view) : (baseOf[view.buffer] ?? 0) / view.type.size
                views.append(view.descriptor(slot: slot, base: base))
            }
            instructions.append((op.kind, views))
        }
        let stages = Emitter.stages(instructions, cores: options.pipelineCores)
        var programs: [NEFFProgram] = []
        for (index, stage) in stages.enumerated() {
            var program = NeuronProgram()
            for insn in instructions[stage.range] { Emitter.append(insn.kind, insn.views, to: &program) }
            if program.instructions.isEmpty { program.nop() }
            programs.append(NEFFProgram(core: index, image: program.image(), slots: slotNames,
                                        after: index > 0 ? index - 1 : nil))
        }
        // A graph's name is any text an exporter wrote; a name given in
        // the options is checked as it is (validate() says what is wrong).
        let name = options.name ?? NEFFModel.modelName(fitting: graph.name)
        let model = NEFFModel(name: name, coreCount: stages.count, tensors: tensors,
                              programs: programs, weights: weights)
        options.progress?(CompileProgress(stage: .validating, done: 0, total: 1))
        do {
            try model.validate()
        } catch {
            throw NeuronCompilerError(.invalidModel, "the compiled program does not validate (\(error)); this is a compiler bug, please report it with the model")
        }
        var report = CompileReport(nodes: graph.opCounts, folded: lowering.folded, instructions: instructions.count,
                                   weightBytes: weightBytes, scratchBytes: arenaBytes,
                                   unplannedScratchBytes: temps.reduce(0) { $0 + (buffers[$1].bytes + Lowering.alignment - 1) / Lowering.alignment * Lowering.alignment },
                                   coreCount: stages.count)
        if stages.count > 1 {
            let total = max(stages.reduce(0) { $0 + $1.work }, 1)
            report.stageShares = stages.map { $0.work / total }
        }
        return (model, report)
    }

    /// One instruction of `kind` on `views` (results first).
    static func append(_ kind: AbstractOp.Kind, _ views: [NeuronTensorView], to program: inout NeuronProgram) {
        switch kind {
        case .copy: program.copy(views[0], from: views[1])
        case .fill(let value): program.fill(views[0], value: value)
        case .unary(let unary, let alpha): program.unary(unary, views[0], views[1], alpha: alpha)
        case .binary(let binary): program.binary(binary, views[0], views[1], views[2])
        case .matmul(let bias): program.matmul(views[0], views[1], views[2], bias: bias ? views[3] : nil)
        case .reduce(let reduce): program.reduce(reduce, views[0], views[1])
        case .softmax: program.softmax(views[0], views[1])
        case .cast: program.cast(views[0], views[1])
        case .gather: program.gather(views[0], table: views[1], indices: views[2])
        case .layerNorm(let epsilon): program.layerNorm(views[0], views[1], scale: views[2], bias: views[3], epsilon: epsilon)
        case .conv(let window, let bias, let relu, let weights, let accumulate):
            program.conv2d(views[0], views[1], weight: views[2], bias: bias ? views[3] : nil, window: window, relu: relu,
                           packedWeights: weights == .packed, winograd: weights.winogradTile != nil, accumulate: accumulate)
        case .pool(let pool, let kernel, let window, let countPadding):
            program.pool2d(pool, views[0], views[1], kernel: (UInt32(kernel.h), UInt32(kernel.w)), window: window,
                           countPadding: countPadding)
        }
    }

    /// Contiguous runs of the instructions, one per NeuronCore, whose
    /// largest estimated work is as small as can be (the pipeline runs at
    /// the pace of its slowest stage). Fewer stages when there are fewer
    /// instructions than cores.
    static func stages(_ instructions: [Instruction], cores: Int) -> [(range: Range<Int>, work: Double)] {
        guard cores > 1, instructions.count > 1 else { return [(0..<instructions.count, 0)] }
        let work = instructions.map { estimatedWork($0) }
        return partition(work, parts: min(cores, work.count))
    }

    /// Time an instruction takes on the engine, roughly in cycles of one
    /// CPU, calibrated on its kernels: a multiply-add of MATMUL and CONV2D
    /// costs about 1/8 (two vector FMAs a cycle, most of the time), with
    /// positions of a convolution rounded up to the 16 of its register
    /// block and its weights read once per part (about 2.5 a weight, as
    /// late layers' large weights stream from memory; 1 when packed, read
    /// in place); other instructions
    /// about 2 an element, and each one 64 more.
    static func estimatedWork(_ insn: Instruction) -> Double {
        func count(_ dims: ArraySlice<UInt32>) -> Double { dims.reduce(1.0) { $0 * Double($1) } }
        let out = insn.views.first.map { count($0.dims[...]) } ?? 1
        switch insn.kind {
        case .conv(_, _, _, .winograd(let t), _):
            // (t + 2)² products per t x t tile and input channel, tiles by 16; transforms.
            let o = insn.views[0].dims, w = insn.views[2].dims
            guard o.count == 4, w.count == 4, t > 0 else { return out * 2 + 64 }
            let size = UInt32(t), xis = Double((t + 2) * (t + 2))
            let tiles = (Double((o[2] + size - 1) / size * ((o[3] + size - 1) / size)) / 16).rounded(.up) * 16
            let co = Double(o[1]), ci = Double(w[2])
            return Double(o[0]) * tiles * (xis * co * ci / 8 + 1.5 * xis * ci + xis * co) + 64
        case .conv(_, _, _, let weights, _):
            let packed = weights == .packed
            let o = insn.views[0].dims, w = insn.views[2].dims
            guard o.count == 4, w.count == (packed ? 5 : 4) else { return out * 2 + 64 }
            let taps = count(w[1...3]), positions = (Double(o[2]) * Double(o[3]) / 16).rounded(.up) * 16
            return Double(o[0]) * (Double(o[1]) * positions * taps / 8 + (packed ? 1 : 2.5) * Double(o[1]) * taps) + 64
        case .matmul:
            let a = insn.views[1].dims, b = insn.views[2].dims
            let k = Double(a.last ?? 1), n = Double(b.last ?? 1)
            return out * k / 8 + 2.5 * k * n + 64
        case .reduce, .softmax, .layerNorm:
            return count(insn.views[1].dims[...]) * 3 + 64
        case .pool(_, let kernel, _, _):
            return out * Double(kernel.h * kernel.w) + 64
        default:
            return out * 2 + 64
        }
    }

    /// Split `work` into `parts` contiguous non-empty runs minimising the
    /// largest sum: a binary search on that sum, each probe a greedy fill.
    static func partition(_ work: [Double], parts: Int) -> [(range: Range<Int>, work: Double)] {
        func cuts(limit: Double) -> [Range<Int>]? {
            var runs: [Range<Int>] = [], start = 0, sum = 0.0
            for (index, item) in work.enumerated() {
                if item > limit { return nil }
                // Leave at least one instruction for each later run.
                let remainingRuns = parts - runs.count - 1
                if index > start && (sum + item > limit || work.count - index <= remainingRuns) {
                    runs.append(start..<index)
                    start = index
                    sum = 0
                }
                sum += item
            }
            runs.append(start..<work.count)
            return runs.count <= parts ? runs : nil
        }
        var low = work.max() ?? 0, high = work.reduce(0, +)
        for _ in 0..<60 where high - low > high * 1e-6 {
            let mid = (low + high) / 2
            if cuts(limit: mid) != nil { high = mid } else { low = mid }
        }
        var runs = cuts(limit: high) ?? [0..<work.count]
        // Every core gets a stage: split the longest runs while there are too few.
        while runs.count < parts, let longest = runs.indices.max(by: { runs[$0].count < runs[$1].count }),
              runs[longest].count > 1 {
            let run = runs[longest], middle = run.lowerBound + run.count / 2
            runs.replaceSubrange(longest...longest, with: [run.lowerBound..<middle, middle..<run.upperBound])
        }
        return runs.map { ($0, work[$0].reduce(0, +)) }
    }
}

/// Packs buffers into one arena so that buffers alive at the same time
/// never overlap: largest first, each at the lowest offset that clears
/// every placed buffer whose lifetime meets its own.
enum MemoryPlanner {
    static func plan(_ buffers: [(id: Int, bytes: Int, first: Int, last: Int)], alignment: Int)
        -> (offsets: [Int: Int], peak: Int) {
        var placed: [(offset: Int, end: Int, first: Int, last: Int)] = []
        var offsets: [Int: Int] = [:]
        var peak = 0
        let order = buffers.sorted { ($0.bytes, $1.first) > ($1.bytes, $0.first) }
        for buffer in order {
            let size = (buffer.bytes + alignment - 1) / alignment * alignment
            let conflicts = placed.filter { $0.first <= buffer.last && buffer.first <= $0.last }
                .sorted { $0.offset < $1.offset }
            var offset = 0
            for other in conflicts where other.offset < offset + size {
                if other.end > offset { offset = (other.end + alignment - 1) / alignment * alignment }
            }
            placed.append((offset, offset + size, buffer.first, buffer.last))
            offsets[buffer.id] = offset
            peak = max(peak, offset + size)
        }
        return (offsets, peak)
    }
}
