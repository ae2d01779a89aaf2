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
    /// Keep the NEFF's debug section: each instruction's layer (ONNX
    /// nodes, fused groups) and the compiler's estimate, for profiles.
    public var debugInfo: Bool

    /// Called as the compile advances (on the compiling thread).
    public var progress: (@Sendable (CompileProgress) -> Void)?

    public init(inputShapes: [String: [Int]] = [:], name: String? = nil, autoCast: AutoCast = .none,
                pipelineCores: Int = 1, debugInfo: Bool = true,
                progress: (@Sendable (CompileProgress) -> Void)? = nil) {
        self.inputShapes = inputShapes
        self.name = name
        self.autoCast = autoCast
        self.pipelineCores = pipelineCores
        self.debugInfo = debugInfo
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
    /// Every operation the engine runs faster in bf16: matrix
    /// multiplications, and convolutions with 1x1 kernels (the ISA's
    /// other convolutions run faster in fp32 by Winograd or the packed
    /// kernel; elementwise ops are fp32).
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
    /// Matrix multiplications and convolutions given bf16 operands by --auto-cast.
    public var autoCastOps = 0
    /// Of those, convolutions (CONV2D in bf16 pairs, `--auto-cast all`).
    public var autoCastConvolutions = 0

    /// What --auto-cast does to accuracy, in words.
    public var accuracyNote: String? {
        guard autoCastOps > 0 else { return nil }
        return "\(autoCastOps) matrix multiplication(s) or convolution(s) take bf16 operands (8-bit significands, fp32 accumulation): expect relative differences of about 1e-3 to 1e-2 from fp32 in their outputs, more where values cancel"
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

/// An ONNX op neuron-cc compiles, as `neuron-cc ops` lists it.
public struct SupportedOp: Sendable, Equatable {
    /// The op_type.
    public var name: String
    /// Whether it folds at compile time, runs on the NeuronCore, or either.
    public var how: String
    /// The element types it takes on the NeuronCore.
    public var types: String
}

/// The compiler: an ONNX graph into a NEFF for one NeuronCore, or a pipeline over several.
public enum NeuronCompiler {
    /// The ONNX ops it compiles (some only when they fold at compile time), sorted.
    public static var supportedOps: [String] { ONNXOps.names }

    /// The same, with how each is compiled and the types it takes: the op registry (`Ops/`).
    public static var ops: [SupportedOp] {
        ONNXOps.all.map { SupportedOp(name: $0.name, how: $0.how, types: $0.types) }.sorted { $0.name < $1.name }
    }

    /// The ops as a Markdown table (`neuron-cc ops --markdown`, in docs/onnx-ops.md).
    public static var opsTable: String {
        (["| op | how | types on the NeuronCore |", "|---|---|---|"]
            + ops.map { "| \($0.name) | \($0.how) | \($0.types) |" }).joined(separator: "\n")
    }

    /// Every problem that keeps `graph` from compiling, not only the first:
    /// each op neuron-cc has no entry for (with the nodes that use it), and
    /// when there are none, what the compile itself refuses. Empty when
    /// the model compiles.
    public static func check(_ graph: Graph, options: CompileOptions = CompileOptions()) -> [NeuronCompilerError] {
        var missing: [String: [String]] = [:]
        // the nodes of If, Loop and Scan bodies too, named within their node
        func visit(_ nodes: [Node], within: String) {
            for node in nodes {
                if ONNXOps.byName[node.op] == nil { missing[node.op, default: []].append(within + node.name) }
                for case .graph(let body) in node.attributes.values { visit(body.nodes, within: within + node.name + "/") }
            }
        }
        visit(graph.nodes, within: "")
        guard missing.isEmpty else {
            return missing.sorted { $0.key < $1.key }.map { op, nodes in
                let shown = nodes.prefix(3).map(\.debugDescription).joined(separator: ", ") + (nodes.count > 3 ? ", ..." : "")
                return NeuronCompilerError(.unsupported, "\(op) (\(nodes.count) node\(nodes.count == 1 ? "" : "s"): \(shown)) is not an op neuron-cc compiles yet; `neuron-cc ops` lists those it does")
            }
        }
        do {
            _ = try compile(graph, options: options)
            return []
        } catch {
            return [error]
        }
    }

    /// The pipeline, one stage per file of `Pipeline/`, in the order they run.
    public static func compile(_ graph: Graph, options: CompileOptions = CompileOptions())
        throws(NeuronCompilerError) -> (NEFFModel, CompileReport) {
        guard (1...NEFFModel.maxCores).contains(options.pipelineCores) else {
            throw NeuronCompilerError(.unsupported, "a pipeline spans 1 to \(NEFFModel.maxCores) NeuronCores (the NeuronCores of one device), not \(options.pipelineCores)")
        }
        // The graph as imported (Import/), rewritten: exporters' subgraphs
        // into single ops, then pairs of nodes fused.
        options.progress?(CompileProgress(stage: .fusing, done: 0, total: 1))
        let (patterned, matched) = Patterns.run(graph)
        let (fusedGraph, fused) = Fusion.run(patterned)
        // Node by node: folded at compile time or lowered by its op's
        // entry (Folding.swift, Lowering.swift, Ops/).
        let lowering = Lowering(graph: fusedGraph)
        lowering.autoCast = options.autoCast
        lowering.progress = options.progress
        try lowering.run(inputShapes: options.inputShapes)
        CopyElision.run(lowering)
        let arena = ArenaPlan(lowering)
        let binding = try SlotBinding(lowering, arena: arena, graph: fusedGraph)
        let instructions = try binding.instructions(lowering, progress: options.progress)
        let stages = PipelinePartition.stages(instructions, cores: options.pipelineCores)
        // A graph's name is any text an exporter wrote; a name given in
        // the options is checked as it is (validate() says what is wrong).
        let model = try Emission.model(name: options.name ?? NEFFModel.modelName(fitting: fusedGraph.name), binding: binding,
                                       instructions: instructions, stages: stages,
                                       layers: options.debugInfo ? lowering.layers : nil, progress: options.progress)

        var report = CompileReport(nodes: graph.opCounts, folded: lowering.folded, instructions: instructions.count,
                                   weightBytes: binding.weightBytes, scratchBytes: arena.bytes,
                                   unplannedScratchBytes: arena.unplannedBytes, coreCount: stages.count)
        report.fused = matched + fused
        report.autoCastOps = lowering.autoCastOps
        report.autoCastConvolutions = lowering.autoCastConvolutions
        if stages.count > 1 {
            let total = max(stages.reduce(0) { $0 + $1.work }, 1)
            report.stageShares = stages.map { $0.work / total }
        }
        return (model, report)
    }
}
