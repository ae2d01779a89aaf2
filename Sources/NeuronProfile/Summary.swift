import Foundation
import NeuronCLI
import NeuronDevice
import NeuronNEFF

/// Where the time of a capture went: per layer (in the order they ran),
/// per op type, per pipeline stage, with the compiler's estimate beside
/// the measured time. Times are means per execution.
public struct NeuronProfileSummary: Codable, Sendable, Equatable {
    /// A layer, or an op type: its time, share, work and bytes.
    public struct Row: Codable, Sendable, Equatable {
        /// The layer's name (the ONNX node, fused nodes joined by "+"), or the op type.
        public var name: String
        /// The layer's op types ("Conv+Relu"), or the op type.
        public var op: String
        /// The ONNX nodes it stands for (layers only).
        public var nodes: [String]?
        /// NeuronCores (global indices) it ran on.
        public var cores: [Int]
        /// Instructions it has (per execution).
        public var instructions: Int
        /// Mean time per execution, in microseconds, and its share of
        /// all instructions' time.
        public var timeUs: Double
        public var share: Double
        /// Floating-point operations per execution (a multiply-add counts
        /// two), and the rate they ran at.
        public var flops: Double
        public var gflops: Double
        /// Bytes read and written per execution.
        public var bytes: Double
        /// The compiler's estimate's share of the whole (nil without a
        /// debug section), and the time it predicts out of the measured total.
        public var estimateShare: Double?
        public var estimateUs: Double?
        /// When it first started in an execution, in microseconds from the
        /// execution's start (mean): the order the layers ran in.
        public var startUs: Double
    }

    /// A pipeline stage: a program on its NeuronCore.
    public struct Stage: Codable, Sendable, Equatable {
        public var program: Int
        public var core: Int
        /// Instruction time per execution, and its share of the execution's latency.
        public var busyUs: Double
        public var busyShare: Double
        /// The program it waits for, and the time per execution its job
        /// waited for it once at the head of its queue (a pipeline
        /// bubble), in microseconds.
        public var after: Int?
        public var waitUs: Double
    }

    public var model: String
    public var cpu: String
    public var backend: String
    public var executions: Int
    public var executionsNotKept: Int
    /// Latency of an execution (from the request to its result), in microseconds.
    public var latencyP50Us: Double
    public var latencyMeanUs: Double
    public var latencyMinUs: Double
    /// Instructions' time per execution, summed over NeuronCores.
    public var busyUs: Double
    /// Records the trace buffers had no room for (0 when complete).
    public var droppedRecords: UInt64
    public var hasLayerNames: Bool
    public var layers: [Row]
    public var ops: [Row]
    public var stages: [Stage]

    public init(_ profile: NeuronProfile) {
        let model = profile.model
        let executions = profile.executions
        let count = max(1, executions.count)
        struct Accumulator {
            var name = "", op = "", nodes: [String]? = nil
            var cores = Set<Int>()
            var instructions = Set<[Int]>()
            var ns: UInt64 = 0
            var flops = 0.0, bytes = 0.0
            var estimate = 0.0
            var startSum = 0.0, starts = 0
        }
        var layers: [String: Accumulator] = [:], ops: [String: Accumulator] = [:]
        var busy: UInt64 = 0, dropped: UInt64 = 0
        var stageBusy = [UInt64](repeating: 0, count: model.programs.count)
        var stageWait = [UInt64](repeating: 0, count: model.programs.count)
        var stageCore = [Int](repeating: 0, count: model.programs.count)
        for execution in executions {
            let origin = execution.start
            var seenInExecution = Set<String>()
            for job in execution.jobs {
                let trace = job.trace
                dropped += trace.dropped
                stageCore[job.program] = job.globalCore
                if trace.started > trace.dequeued { stageWait[job.program] += trace.started - trace.dequeued }
                for record in trace.records {
                    let name = model.instructionName(program: job.program, instruction: record.instruction)
                    let opName = String(name.prefix { $0 != "." })
                    let layer = model.layer(program: job.program, instruction: record.instruction)
                    let key = layer.map { "\($0.op)\u{0}\($0.name)" } ?? "\(job.program):\(record.instruction)"
                    let duration = record.duration
                    let flops = model.flops(program: job.program, record)
                    let bytes = Double(record.bytesRead + record.bytesWritten)
                    busy += duration
                    stageBusy[job.program] += duration
                    var row = layers[key] ?? Accumulator()
                    if row.name.isEmpty {
                        row.name = layer?.name ?? "instruction \(record.instruction) of program \(job.program)"
                        row.op = layer?.opGroup ?? name
                        row.nodes = layer.map { $0.nodes.map(\.name) }
                    }
                    row.cores.insert(job.globalCore)
                    row.instructions.insert([job.program, record.instruction])
                    row.ns += duration
                    row.flops += flops
                    row.bytes += bytes
                    if seenInExecution.insert(key).inserted {
                        row.startSum += Double(record.start >= origin ? record.start - origin : 0)
                        row.starts += 1
                    }
                    layers[key] = row
                    var op = ops[opName] ?? Accumulator()
                    op.name = opName
                    op.op = opName
                    op.cores.insert(job.globalCore)
                    op.instructions.insert([job.program, record.instruction])
                    op.ns += duration
                    op.flops += flops
                    op.bytes += bytes
                    ops[opName] = op
                }
            }
        }
        // The compiler's estimates, per layer, once per instruction.
        let debug = model.debug
        var estimateTotal = 0.0
        if let debug {
            for (program, entry) in debug.programs.enumerated() {
                for (index, estimate) in entry.estimates.enumerated() {
                    estimateTotal += estimate
                    guard let layer = debug.layer(program: program, instruction: index) else { continue }
                    layers["\(layer.op)\u{0}\(layer.name)"]?.estimate += estimate
                }
            }
        }
        let n = Double(count)
        let busyUs = Double(busy) / 1000 / n
        func row(_ a: Accumulator, estimates: Bool) -> Row {
            let timeUs = Double(a.ns) / 1000 / n
            let share = busy > 0 ? Double(a.ns) / Double(busy) : 0
            let estimateShare = estimates && debug != nil && estimateTotal > 0 ? a.estimate / estimateTotal : nil
            return Row(name: a.name, op: a.op, nodes: a.nodes, cores: a.cores.sorted(),
                       instructions: a.instructions.count, timeUs: timeUs, share: share,
                       flops: a.flops / n, gflops: a.ns > 0 ? a.flops / Double(a.ns) : 0, bytes: a.bytes / n,
                       estimateShare: estimateShare, estimateUs: estimateShare.map { $0 * busyUs },
                       startUs: a.starts > 0 ? a.startSum / Double(a.starts) / 1000 : 0)
        }
        let latencies = executions.map { Double($0.latency) / 1000 }.sorted()
        let latencyMean = latencies.isEmpty ? 0 : latencies.reduce(0, +) / Double(latencies.count)
        self.model = model.name
        cpu = profile.host.cpu
        backend = profile.host.backend
        self.executions = executions.count
        executionsNotKept = profile.executionsNotKept
        latencyP50Us = latencies.isEmpty ? 0 : latencies[(latencies.count - 1) / 2]
        latencyMeanUs = latencyMean
        latencyMinUs = latencies.first ?? 0
        self.busyUs = busyUs
        droppedRecords = dropped
        hasLayerNames = debug != nil
        self.layers = layers.values.map { row($0, estimates: true) }.sorted { ($0.startUs, $0.name) < ($1.startUs, $1.name) }
        self.ops = ops.values.map { row($0, estimates: false) }.sorted { $0.timeUs > $1.timeUs }
        stages = model.programs.indices.map { program in
            let stageUs = Double(stageBusy[program]) / 1000 / n
            return Stage(program: program, core: stageCore[program], busyUs: stageUs,
                         busyShare: latencyMean > 0 ? stageUs / latencyMean : 0,
                         after: model.programs[program].after, waitUs: Double(stageWait[program]) / 1000 / n)
        }
    }

    /// The summary as a text report: the totals, the layers in the order
    /// they ran, the op types by time, and each stage's busy share.
    public func text(maxLayers: Int? = nil) -> String {
        var lines: [String] = []
        lines.append("neuron-profile: \(model), \(executions) execution(s) on \(backend), CPU \(cpu)")
        lines.append(String(format: "  latency p50 %.1f us   mean %.1f us   min %.1f us; instructions %.1f us per execution",
                            latencyP50Us, latencyMeanUs, latencyMinUs, busyUs))
        if droppedRecords > 0 {
            lines.append("  note: \(droppedRecords) instruction records did not fit the trace buffers; those instructions are missing")
        }
        if executionsNotKept > 0 {
            lines.append("  note: \(executionsNotKept) further executions ran after the capture was full and are not in it")
        }
        if !hasLayerNames {
            lines.append("  note: the NEFF has no debug section (compiled with --no-debug-info, or not by neuron-cc): instructions are shown, not layers")
        }
        func fmt(_ value: Double, _ unit: String) -> String {
            value >= 1e9 ? String(format: "%.2fG%@", value / 1e9, unit) : value >= 1e6 ? String(format: "%.2fM%@", value / 1e6, unit)
                : value >= 1e3 ? String(format: "%.1fk%@", value / 1e3, unit) : String(format: "%.0f%@", value, unit)
        }
        func table(_ headers: [String]) -> TextTable {
            var table = TextTable(headers: headers.map { [$0] })
            table.rulesBetweenRows = false
            table.rightAligned = Set(2..<headers.count)
            return table
        }
        var layerTable = table(["layer", "op", "core", "time us", "share", "est. share", "FLOPs", "GFLOP/s", "bytes"])
        for row in layers.prefix(maxLayers ?? layers.count) {
            layerTable.append([row.name, row.op, row.cores.map(String.init).joined(separator: ","),
                            String(format: "%.1f", row.timeUs), String(format: "%.1f%%", row.share * 100),
                            row.estimateShare.map { String(format: "%.1f%%", $0 * 100) } ?? "-",
                            fmt(row.flops, ""), String(format: "%.2f", row.gflops), fmt(row.bytes, "B")].map { [$0] })
        }
        lines.append("")
        lines.append("layers, in the order they ran (\(layers.count)):")
        lines += layerTable.render().split(separator: "\n").map { "  " + $0 }
        if let maxLayers, layers.count > maxLayers { lines.append("  ... \(layers.count - maxLayers) more") }
        var opTable = table(["op", "instructions", "time us", "share", "FLOPs", "GFLOP/s", "bytes"])
        opTable.rightAligned = Set(1..<7)
        for row in ops {
            opTable.append([row.name, String(row.instructions), String(format: "%.1f", row.timeUs),
                         String(format: "%.1f%%", row.share * 100), fmt(row.flops, ""),
                         String(format: "%.2f", row.gflops), fmt(row.bytes, "B")].map { [$0] })
        }
        lines.append("")
        lines.append("op types, by time:")
        lines += opTable.render().split(separator: "\n").map { "  " + $0 }
        lines.append("")
        lines.append("stages (one per NeuronCore of the model):")
        for stage in stages {
            let wait = stage.after.map { String(format: "; waited %.1f us for program %d (a bubble)", stage.waitUs, $0) } ?? ""
            lines.append(String(format: "  program %d on NeuronCore %d: busy %.1f us per execution, %.0f%% of the latency",
                                stage.program, stage.core, stage.busyUs, stage.busyShare * 100) + wait)
        }
        return lines.joined(separator: "\n")
    }
}
