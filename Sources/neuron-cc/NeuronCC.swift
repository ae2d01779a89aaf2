import ArgumentParser
import Foundation
import NeuronCLI
import NeuronCompiler
import NeuronISA
import NeuronNEFF

@main
struct NeuronCC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "neuron-cc",
        abstract: "The Neuron compiler: ONNX models into NEFF files for NeuronCores.",
        subcommands: [Compile.self, Inspect.self, Ops.self])
}

struct Compile: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compile an ONNX model into a NEFF.",
        discussion: """
            Shapes must be known: inputs whose dimensions the model leaves open take \
            --input-shape NAME=1x3x224x224. The summary lists the ops, how many were evaluated at \
            compile time, the instructions, and the weight and scratch bytes.
            """)

    @Argument(help: "The .onnx file.")
    var model: String

    @Option(name: .shortAndLong, help: "Where to write the NEFF (default: the model's path with .neff).")
    var output: String?

    @Option(name: .customLong("input-shape"), help: "An input's shape as NAME=DxDx... (repeatable).")
    var inputShapes: [String] = []

    @Option(help: "The model name stored in the NEFF.")
    var name: String?

    @Option(help: "Cast to bfloat16 for speed: none, matmult (matrix multiplication operands) or all (those and 1x1 convolutions').")
    var autoCast: String = "none"

    @Option(name: .customLong("neuroncore-pipeline-cores"),
            help: "Split the layers over this many NeuronCores (1-\(NEFFModel.maxCores)), a stage each, balanced by estimated work: NeuronCore Pipeline.")
    var pipelineCores = 1

    @Flag(inversion: .prefixedNo, help: "Keep the debug section: each instruction's layer (ONNX nodes, fused groups) and the compiler's estimate, which neuron-profile shows (default: on).")
    var debugInfo = true

    @Flag(help: "Print the summary as JSON.")
    var json = false

    @Flag(help: "Write nothing: list every problem that keeps the model from compiling (each op neuron-cc lacks, with its nodes), or say that it compiles.")
    var check = false

    @Flag(inversion: .prefixedNo, help: "Show the compile's progress on standard error (default: when it is a terminal).")
    var progress: Bool?

    func run() throws {
        guard (1...NEFFModel.maxCores).contains(pipelineCores) else {
            throw ValidationError("--neuroncore-pipeline-cores takes 1 to \(NEFFModel.maxCores) (the NeuronCores of one device), not \(pipelineCores)")
        }
        var shapes: [String: [Int]] = [:]
        for spec in inputShapes {
            guard let equals = spec.lastIndex(of: "=") else {
                throw ValidationError("--input-shape takes NAME=DxDx..., not \(spec)")
            }
            let dims = spec[spec.index(after: equals)...].split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
            guard !dims.isEmpty, dims.allSatisfy({ ($0 ?? -1) >= 0 }) else {
                throw ValidationError("--input-shape \(spec): dimensions are whole numbers, joined by x")
            }
            shapes[String(spec[..<equals])] = dims.compactMap { $0 }
        }
        guard let cast = AutoCast(rawValue: autoCast) else {
            throw ValidationError("--auto-cast takes none, matmult or all, not \(autoCast)")
        }
        let display = ProgressDisplay(enabled: progress ?? (isatty(2) != 0), terminal: isatty(2) != 0)
        display.show("reading \(model)")
        let graph = try ONNXImporter.load(contentsOf: model)
        if check {
            display.finish()
            let problems = NeuronCompiler.check(graph, options: CompileOptions(
                inputShapes: shapes, name: name, autoCast: cast, pipelineCores: pipelineCores))
            if json {
                struct CheckReport: Encodable { var model: String, compiles: Bool, problems: [String] }
                try printJSON(CheckReport(model: model, compiles: problems.isEmpty, problems: problems.map(\.description)))
            } else if problems.isEmpty {
                print("\(model): compiles")
            } else {
                print("\(model): \(problems.count) problem\(problems.count == 1 ? "" : "s")")
                for problem in problems { print("  \(problem)") }
            }
            if !problems.isEmpty { throw ExitCode(1) }
            return
        }
        let (neff, report) = try NeuronCompiler.compile(graph, options: CompileOptions(
            inputShapes: shapes, name: name, autoCast: cast, pipelineCores: pipelineCores, debugInfo: debugInfo,
            progress: { step in
                display.show(step.total > 1 ? "\(step.stage.rawValue) \(step.done)/\(step.total)" : step.stage.rawValue,
                             stage: step.stage.rawValue)
            }))
        let path = output ?? (model.hasSuffix(".onnx") ? String(model.dropLast(5)) : model) + ".neff"
        display.show("writing \(path)")
        try neff.write(to: path)
        display.finish()
        if json {
            let object: [String: Any] = [
                "neff": path, "nodes": report.nodes, "folded": report.folded, "fused": report.fused, "instructions": report.instructions,
                "weight_bytes": report.weightBytes, "scratch_bytes": report.scratchBytes,
                "unplanned_scratch_bytes": report.unplannedScratchBytes, "neuroncores": report.coreCount,
                "auto_cast": cast.rawValue, "auto_cast_ops": report.autoCastOps,
                "auto_cast_convolutions": report.autoCastConvolutions,
                "stage_shares": report.stageShares,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        let total = report.nodes.values.reduce(0, +)
        print("neuron-cc: \(model) -> \(path)")
        print("  \(total) ONNX nodes (\(report.folded) evaluated at compile time, \(report.fused) fusions): " +
              report.nodes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        print("  \(report.instructions) instructions on \(report.coreCount) NeuronCore(s)")
        if !report.stageShares.isEmpty {
            print("  pipeline stages' shares of the estimated work: " +
                  report.stageShares.map { String(format: "%.0f%%", $0 * 100) }.joined(separator: ", "))
        }
        print("  weights \(report.weightBytes) bytes, scratch \(report.scratchBytes) bytes (\(report.unplannedScratchBytes) without reuse)")
        if let note = report.accuracyNote { print("  auto-cast \(cast.rawValue): \(note)") }
        if report.autoCastConvolutions > 0 && !NeuronEngine.runsBF16PairsNatively {
            let why = NeuronEngine.hasBF16PairsInstruction
                ? "this CPU's AVX512_BF16 (VDPBF16PS) is slower than its exact emulation" : "this CPU has no AVX512_BF16"
            print("  note: \(why): here the \(report.autoCastConvolutions) cast convolution(s) run an exact emulation, about 0.9x of fp32's speed (ResNet-50 0.91x); on CPUs where VDPBF16PS is fast (AMD Zen 4 and 5) 1.5-2x faster. Here, prefer --auto-cast matmult")
        }
    }
}

/// Progress on standard error: one line rewritten in place on a terminal
/// (at most ten times a second), else a line per stage.
final class ProgressDisplay: @unchecked Sendable {
    private let enabled: Bool, terminal: Bool
    private let clock = ContinuousClock()
    private let start: ContinuousClock.Instant
    // Only the compiling thread calls show and finish.
    private var last: ContinuousClock.Instant?
    private var stage = ""

    init(enabled: Bool, terminal: Bool) {
        self.enabled = enabled
        self.terminal = terminal
        start = clock.now
    }

    func show(_ text: String, stage: String? = nil) {
        guard enabled else { return }
        let now = clock.now
        let elapsed = now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        let line = String(format: "neuron-cc [%6.1fs] ", seconds) + text
        if terminal {
            if let last, now - last < .milliseconds(100), stage == self.stage { return }
            var stderr = StandardError()
            stderr.write("\r\u{1b}[K" + line)
        } else {
            guard (stage ?? text) != self.stage else { return }
            var stderr = StandardError()
            stderr.write(line + "\n")
        }
        last = now
        self.stage = stage ?? text
    }

    func finish() {
        guard enabled, terminal else { return }
        var stderr = StandardError()
        stderr.write("\r\u{1b}[K")
    }
}

struct Ops: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the ONNX ops neuron-cc compiles, one per line.",
        discussion: """
            The list is the compiler's op registry: with --json or --markdown, each op also says \
            whether it folds at compile time, runs on the NeuronCore, or either, and the element \
            types it takes there (docs/onnx-ops.md holds the --markdown table).
            """)

    @Flag(help: "Print a JSON array of {name, how, types}.")
    var json = false

    @Flag(help: "Print a Markdown table of the ops, how each is compiled and the types it takes.")
    var markdown = false

    func validate() throws {
        if json && markdown { throw ValidationError("give --json or --markdown, not both") }
    }

    func run() throws {
        let ops = NeuronCompiler.ops
        if json {
            try printJSON(ops.map { ["name": $0.name, "how": $0.how, "types": $0.types] })
        } else if markdown {
            print(NeuronCompiler.opsTable)
        } else {
            for op in ops { print(op.name) }
        }
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print what a NEFF (or an ONNX model) holds.",
        discussion: """
            A NEFF: its name, UUID, NeuronCores, tensors (kind, dtype, shape, bytes) and, per \
            program, its NeuronCore, dependency, slots and instructions with their work (and, with --instructions, each operand's slot, offset, dims and strides). An ONNX \
            model: its opset, inputs, outputs, constants and the ops it uses.
            """)

    @Argument(help: "A .neff or .onnx file.")
    var file: String

    @Flag(help: "List every instruction of every program, with its operands.")
    var instructions = false

    func run() throws {
        let head = (try? FileHandle(forReadingFrom: URL(fileURLWithPath: file)).read(upToCount: 4)) ?? nil
        if head.map(Array.init) == NEFFModel.magic {
            try inspectNEFF()
        } else {
            try inspectONNX()
        }
    }

    func inspectNEFF() throws {
        let model = try NEFFModel(contentsOf: file)
        print("NEFF \(file): model \(displayName(model.name)), uuid \(model.uuid.map { String(format: "%02x", $0) }.joined())")
        print("  NeuronCores \(model.coreCount), programs \(model.programs.count), weights \(model.weightBytes) bytes")
        print("  debug section: " + (model.debug.map { "\($0.layers.count) layers" } ?? "none (compiled with --no-debug-info)"))
        print("  tensors:")
        for tensor in model.tensors {
            let shape = tensor.shape.map(String.init).joined(separator: "x")
            print("    \(tensor.kind.rawValue.padding(toLength: 7, withPad: " ", startingAt: 0)) \(displayName(tensor.name)): \(tensor.dtype) \(shape), \(tensor.byteCount ?? 0) bytes")
        }
        for (index, program) in model.programs.enumerated() {
            let list = try NeuronEngine.instructions(program.image, slotSizes: model.slotSizes(of: program))
            let after = program.after.map { ", after program \($0)" } ?? ""
            let work = list.reduce(UInt64(0)) { $0 &+ $1.cost }
            print("  program \(index): NeuronCore \(program.core)\(after), \(program.image.count * 8) bytes, \(list.count) instructions, \(work) element operations")
            print("    slots: " + program.slots.enumerated().map { "\($0.offset)=\($0.element.map(displayName) ?? "(none)")" }.joined(separator: " "))
            let counts = list.reduce(into: [String: Int]()) { $0[$1.name, default: 0] += 1 }
            print("    ops: " + counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            if instructions {
                for (at, insn) in list.enumerated() {
                    let layer = model.debug?.layer(program: index, instruction: at)
                    print("      \(at): \(insn.name) (\(insn.cost))" + (layer.map { "  \($0.opGroup) \(displayName($0.name))" } ?? ""))
                    print("          " + insn.operands.map(\.description).joined(separator: " <- "))
                }
            }
        }
    }

    func inspectONNX() throws {
        let graph = try ONNXImporter.load(contentsOf: file)
        func describe(_ info: ValueInfo) -> String {
            "\(displayName(info.name)): \(info.type) " + (info.shape.map { $0.map(\.description).joined(separator: "x") } ?? "(no shape)")
        }
        print("ONNX \(file): graph \(graph.name.isEmpty ? "(unnamed)" : displayName(graph.name)), opset \(graph.opset)")
        print("  nodes \(graph.nodes.count), constants \(graph.constants.count) (\(graph.constantBytes) bytes)")
        for input in graph.inputs { print("  input  \(describe(input))") }
        for output in graph.outputs { print("  output \(describe(output))") }
        print("  ops: " + graph.opCounts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
    }
}
