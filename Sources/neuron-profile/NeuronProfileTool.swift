import ArgumentParser
import Foundation
import NeuronCLI
import NeuronNEFF
import NeuronProfile
import NeuronRuntime

@main
struct NeuronProfileTool: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "neuron-profile",
        abstract: "Profile a compiled model: where each inference spends its time, layer by layer.",
        discussion: """
            capture runs a NEFF with every instruction timed by the engine (on the driver or the \
            simulator, NEURON_BACKEND) and writes a capture; view summarises it or turns it into a \
            trace for ui.perfetto.dev. Any application captures too: NEURON_RT_PROFILE=DIR writes \
            one capture per loaded model into DIR when it is unloaded. See docs/profiling.md.
            """,
        subcommands: [Capture.self, View.self])
}

struct Capture: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a NEFF with profiling on and write the capture.")

    @Argument(help: "The NEFF file.")
    var neff: String

    @Option(name: .customLong("input"), help: "An input as NAME=FILE.npy (repeatable; deterministic values when not given).")
    var inputs: [String] = []

    @Option(help: "Inferences to capture (after one unprofiled warm-up per replica).")
    var iterations = 10

    @Option(help: "Replicas of the model, each on its own NeuronCores, running at once.")
    var cores = 1

    @Option(name: .shortAndLong, help: "Where to write the capture (default: the NEFF's path with .profile.json).")
    var output: String?

    func validate() throws {
        guard (1...100_000).contains(iterations), (1...64).contains(cores) else {
            throw ValidationError("--iterations takes 1 to 100000, --cores 1 to 64")
        }
    }

    func run() async throws {
        let model = try NEFFModel(contentsOf: neff)
        let given: [String: [UInt8]]
        do {
            given = try ModelInputs.parse(inputs, for: model)
        } catch {
            throw ValidationError(error.description)
        }
        let runtime = try NeuronRuntime()
        defer { runtime.close() }
        let recorder = NeuronProfileRecorder(limit: iterations * cores)
        var options = runtime.defaultLoadOptions
        options.profiler = recorder
        var replicas: [(model: NeuronLoadedModel, inputs: [String: NeuronTensor], outputs: [String: NeuronTensor])] = []
        for _ in 0..<cores {
            let loaded = try runtime.load(model, options: options)
            let inputs = try loaded.allocateInputs(), outputs = try loaded.allocateOutputs()
            for tensor in model.inputs {
                let data = given[tensor.name] ?? ModelInputs.deterministic(for: tensor)
                try data.withUnsafeBytes { try inputs[tensor.name]?.write($0) }
            }
            replicas.append((loaded, inputs, outputs))
        }
        for replica in replicas { try await replica.model.execute(inputs: replica.inputs, outputs: replica.outputs) }
        recorder.reset()
        let interactive = isatty(2) != 0
        for iteration in 0..<iterations {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for replica in replicas {
                    group.addTask { try await replica.model.execute(inputs: replica.inputs, outputs: replica.outputs) }
                }
                try await group.waitForAll()
            }
            if interactive { FileHandle.standardError.write(Data("\rcapturing \(iteration + 1)/\(iterations)".utf8)) }
        }
        if interactive { FileHandle.standardError.write(Data("\r\u{1b}[K".utf8)) }
        let capture = try recorder.capture(tool: "neuron-profile capture", model: model, backend: runtime.backend)
        let executions = capture.executions
        let path = output ?? (neff.hasSuffix(".neff") ? String(neff.dropLast(5)) : neff) + ".profile.json"
        try capture.write(to: path)
        let summary = NeuronProfileSummary(capture)
        print("neuron-profile: \(executions.count) inference(s) of \(model.name) on \(runtime.backend.name) -> \(path)")
        print(String(format: "  latency p50 %.1f us; instructions %.1f us per inference", summary.latencyP50Us, summary.busyUs))
        if model.debug == nil {
            print("  note: \(neff) has no debug section (compiled with --no-debug-info): the profile names instructions, not layers")
        }
    }
}

struct View: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Summarise a capture, or convert it for a trace viewer.")

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case summaryText = "summary-text"
        case summaryJSON = "summary-json"
        case perfetto
        case tensorboard
    }

    @Argument(help: "A capture written by neuron-profile capture, neuron-run --profile or NEURON_RT_PROFILE.")
    var profile: String

    @Option(help: "summary-text (layers in the order they ran, op types, stages), summary-json, perfetto (trace-event JSON for ui.perfetto.dev and chrome://tracing), or tensorboard (a log directory: the graph with each node's NeuronCore and time, and the trace for the profile plugin).")
    var outputFormat: Format = .summaryText

    @Option(name: .shortAndLong, help: "Write here instead of standard output; for tensorboard, the log directory (default: the capture's path with -tensorboard).")
    var output: String?

    @Option(help: "summary-text: show at most this many layers.")
    var maxLayers: Int?

    func run() throws {
        let capture: NeuronProfile
        do {
            capture = try NeuronProfile(contentsOf: profile)
        } catch {
            throw ValidationError("\(profile): \(error.description)")
        }
        let text: String
        switch outputFormat {
        case .summaryText:
            text = NeuronProfileSummary(capture).text(maxLayers: maxLayers) + "\n"
        case .summaryJSON:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            text = String(decoding: try encoder.encode(NeuronProfileSummary(capture)), as: UTF8.self) + "\n"
        case .perfetto:
            text = NeuronPerfetto.json(capture) + "\n"
        case .tensorboard:
            let stem = profile.hasSuffix(".profile.json") ? String(profile.dropLast(13))
                : profile.hasSuffix(".json") ? String(profile.dropLast(5)) : profile
            let logdir = output ?? stem + "-tensorboard"
            let files = try NeuronTensorBoard.write(capture, to: logdir)
            print("neuron-profile: wrote \(files.joined(separator: " and "))")
            if capture.model.debug == nil {
                print("  note: the NEFF had no debug section: the graph is empty, the trace names instructions")
            }
            print("  view it: tensorboard --logdir \(logdir)   (the Graphs and Profile dashboards)")
            return
        }
        if let output {
            try Data(text.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
        } else {
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    }
}
