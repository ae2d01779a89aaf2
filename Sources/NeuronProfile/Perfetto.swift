import Foundation
import NeuronDevice
import NeuronNEFF

/// A capture as a Chrome trace-event JSON file, which ui.perfetto.dev and
/// chrome://tracing load: a process per NeuronCore with a track of its
/// instructions (each slice named by its layer, with its op, nodes, work
/// and bytes), a track of its jobs (running, and waiting for the stage
/// before), the time each job sat in the queue (async slices), a counter
/// of the bytes it moved; and a process for the model's executions.
/// Times are microseconds from the capture's first event, exact to the
/// nanosecond.
public enum NeuronPerfetto {
    /// The model's process; NeuronCore g is process `coreProcess + g`.
    static let modelProcess = 1
    static let coreProcess = 10
    /// Threads of a NeuronCore's process.
    public static let instructionThread = 1
    static let jobThread = 2

    public static func json(_ profile: NeuronProfile) -> String {
        let model = profile.model
        let origin = profile.executions.map(\.start).filter { $0 > 0 }.min() ?? 0
        func ts(_ ns: UInt64) -> JSONValue { .micros(ns >= origin ? ns - origin : 0) }
        func dur(_ a: UInt64, _ b: UInt64) -> JSONValue { .micros(b >= a ? b - a : 0) }
        var events: [JSONValue] = []
        func meta(_ name: String, pid: Int, tid: Int = 0, _ args: [String: JSONValue]) {
            events.append(.object(["name": .string(name), "ph": .string("M"), "pid": .int(pid), "tid": .int(tid),
                                   "args": .object(args)]))
        }
        meta("process_name", pid: modelProcess, ["name": .string("model \(model.name)")])
        meta("process_sort_index", pid: modelProcess, ["sort_index": .int(0)])
        let cores = Set(profile.executions.flatMap { $0.jobs.map { ($0.globalCore) } }).sorted()
        for core in cores {
            let pid = coreProcess + core
            let where_ = profile.executions.lazy.flatMap(\.jobs).first { $0.globalCore == core }
            let label = where_.map { "NeuronCore \(core) (device \($0.device), core \($0.deviceCore))" } ?? "NeuronCore \(core)"
            meta("process_name", pid: pid, ["name": .string(label)])
            meta("process_sort_index", pid: pid, ["sort_index": .int(core + 1)])
            meta("thread_name", pid: pid, tid: instructionThread, ["name": .string("instructions")])
            meta("thread_sort_index", pid: pid, tid: instructionThread, ["sort_index": .int(0)])
            meta("thread_name", pid: pid, tid: jobThread, ["name": .string("jobs")])
            meta("thread_sort_index", pid: pid, tid: jobThread, ["sort_index": .int(1)])
        }
        var asyncID = 0
        var moved: [Int: (read: UInt64, written: UInt64)] = [:]
        for execution in profile.executions {
            asyncID += 1
            let args: [String: JSONValue] = ["execution": .int(execution.index), "replica": .int(execution.replica),
                                             "latency_us": .micros(execution.latency)]
            events.append(.object(["name": .string("execution \(execution.index)"), "cat": .string("execution"),
                                   "ph": .string("b"), "id": .int(asyncID), "pid": .int(modelProcess),
                                   "tid": .int(0), "ts": ts(execution.start), "args": .object(args)]))
            events.append(.object(["name": .string("execution \(execution.index)"), "cat": .string("execution"),
                                   "ph": .string("e"), "id": .int(asyncID), "pid": .int(modelProcess),
                                   "tid": .int(0), "ts": ts(execution.end)]))
            for job in execution.jobs {
                let pid = coreProcess + job.globalCore, trace = job.trace
                let jobArgs: [String: JSONValue] = [
                    "program": .int(job.program), "execution": .int(execution.index), "sequence": .uint(trace.sequence),
                    "status": .int(Int(trace.status)), "records": .int(trace.records.count),
                    "records_dropped": .uint(trace.dropped)]
                // In the queue: async, as queued jobs overlap one another.
                asyncID += 1
                for (phase, at) in [("b", trace.submitted), ("e", trace.dequeued)] {
                    events.append(.object(["name": .string("queued (program \(job.program))"), "cat": .string("queue"),
                                           "ph": .string(phase), "id": .int(asyncID), "pid": .int(pid), "tid": .int(jobThread),
                                           "ts": ts(at), "args": .object(jobArgs)]))
                }
                let ran = trace.started > 0
                if ran && trace.started > trace.dequeued {
                    events.append(.object(["name": .string("waiting for program \(model.programs[job.program].after.map(String.init) ?? "?")"),
                                           "cat": .string("dependency"), "ph": .string("X"), "pid": .int(pid),
                                           "tid": .int(jobThread), "ts": ts(trace.dequeued),
                                           "dur": dur(trace.dequeued, trace.started), "args": .object(jobArgs)]))
                }
                events.append(.object(["name": .string("program \(job.program)\(ran ? "" : " (did not run)")"), "cat": .string("job"),
                                       "ph": .string("X"), "pid": .int(pid), "tid": .int(jobThread),
                                       "ts": ts(ran ? trace.started : trace.dequeued),
                                       "dur": dur(ran ? trace.started : trace.dequeued, trace.finished),
                                       "args": .object(jobArgs)]))
                for record in trace.records {
                    let insn = model.instructionName(program: job.program, instruction: record.instruction)
                    let layer = model.layer(program: job.program, instruction: record.instruction)
                    var args: [String: JSONValue] = [
                        "instruction": .int(record.instruction), "op": .string(insn), "program": .int(job.program),
                        "execution": .int(execution.index), "work": .uint(record.work),
                        "flops": .double(model.flops(program: job.program, record)),
                        "bytes_read": .uint(record.bytesRead), "bytes_written": .uint(record.bytesWritten)]
                    if record.partCount != record.parts {
                        args["parts"] = .string("\(record.part)..<\(record.part + record.partCount) of \(record.parts)")
                    }
                    if let layer {
                        args["layer"] = .string(layer.name)
                        args["layer_op"] = .string(layer.opGroup)
                        args["nodes"] = .array(layer.nodes.map { .string("\($0.op) \($0.name)") })
                    }
                    events.append(.object(["name": .string(layer?.name ?? insn), "cat": .string(layer?.opGroup ?? insn),
                                           "ph": .string("X"), "pid": .int(pid), "tid": .int(instructionThread),
                                           "ts": ts(record.start), "dur": dur(record.start, record.end),
                                           "args": .object(args)]))
                    var total = moved[job.globalCore] ?? (0, 0)
                    total.read += record.bytesRead
                    total.written += record.bytesWritten
                    moved[job.globalCore] = total
                    events.append(.object(["name": .string("bytes moved"), "ph": .string("C"), "pid": .int(pid),
                                           "ts": ts(record.end),
                                           "args": .object(["read": .uint(total.read), "written": .uint(total.written)])]))
                }
            }
        }
        let document: JSONValue = .object([
            "traceEvents": .array(events),
            "displayTimeUnit": .string("ns"),
            "otherData": .object([
                "model": .string(model.name), "cpu": .string(profile.host.cpu), "backend": .string(profile.host.backend),
                "executions": .int(profile.executions.count), "capture_version": .int(profile.version)]),
        ])
        return document.rendered
    }
}

/// JSON written by hand where Foundation's writer falls short: exact
/// microseconds (nanoseconds with three decimals) and a stable key order.
enum JSONValue {
    case string(String)
    case int(Int)
    case uint(UInt64)
    case double(Double)
    case micros(UInt64)
    case array([JSONValue])
    case object([String: JSONValue])

    var rendered: String {
        var out = ""
        write(to: &out)
        return out
    }

    func write(to out: inout String) {
        switch self {
        case .string(let text):
            out += "\""
            for scalar in text.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                default:
                    if scalar.value < 0x20 {
                        out += String(format: "\\u%04x", scalar.value)
                    } else {
                        out.unicodeScalars.append(scalar)
                    }
                }
            }
            out += "\""
        case .int(let value): out += String(value)
        case .uint(let value): out += String(value)
        case .double(let value): out += value.isFinite ? String(value) : "0"
        case .micros(let ns):
            let fraction = String(ns % 1000)
            out += "\(ns / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
        case .array(let items):
            out += "["
            for (index, item) in items.enumerated() {
                if index > 0 { out += ",\n" }
                item.write(to: &out)
            }
            out += "]"
        case .object(let fields):
            out += "{"
            for (index, key) in fields.keys.sorted().enumerated() {
                if index > 0 { out += "," }
                JSONValue.string(key).write(to: &out)
                out += ":"
                fields[key]?.write(to: &out)
            }
            out += "}"
        }
    }
}
