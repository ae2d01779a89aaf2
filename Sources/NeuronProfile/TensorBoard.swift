import Foundation
import NeuronDevice
import NeuronNEFF
import SwiftProtobuf

/// A capture as a TensorBoard log directory: the compiled graph with each
/// node's NeuronCore and time (an event file the graph dashboard reads,
/// with run metadata timing the nodes) and the trace for the profile
/// plugin (`plugins/profile/<session>/<host>.xplane.pb`, which
/// tensorboard-plugin-profile's trace viewer reads). `tensorboard --logdir DIR`.
public enum NeuronTensorBoard {
    /// The device name of a NeuronCore in the graph (nodes are coloured by it).
    static func device(_ core: Int) -> String { "/device:NeuronCore:\(core)" }

    /// Write `profile` into `logdir` (created if needed): a new event file
    /// and a new profile session each time. Returns the files written.
    @discardableResult
    public static func write(_ profile: NeuronProfile, to logdir: String) throws -> [String] {
        let fm = FileManager.default
        try fm.createDirectory(atPath: logdir, withIntermediateDirectories: true)
        let host = sanitized(profile.host.hostname.isEmpty ? "localhost" : profile.host.hostname)
        let now = Date()
        let stamp = DateFormatter()
        stamp.dateFormat = "yyyy_MM_dd_HH_mm_ss"
        stamp.timeZone = TimeZone(identifier: "UTC")
        let session = "\(sanitized(profile.model.name))_\(stamp.string(from: now))_\(UInt32.random(in: 0...0xffff))"
        let sessionDir = "\(logdir)/plugins/profile/\(session)"
        try fm.createDirectory(atPath: sessionDir, withIntermediateDirectories: true)
        let xplane = "\(sessionDir)/\(host).xplane.pb"
        try Data(try xspace(profile, host: host).serializedBytes() as [UInt8]).write(to: URL(fileURLWithPath: xplane))
        let events = "\(logdir)/events.out.tfevents.\(Int(now.timeIntervalSince1970)).\(host).\(getpid()).\(session.hashValue & 0xffff)"
        try Data(try eventFile(profile, wallTime: now.timeIntervalSince1970)).write(to: URL(fileURLWithPath: events))
        return [events, xplane]
    }

    static func sanitized(_ text: String) -> String {
        let kept = String(text.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." ? $0 : "_" })
        return kept.isEmpty ? "model" : kept
    }

    // MARK: The profile plugin's trace

    /// A plane per NeuronCore, each with a line of instructions (named by
    /// layer, with their op, FLOPs and bytes) and a line of jobs.
    static func xspace(_ profile: NeuronProfile, host: String) -> Tensorflow_Profiler_XSpace {
        let model = profile.model
        let jobs = profile.executions.flatMap { execution in execution.jobs.map { (execution, $0) } }
        let origin = jobs.map(\.1.trace.submitted).filter { $0 > 0 }.min() ?? 0
        let statNames = ["layer", "op", "instruction", "flops", "bytes_read", "bytes_written", "work", "program",
                         "execution", "nodes"]
        func stat(_ name: String) -> Int64 { Int64((statNames.firstIndex(of: name) ?? 0) + 1) }
        var space = Tensorflow_Profiler_XSpace()
        space.hostnames = [host]
        for core in Set(jobs.map(\.1.globalCore)).sorted() {
            var plane = Tensorflow_Profiler_XPlane()
            plane.id = Int64(core)
            plane.name = "/device:CUSTOM:\(core)"
            for (index, name) in statNames.enumerated() {
                var meta = Tensorflow_Profiler_XStatMetadata()
                meta.id = Int64(index + 1)
                meta.name = name
                plane.statMetadata[meta.id] = meta
            }
            var eventIDs: [String: Int64] = [:]
            func eventID(_ name: String) -> Int64 {
                if let id = eventIDs[name] { return id }
                let id = Int64(eventIDs.count + 1)
                eventIDs[name] = id
                var meta = Tensorflow_Profiler_XEventMetadata()
                meta.id = id
                meta.name = name
                meta.displayName = name
                plane.eventMetadata[id] = meta
                return id
            }
            func event(_ name: String, _ start: UInt64, _ end: UInt64, _ stats: [Tensorflow_Profiler_XStat]) -> Tensorflow_Profiler_XEvent {
                var e = Tensorflow_Profiler_XEvent()
                e.metadataID = eventID(name)
                e.offsetPs = Int64(start >= origin ? start - origin : 0) * 1000
                e.durationPs = Int64(end >= start ? end - start : 0) * 1000
                e.stats = stats
                return e
            }
            func int(_ name: String, _ value: Int64) -> Tensorflow_Profiler_XStat {
                var s = Tensorflow_Profiler_XStat()
                s.metadataID = stat(name)
                s.int64Value = value
                return s
            }
            func text(_ name: String, _ value: String) -> Tensorflow_Profiler_XStat {
                var s = Tensorflow_Profiler_XStat()
                s.metadataID = stat(name)
                s.strValue = value
                return s
            }
            var instructions = Tensorflow_Profiler_XLine(), runs = Tensorflow_Profiler_XLine()
            var last = origin
            for (execution, job) in jobs where job.globalCore == core {
                let trace = job.trace
                last = max(last, trace.finished)
                let common = [int("program", Int64(job.program)), int("execution", Int64(execution.index))]
                if trace.started > trace.dequeued, let after = model.programs[job.program].after {
                    runs.events.append(event("waiting for program \(after)", trace.dequeued, trace.started, common))
                }
                if trace.started > 0 {
                    runs.events.append(event("program \(job.program)", trace.started, trace.finished, common))
                }
                for record in trace.records {
                    let insn = model.instructionName(program: job.program, instruction: record.instruction)
                    let layer = model.layer(program: job.program, instruction: record.instruction)
                    var stats = common + [text("op", insn), int("instruction", Int64(record.instruction)),
                                          int("flops", Int64(model.flops(program: job.program, record))),
                                          int("bytes_read", Int64(clamping: record.bytesRead)),
                                          int("bytes_written", Int64(clamping: record.bytesWritten)),
                                          int("work", Int64(clamping: record.work))]
                    if let layer {
                        stats += [text("layer", layer.opGroup),
                                  text("nodes", layer.nodes.map { "\($0.op) \($0.name)" }.joined(separator: ", "))]
                    }
                    instructions.events.append(event(layer?.name ?? insn, record.start, record.end, stats))
                }
            }
            for (id, name, line) in [(1, "instructions", instructions), (2, "jobs", runs)] {
                var line = line
                line.id = Int64(id)
                line.displayID = Int64(id)
                line.name = name
                line.displayName = "NeuronCore \(core) \(name)"
                line.timestampNs = Int64(origin)
                line.durationPs = Int64(last - origin) * 1000
                line.events.sort { $0.offsetPs < $1.offsetPs }
                plane.lines.append(line)
            }
            space.planes.append(plane)
        }
        return space
    }

    // MARK: The graph dashboard's event file

    /// The event file: its version, the graph, and run metadata with each
    /// node's mean time per execution (the graph's "compute time" colours).
    static func eventFile(_ profile: NeuronProfile, wallTime: Double) throws -> [UInt8] {
        let (graph, stats) = graphAndStats(profile)
        var version = Tensorboard_Event()
        version.wallTime = wallTime
        version.fileVersion = "brain.Event:2"
        var graphEvent = Tensorboard_Event()
        graphEvent.wallTime = wallTime
        graphEvent.graphDef = Data(try graph.serializedBytes() as [UInt8])
        var metadata = Tensorboard_RunMetadata()
        metadata.stepStats = stats
        var tagged = Tensorboard_TaggedRunMetadata()
        tagged.tag = "neuron-profile"
        tagged.runMetadata = Data(try metadata.serializedBytes() as [UInt8])
        var metadataEvent = Tensorboard_Event()
        metadataEvent.wallTime = wallTime
        metadataEvent.taggedRunMetadata = tagged
        var file: [UInt8] = []
        for event in [version, graphEvent, metadataEvent] {
            file += TFRecord.frame(try event.serializedBytes())
        }
        return file
    }

    /// The graph: each ONNX node of the debug section (a fused group's
    /// nodes in a scope named by the group, chained), its edges, its
    /// NeuronCore as the device, and its time, share, FLOPs and bytes.
    static func graphAndStats(_ profile: NeuronProfile) -> (Tensorboard_GraphDef, Tensorboard_StepStats) {
        var graph = Tensorboard_GraphDef()
        graph.versions.producer = 1
        var stats = Tensorboard_StepStats()
        guard let debug = profile.model.debug else { return (graph, stats) }
        let summary = NeuronProfileSummary(profile)
        let rows = Dictionary(summary.layers.map { ("\($0.op)\u{0}\($0.name)", $0) }) { first, _ in first }
        // Each layer's nodes' graph names; the last one is what readers see.
        var names: [[String]] = []
        var used = Set<String>()
        for layer in debug.layers {
            var own: [String] = []
            let base: [String]
            switch layer.op {
            case "input": base = ["inputs/\(layer.name)"]
            case "output": base = ["outputs/\(layer.name)"]
            default: base = layer.nodes.count > 1 ? layer.nodes.map { "\(layer.name)/\($0.name)" } : layer.nodes.map(\.name)
            }
            for name in base {
                var unique = name.isEmpty ? "node" : name, n = 1
                while !used.insert(unique).inserted {
                    n += 1
                    unique = "\(name)_\(n)"
                }
                own.append(unique)
            }
            names.append(own)
        }
        var devices: [String: [Tensorboard_NodeExecStats]] = [:]
        for (index, layer) in debug.layers.enumerated() {
            let row = rows["\(layer.opGroup)\u{0}\(layer.name)"]
            let core = row?.cores.first ?? 0
            let ops = layer.op == "input" || layer.op == "output" ? [layer.op.capitalized] : layer.nodes.map(\.op)
            for (position, name) in names[index].enumerated() {
                var node = Tensorboard_NodeDef()
                node.name = name
                node.op = position < ops.count ? ops[position] : layer.op
                node.device = device(core)
                node.input = position > 0 ? [names[index][position - 1]] : layer.inputs.compactMap { names[$0].last }
                func attr(_ value: String) -> Tensorboard_AttrValue {
                    var a = Tensorboard_AttrValue()
                    a.s = Data(value.utf8)
                    return a
                }
                func attr(_ value: Double) -> Tensorboard_AttrValue {
                    var a = Tensorboard_AttrValue()
                    a.f = Float(value)
                    return a
                }
                node.attr["neuron_layer"] = attr(layer.name)
                node.attr["neuron_layer_ops"] = attr(layer.opGroup)
                if let row {
                    node.attr["neuron_time_us"] = attr(row.timeUs)
                    node.attr["neuron_share"] = attr(row.share)
                    node.attr["neuron_flops"] = attr(row.flops)
                    node.attr["neuron_bytes"] = attr(row.bytes)
                    node.attr["neuron_gflops_per_s"] = attr(row.gflops)
                    // The group's time, shared among its nodes.
                    let share = row.timeUs / Double(max(1, names[index].count))
                    var exec = Tensorboard_NodeExecStats()
                    exec.nodeName = name
                    exec.allStartMicros = Int64(row.startUs.rounded())
                    exec.opStartRelMicros = 0
                    exec.opEndRelMicros = max(1, Int64(share.rounded()))
                    exec.allEndRelMicros = exec.opEndRelMicros
                    exec.allStartNanos = Int64((row.startUs * 1000).rounded())
                    exec.opEndRelNanos = max(1, Int64((share * 1000).rounded()))
                    exec.allEndRelNanos = exec.opEndRelNanos
                    exec.timelineLabel = "\(name) = \(node.op)()"
                    devices[device(core), default: []].append(exec)
                }
                graph.node.append(node)
            }
        }
        for (name, nodes) in devices.sorted(by: { $0.key < $1.key }) {
            var dev = Tensorboard_DeviceStepStats()
            dev.device = name
            dev.nodeStats = nodes
            stats.devStats.append(dev)
        }
        return (graph, stats)
    }
}

/// TensorFlow's record framing of event files: each record is its length
/// (little-endian u64), the masked CRC-32C of the length, the data and the
/// masked CRC-32C of the data.
enum TFRecord {
    static func frame(_ data: [UInt8]) -> [UInt8] {
        var length = withUnsafeBytes(of: UInt64(data.count).littleEndian) { Array($0) }
        let lengthCRC = withUnsafeBytes(of: masked(crc32c(length)).littleEndian) { Array($0) }
        let dataCRC = withUnsafeBytes(of: masked(crc32c(data)).littleEndian) { Array($0) }
        length += lengthCRC
        return length + data + dataCRC
    }

    static func masked(_ crc: UInt32) -> UInt32 { ((crc >> 15) | (crc << 17)) &+ 0xa282_ead8 }

    /// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78).
    static func crc32c(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xffff_ffff
        for byte in bytes {
            crc = table[Int((crc ^ UInt32(byte)) & 0xff)] ^ (crc >> 8)
        }
        return crc ^ 0xffff_ffff
    }

    static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0x82f6_3b78 ^ (c >> 1) : c >> 1 }
        return c
    }
}
