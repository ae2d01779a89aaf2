import Foundation
import NeuronDevice
import NeuronISA
import NeuronNEFF

/// A profile capture: a model's executions as the NeuronCores ran them,
/// every instruction timed by the engine's job runner (`NeuronJobTrace`),
/// with the model's layer names (the NEFF's debug section). Written by
/// `neuron-profile capture`, `neuron-run --profile` and any application
/// run with `NEURON_RT_PROFILE=DIR`; read by `neuron-profile view`. The
/// file is JSON, versioned (docs/profiling.md): a newer reader reads every
/// older version, and a version it does not know is refused by number.
public struct NeuronProfile: Codable, Sendable, Equatable {
    /// The `format` every capture names.
    public static let formatName = "neuron-profile"
    /// The version this library writes, and the newest it reads.
    public static let currentVersion = 1

    /// Where it was captured.
    public struct Host: Codable, Sendable, Equatable {
        /// The CPU's model name (/proc/cpuinfo), which every figure depends on.
        public var cpu: String
        /// "kernel" (the driver) or "simulator".
        public var backend: String
        /// The driver's API version, "1.8".
        public var api: String
        public var hostname: String
        public var pid: Int32

        public init(cpu: String, backend: String, api: String, hostname: String, pid: Int32) {
            self.cpu = cpu
            self.backend = backend
            self.api = api
            self.hostname = hostname
            self.pid = pid
        }

        /// This machine and process, for `backend`.
        public static func current(backend: String, api: String) -> Host {
            Host(cpu: cpuName(), backend: backend, api: api,
                 hostname: ProcessInfo.processInfo.hostName, pid: ProcessInfo.processInfo.processIdentifier)
        }

        /// The model name /proc/cpuinfo gives, or "unknown CPU".
        public static func cpuName() -> String {
            guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown CPU" }
            for line in text.split(separator: "\n") where line.hasPrefix("model name") {
                if let colon = line.firstIndex(of: ":") {
                    return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                }
            }
            return "unknown CPU"
        }
    }

    /// One program of the model: its NeuronCore within the model and, per
    /// instruction, its name ("CONV2D", "BINARY.add"), the engine's work
    /// estimate and its floating-point operations as a model counts them.
    public struct Program: Codable, Sendable, Equatable {
        public var core: Int
        public var after: Int?
        public var instructions: [String]
        public var costs: [UInt64]
        public var flops: [UInt64]

        public init(core: Int, after: Int?, instructions: [String], costs: [UInt64], flops: [UInt64]) {
            self.core = core
            self.after = after
            self.instructions = instructions
            self.costs = costs
            self.flops = flops
        }
    }

    /// The model profiled.
    public struct Model: Codable, Sendable, Equatable {
        public var name: String
        /// The compilation's UUID, in hex.
        public var uuid: String
        /// NeuronCores one copy of it runs on (its pipeline stages).
        public var cores: Int
        public var programs: [Program]
        /// Layer names and the compiler's estimates; nil for a NEFF
        /// compiled with --no-debug-info.
        public var debug: NEFFDebugInfo?

        public init(name: String, uuid: String, cores: Int, programs: [Program], debug: NEFFDebugInfo?) {
            self.name = name
            self.uuid = uuid
            self.cores = cores
            self.programs = programs
            self.debug = debug
        }

        /// From a NEFF; throws when a program does not validate.
        public init(_ model: NEFFModel) throws(NeuronProgramError) {
            var programs: [Program] = []
            for program in model.programs {
                let list = try NeuronEngine.instructions(program.image, slotSizes: model.slotSizes(of: program))
                programs.append(Program(core: program.core, after: program.after,
                                        instructions: list.map(\.name), costs: list.map(\.cost),
                                        flops: list.map(\.flops)))
            }
            self.init(name: model.name, uuid: model.uuid.map { String(format: "%02x", $0) }.joined(),
                      cores: model.coreCount, programs: programs, debug: model.debug)
        }

        /// The layer instruction `index` of program `program` came from.
        public func layer(program: Int, instruction index: Int) -> NEFFDebugInfo.Layer? {
            debug?.layer(program: program, instruction: index)
        }

        /// The FLOPs of `record`: its instruction's, or the share of them
        /// its parts' work is of the instruction's.
        public func flops(program: Int, _ record: NeuronJobTrace.Record) -> Double {
            guard programs.indices.contains(program), programs[program].flops.indices.contains(record.instruction),
                  programs[program].costs.indices.contains(record.instruction) else { return Double(record.work) }
            let whole = Double(programs[program].flops[record.instruction])
            let cost = Double(programs[program].costs[record.instruction])
            return record.partCount >= record.parts || cost == 0 ? whole : whole * Double(record.work) / cost
        }

        /// The instruction's name, "?" when out of range.
        public func instructionName(program: Int, instruction index: Int) -> String {
            guard programs.indices.contains(program), programs[program].instructions.indices.contains(index) else { return "?" }
            return programs[program].instructions[index]
        }
    }

    /// One job of an execution: program `program` on a NeuronCore.
    public struct Job: Codable, Sendable, Equatable {
        public var program: Int
        /// The device, its NeuronCore, and the runtime's global index of it.
        public var device: Int
        public var deviceCore: Int
        public var globalCore: Int
        public var trace: NeuronJobTrace

        public init(program: Int, device: Int, deviceCore: Int, globalCore: Int, trace: NeuronJobTrace) {
            self.program = program
            self.device = device
            self.deviceCore = deviceCore
            self.globalCore = globalCore
            self.trace = trace
        }
    }

    /// One inference: a job per program, in the model's order.
    public struct Execution: Codable, Sendable, Equatable {
        /// Its number among the captured ones, from 0.
        public var index: Int
        /// The loaded copy (replica) that ran it, from 0.
        public var replica: Int
        public var jobs: [Job]
        /// When the application asked for it and when the runtime had its
        /// result (CLOCK_MONOTONIC nanoseconds), as `execute` was timed.
        public var requested: UInt64
        public var returned: UInt64

        public init(index: Int, replica: Int, jobs: [Job], requested: UInt64, returned: UInt64) {
            self.index = index
            self.replica = replica
            self.jobs = jobs
            self.requested = requested
            self.returned = returned
        }

        /// From the request to its result.
        public var start: UInt64 { min(requested, jobs.map(\.trace.submitted).min() ?? requested) }
        public var end: UInt64 { max(returned, jobs.map(\.trace.finished).max() ?? returned) }
        /// The latency the application saw.
        public var latency: UInt64 { returned >= requested ? returned - requested : 0 }
    }

    public var format: String
    public var version: Int
    /// When it was written (ISO 8601) and by what.
    public var created: String
    public var tool: String
    public var host: Host
    public var model: Model
    public var executions: [Execution]
    /// Executions that ran while the capture was full and are not in it.
    public var executionsNotKept: Int

    public init(tool: String, host: Host, model: Model, executions: [Execution], executionsNotKept: Int = 0) {
        self.format = Self.formatName
        self.version = Self.currentVersion
        self.created = ISO8601DateFormatter().string(from: Date())
        self.tool = tool
        self.host = host
        self.model = model
        self.executions = executions
        self.executionsNotKept = executionsNotKept
    }

    /// The capture as JSON.
    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(self)
    }

    public func write(to path: String) throws {
        try encoded().write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// Parse a capture, after checking its format and version.
    public init(data: Data) throws(NeuronProfileError) {
        struct Head: Decodable { var format: String?; var version: Int? }
        guard let head = try? JSONDecoder().decode(Head.self, from: data) else {
            throw NeuronProfileError("not a neuron-profile capture: the file is not a JSON object (truncated, or another kind of file)")
        }
        guard head.format == Self.formatName, let version = head.version else {
            throw NeuronProfileError("not a neuron-profile capture: its format is \((head.format ?? "missing").debugDescription), not \"\(Self.formatName)\"")
        }
        guard (1...Self.currentVersion).contains(version) else {
            throw NeuronProfileError("capture version \(version); this neuron-profile reads versions 1 to \(Self.currentVersion). Use a neuron-profile at least as new as the runtime that wrote it.")
        }
        do {
            self = try JSONDecoder().decode(NeuronProfile.self, from: data)
        } catch {
            throw NeuronProfileError("the capture (version \(version)) does not follow its schema: \(error)")
        }
        for (index, execution) in executions.enumerated() {
            for job in execution.jobs where !model.programs.indices.contains(job.program) {
                throw NeuronProfileError("execution \(index) names program \(job.program); the model has \(model.programs.count)")
            }
        }
    }

    public init(contentsOf path: String) throws(NeuronProfileError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw NeuronProfileError("cannot read \(path): it does not exist or is not readable")
        }
        try self.init(data: data)
    }
}

/// Why a capture cannot be read or written.
public struct NeuronProfileError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Collects executions while a model runs with profiling on: the runtime
/// hands it each finished execution's job traces. Keeps the first `limit`
/// and counts the rest, so a long-running application's memory stays bounded.
public final class NeuronProfileRecorder: Sendable {
    public let limit: Int
    private let state = Locked<(kept: [NeuronProfile.Execution], notKept: Int)>(([], 0))
    private let replicas = Locked<[ObjectIdentifier: Int]>([:])

    public static let defaultLimit = 1000

    public init(limit: Int = NeuronProfileRecorder.defaultLimit) {
        self.limit = max(1, limit)
    }

    /// Record one execution's jobs (numbered in arrival order), requested
    /// at `requested` and done at `returned` (CLOCK_MONOTONIC nanoseconds).
    public func record(replica: Int, jobs: [NeuronProfile.Job], requested: UInt64, returned: UInt64) {
        state.withLock { state in
            guard state.kept.count < limit else {
                state.notKept += 1
                return
            }
            state.kept.append(NeuronProfile.Execution(index: state.kept.count, replica: replica, jobs: jobs,
                                                      requested: requested, returned: returned))
        }
    }

    /// What was recorded as a capture of `model`, run on `backend`, by `tool`.
    public func capture(tool: String, model: NEFFModel, backend: any NeuronBackend) throws(NeuronProgramError) -> NeuronProfile {
        let (kept, notKept) = executions
        let api = (try? backend.driverInfo()).map { "\($0.apiMajor).\($0.apiMinor)" } ?? "?"
        return NeuronProfile(tool: tool, host: .current(backend: backend.name, api: api),
                             model: try NeuronProfile.Model(model), executions: kept, executionsNotKept: notKept)
    }

    /// What was recorded so far, and the executions not kept.
    public var executions: (kept: [NeuronProfile.Execution], notKept: Int) { state.withLock { $0 } }

    /// A number for each loaded copy that records here, from 0 in the
    /// order they first ask.
    public func replica(of model: ObjectIdentifier) -> Int {
        replicas.withLock { known in
            if let number = known[model] { return number }
            known[model] = known.count
            return known.count - 1
        }
    }

    /// Forget what was recorded (after a warm-up, say).
    public func reset() { state.withLock { $0 = ([], 0) } }
}
