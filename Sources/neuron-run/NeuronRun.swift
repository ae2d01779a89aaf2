import ArgumentParser
import Foundation
import NeuronCLI
import NeuronDevice
import NeuronNEFF
import NeuronProfile
import NeuronRuntime

@main
struct NeuronRun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "neuron-run",
        abstract: "Run a compiled model (NEFF) on NeuronCores and report its latency and throughput.",
        discussion: """
            Inputs come from .npy files (--input name=file.npy; random when not given), outputs of the \
            first request go to --output-dir as NAME.npy (the name escaped: bytes other than ASCII letters, digits, \
            _ - and a . after the first as %XX, so "gpu_0/prob" is gpu_0%2Fprob.npy). The backend is NEURON_BACKEND (kernel by \
            default, or sim); NEURON_RT_VISIBLE_CORES and NEURON_RT_NUM_CORES limit the NeuronCores.
            """)

    @Argument(help: "The NEFF file.")
    var neff: String

    @Option(name: .customLong("input"), help: "An input as NAME=FILE.npy (repeatable).")
    var inputs: [String] = []

    @Option(help: "Write the outputs of the first request here, one NAME.npy each (NAME escaped as %XX where it is not a plain file name).")
    var outputDir: String?

    @Option(help: "Requests to run in all.")
    var iterations = 100

    @Option(help: "Replicas of the model, each on its own NeuronCores.")
    var cores = 1

    @Option(help: "Requests in flight at once, spread over the replicas.")
    var concurrency = 1

    @Flag(help: "Print JSON.")
    var json = false

    @Option(help: "Profile the measured requests (each instruction timed by the engine) and write the capture here, for neuron-profile view.")
    var profile: String?

    @Flag(help: "First write the built-in example MLP (3 layers, --example-batch by --example-width) to the NEFF path.")
    var exampleMlp = false

    @Option(help: "The example MLP's batch.")
    var exampleBatch = 8

    @Option(help: "The example MLP's width (its layers are width by width).")
    var exampleWidth = 256

    @Flag(help: "Also run the same number of requests on one replica alone (with its share of --concurrency), alternating with all, and report the speedup.")
    var scaling = false

    @Option(help: "With --scaling or --baseline: rounds of (the baseline, then the model); the best round of each is compared, which filters out other load on the machine.")
    var scalingRounds = 3

    @Option(help: "Also run this NEFF (the same inputs, e.g. the model compiled for one NeuronCore or without --auto-cast) with the same replicas and requests in flight, alternating with the model, and report the model's throughput over it.")
    var baseline: String?

    struct Report: Codable {
        var model: String
        var backend: String
        var replicas: Int
        var cores_per_replica: Int
        var concurrency: Int
        var iterations: Int
        var latency_ms: [String: Double]
        var throughput_per_s: Double
        var outputs: [String: [Double]]
        /// With --scaling: one replica alone, and all replicas' throughput over it.
        var baseline: Baseline?
        var speedup: Double?
        /// All replicas' throughput over one's, round by round.
        var round_speedups: [Double]?
    }

    struct Baseline: Codable {
        /// With --baseline: its model name (nil: one replica of the model itself).
        var model: String?
        var replicas: Int
        var concurrency: Int
        var latency_ms: [String: Double]
        var throughput_per_s: Double
    }

    /// Latencies and throughput of a run.
    struct Measurement {
        var latency: LatencySummary
        var throughput: Double

        func percentile(_ p: Double) -> Double { latency.percentile(p) }
        var percentiles: [String: Double] { latency.percentiles }
    }

    /// One set of tensors per request in flight.
    struct Slot: Sendable {
        var replica: NeuronLoadedModel
        var inputs: [String: NeuronTensor]
        var outputs: [String: NeuronTensor]
    }

    /// Run `total` requests over `slots`, each slot one request in flight.
    func measure(_ slots: [Slot], total: Int) async throws -> Measurement {
        let next = RequestCounter()
        let clock = ContinuousClock()
        let start = clock.now
        let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
            for slot in slots {
                group.addTask {
                    var mine: [Double] = []
                    while next.take(below: total) {
                        let begin = clock.now
                        try await slot.replica.execute(inputs: slot.inputs, outputs: slot.outputs)
                        let elapsed = clock.now - begin
                        mine.append(Double(elapsed.components.seconds) * 1e3 + Double(elapsed.components.attoseconds) * 1e-15)
                    }
                    return mine
                }
            }
            var all: [Double] = []
            for try await part in group { all += part }
            return all.sorted()
        }
        let wall = clock.now - start
        let seconds = Double(wall.components.seconds) + Double(wall.components.attoseconds) * 1e-18
        return Measurement(latency: LatencySummary(latencies), throughput: Double(total) / max(seconds, 1e-9))
    }

    /// --concurrency request slots over `replicas` of `model`, each with
    /// its tensors, the inputs written (given, else random).
    func makeSlots(_ model: NEFFModel, replicas: [NeuronLoadedModel], given: [String: [UInt8]]) throws -> [Slot] {
        var slots: [Slot] = []
        for index in 0..<concurrency {
            let replica = replicas[index % replicas.count]
            let inputs = try replica.allocateInputs(), outputs = try replica.allocateOutputs()
            for tensor in model.inputs {
                let data = given[tensor.name] ?? ModelInputs.deterministic(for: tensor)
                try data.withUnsafeBytes { try inputs[tensor.name]?.write($0) }
            }
            slots.append(Slot(replica: replica, inputs: inputs, outputs: outputs))
        }
        return slots
    }

    func validate() throws {
        guard iterations >= 1, cores >= 1, concurrency >= 1 else {
            throw ValidationError("--iterations, --cores and --concurrency take whole numbers of at least 1")
        }
        guard !(scaling && baseline != nil) else {
            throw ValidationError("--scaling compares replicas, --baseline another NEFF: one at a time")
        }
        guard (1...20).contains(scalingRounds) else {
            throw ValidationError("--scaling-rounds takes 1 to 20")
        }
        guard (1...4096).contains(exampleBatch), (16...4096).contains(exampleWidth) else {
            throw ValidationError("--example-batch takes 1 to 4096, --example-width 16 to 4096")
        }
    }

    func run() async throws {
        if exampleMlp { try NEFFExamples.mlp(batch: exampleBatch, width: exampleWidth).write(to: neff) }
        let model = try NEFFModel(contentsOf: neff)
        let runtime = try NeuronRuntime()
        defer { runtime.close() }
        let recorder = profile.map { _ in NeuronProfileRecorder(limit: max(iterations, 1) * 2 + concurrency) }
        var options = runtime.defaultLoadOptions
        if let recorder { options.profiler = recorder }
        var replicas: [NeuronLoadedModel] = []
        for _ in 0..<cores { replicas.append(try runtime.load(model, options: options)) }

        let given: [String: [UInt8]]
        do {
            given = try ModelInputs.parse(inputs, for: model)
        } catch {
            throw ValidationError(error.description)
        }

        let slots = try makeSlots(model, replicas: replicas, given: given)

        // The baseline NEFF: the same inputs, its own replicas and slots.
        var baselineModel: NEFFModel?
        var baselineSlots: [Slot] = []
        if let path = baseline {
            let other = try NEFFModel(contentsOf: path)
            for tensor in model.inputs where other.inputs.first(where: { $0.name == tensor.name })?.byteCount != tensor.byteCount {
                throw ValidationError("\(path) does not take \(model.name)'s input \(tensor.name) (\(tensor.dtype), \(tensor.shape)); a baseline takes the same inputs")
            }
            var others: [NeuronLoadedModel] = []
            for _ in 0..<cores { others.append(try runtime.load(other)) }
            baselineSlots = try makeSlots(other, replicas: others, given: given)
            for slot in baselineSlots { try await slot.replica.execute(inputs: slot.inputs, outputs: slot.outputs) }
            baselineModel = other
        }

        // Warm up each slot once, then measure. With --scaling, rounds of
        // one replica alone (its slots are every replicas.count-th), then
        // all; the best of each is kept.
        for slot in slots { try await slot.replica.execute(inputs: slot.inputs, outputs: slot.outputs) }
        recorder?.reset()
        let total = iterations
        var baselineReport: Baseline?
        var baselineThroughput: Double?
        var roundSpeedups: [Double]?
        var run: Measurement
        if scaling || baselineModel != nil {
            let alone = baselineModel != nil ? baselineSlots
                : stride(from: 0, to: slots.count, by: replicas.count).map { slots[$0] }
            var bestAlone: Measurement?, bestAll: Measurement?
            var ratios: [Double] = []
            for _ in 0..<scalingRounds {
                let one = try await measure(alone, total: total)
                let all = try await measure(slots, total: total)
                ratios.append(all.throughput / one.throughput)
                if one.throughput > bestAlone?.throughput ?? 0 { bestAlone = one }
                if all.throughput > bestAll?.throughput ?? 0 { bestAll = all }
            }
            guard let bestAlone, let bestAll else { return }
            baselineReport = Baseline(model: baselineModel?.name, replicas: baselineModel != nil ? replicas.count : 1,
                                concurrency: alone.count, latency_ms: bestAlone.percentiles,
                                throughput_per_s: bestAlone.throughput)
            baselineThroughput = bestAlone.throughput
            roundSpeedups = ratios
            run = bestAll
        } else {
            run = try await measure(slots, total: total)
        }

        var outputs: [String: [Double]] = [:]
        if let dir = outputDir {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        for (index, tensor) in model.outputs.enumerated() {
            guard let output = slots[0].outputs[tensor.name] else { continue }
            let raw = try output.read(UInt8.self)
            let values = tensor.dtype.values(raw)
            outputs[tensor.name] = Array(values.prefix(8))
            if let dir = outputDir {
                // bfloat16, float8 and float4 are written as float32, the
                // four- and two-bit integers as int8 or uint8 (numpy has
                // none of them), exactly.
                let dtype = tensor.dtype.npyCarrier
                let raw = dtype == tensor.dtype ? raw : dtype.bytes(values)
                let file = try NPY.encode(NPY.Array(dtype: dtype, shape: tensor.shape, bytes: raw))
                try Data(file).write(to: URL(fileURLWithPath: dir).appendingPathComponent(tensorFileName(tensor.name, index: index)))
            }
        }
        if let recorder, let path = profile {
            let capture = try recorder.capture(tool: "neuron-run", model: model, backend: runtime.backend)
            try capture.write(to: path)
            if !json {
                FileHandle.standardError.write(Data("neuron-run: profile of \(capture.executions.count) requests written to \(path) (neuron-profile view \(path))\n".utf8))
            }
        }
        let report = Report(model: model.name, backend: runtime.backend.name, replicas: replicas.count,
                            cores_per_replica: model.coreCount, concurrency: concurrency, iterations: total,
                            latency_ms: run.percentiles, throughput_per_s: run.throughput, outputs: outputs,
                            baseline: baselineReport, speedup: baselineThroughput.map { run.throughput / $0 },
                            round_speedups: roundSpeedups)
        if json {
            try printJSON(report)
            return
        }
        // NEURON_SIM_BF16=amx changes results: say so next to them.
        let inexact = (runtime.backend as? SimulatorBackend)?.configuration.bf16Products == .amx
            ? " (bf16 products on AMX's tiles: inexact)" : ""
        print("neuron-run: \(model.name) on \(replicas.count) replica(s) of \(model.coreCount) NeuronCore(s), backend \(report.backend)\(inexact), \(concurrency) in flight")
        for (name, values) in outputs.sorted(by: { $0.key < $1.key }) {
            print("  output \(displayName(name)): " + values.map { String(format: "%.5g", $0) }.joined(separator: " ")
                  + (values.count == 8 ? " ..." : ""))
        }
        if let baseline = baselineReport, let other = baseline.model {
            print(String(format: "  baseline %@ (%d in flight): latency p50 %.3f ms   p90 %.3f ms   p99 %.3f ms   throughput %.1f/s",
                         other, baseline.concurrency, baseline.latency_ms["p50"] ?? 0, baseline.latency_ms["p90"] ?? 0,
                         baseline.latency_ms["p99"] ?? 0, baseline.throughput_per_s))
        } else if let baseline = baselineReport {
            print(String(format: "  1 replica alone (%d in flight): latency p50 %.3f ms   p90 %.3f ms   p99 %.3f ms   throughput %.1f/s",
                         baseline.concurrency, baseline.latency_ms["p50"] ?? 0, baseline.latency_ms["p90"] ?? 0,
                         baseline.latency_ms["p99"] ?? 0, baseline.throughput_per_s))
        }
        print(String(format: "  latency p50 %.3f ms   p90 %.3f ms   p99 %.3f ms   throughput %.1f/s over %d requests",
                     run.percentile(50), run.percentile(90), run.percentile(99), report.throughput_per_s, total))
        if let speedup = report.speedup, let other = baselineReport?.model {
            print(String(format: "  %.2fx the throughput of %@ (best of %d rounds each; round by round: %@)",
                         speedup, other, scalingRounds,
                         (roundSpeedups ?? []).map { String(format: "%.2fx", $0) }.joined(separator: ", ")))
        } else if let speedup = report.speedup {
            print(String(format: "  %d replicas: %.2fx the throughput of one (best of %d rounds each; round by round: %@)",
                         replicas.count, speedup, scalingRounds,
                         (roundSpeedups ?? []).map { String(format: "%.2fx", $0) }.joined(separator: ", ")))
        }
    }
}

/// Hands out request numbers to the workers.
final class RequestCounter: Sendable {
    private let count = Locked(0)

    /// True, and one more request taken, while fewer than `limit` were.
    func take(below limit: Int) -> Bool {
        count.withLock { count in
            guard count < limit else { return false }
            count += 1
            return true
        }
    }
}
