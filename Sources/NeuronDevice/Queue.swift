import CNeuronEngine
import CNeuronUAPI

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A job on a NeuronCore's queue: the core and the sequence number the
/// queue gave it (from 1, never reused).
public struct NeuronJob: Sendable, Hashable, CustomStringConvertible {
    public let core: Int
    public let sequence: UInt64

    public init(core: Int, sequence: UInt64) {
        self.core = core
        self.sequence = sequence
    }

    public var description: String { "job \(sequence) on NeuronCore \(core)" }
}

/// How a job ended.
public enum NeuronJobStatus: Sendable, Equatable, CustomStringConvertible {
    /// It ran to the end.
    case ok
    /// Instruction `instruction` could not run here (a BARRIER naming a
    /// NeuronCore that is not reserved).
    case invalid(instruction: Int)
    /// It ran past the job timeout at `instruction`; the NeuronCore was reset.
    case timedOut(instruction: Int)
    /// Its NeuronCore was released (or its device closed) first, or a job
    /// it depended on did not end `.ok`.
    case aborted
    /// A data fault while running (a GATHER index outside its table).
    case fault(NeuronProgramError)

    public var description: String {
        switch self {
        case .ok: "ok"
        case .invalid(let index): "invalid (instruction \(index) cannot run on these NeuronCores)"
        case .timedOut(let index): "timed out at instruction \(index) (job_timeout_ms); the NeuronCore was reset"
        case .aborted: "aborted (NeuronCore released, or a job it depended on failed)"
        case .fault(let error): "fault: \(error.description)"
        }
    }

    /// The driver's enum neuron_job_status for it.
    var rawStatus: UInt32 {
        switch self {
        case .ok: NEURON_JOB_OK.rawValue
        case .invalid: NEURON_JOB_INVALID.rawValue
        case .timedOut: NEURON_JOB_TIMEOUT.rawValue
        case .aborted: NEURON_JOB_ABORTED.rawValue
        case .fault: NEURON_JOB_FAULT.rawValue
        }
    }

    /// From the driver's status, error and index.
    init(status: UInt32, error: UInt32, index: UInt32) {
        switch Int(status) {
        case Int(NEURON_JOB_OK.rawValue): self = .ok
        case Int(NEURON_JOB_INVALID.rawValue): self = .invalid(instruction: Int(index))
        case Int(NEURON_JOB_TIMEOUT.rawValue): self = .timedOut(instruction: Int(index))
        case Int(NEURON_JOB_FAULT.rawValue):
            self = .fault(NeuronProgramError(kind: .init(rawValue: error) ?? .indexFault, index: Int(index)))
        default: self = .aborted
        }
    }
}

/// A finished job.
public struct NeuronJobResult: Sendable, Equatable {
    public var status: NeuronJobStatus
    /// Time it ran on the NeuronCore (waits for dependencies excluded).
    public var duration: Duration

    public init(status: NeuronJobStatus, duration: Duration) {
        self.status = status
        self.duration = duration
    }
}

/// What to run: a program, the buffers bound to its slots, the job it
/// must wait for (on any NeuronCore this device object reserved), and
/// where to write a trace of its run, if anywhere.
public struct NeuronJobRequest: Sendable {
    public var core: Int
    public var image: [UInt64]
    public var buffers: [NeuronBuffer?]
    public var after: NeuronJob?
    /// A buffer of this device object that receives the job's trace (API
    /// 1.8, `NeuronJobTrace`): at least `NeuronJobTrace.headerSize`
    /// bytes, `NeuronJobTrace.bufferSize(records:)` for a given number of
    /// records. Nil: the job is not traced, at no cost.
    public var trace: NeuronBuffer?
    /// The submitter waits for this job at once (`wait` or `result(of:)`
    /// next): the simulator then runs a small program of an idle
    /// NeuronCore on the waiting thread, without handing it to the core's
    /// thread and back (a few microseconds a request). Its results,
    /// statuses and order are the same; the driver ignores it.
    public var awaited: Bool

    public init(core: Int, image: [UInt64], buffers: [NeuronBuffer?], after: NeuronJob? = nil,
                trace: NeuronBuffer? = nil, awaited: Bool = false) {
        self.core = core
        self.image = image
        self.buffers = buffers
        self.after = after
        self.trace = trace
        self.awaited = awaited
    }
}

/// A NeuronCore's queue as the driver reports it.
public struct NeuronQueueInfo: Sendable, Equatable {
    public var submitted: UInt64
    public var completed: UInt64
    public var queued: Int
    /// The process holding the core, or nil when it is free.
    public var ownerPID: Int32?
}

/// Limits every backend applies.
public enum NeuronQueueLimits {
    /// Jobs a NeuronCore queues, the running one included.
    public static let depth = Int(NEURON_QUEUE_DEPTH)
    /// Finished jobs whose status a NeuronCore keeps.
    public static let history = Int(NEURON_JOB_HISTORY)
    /// Buffers a job binds.
    public static let slots = NeuronProgram.maxSlots
}

/// One reserved NeuronCore and its queue. The core is reserved for this
/// object's device file until `close()` or until the last reference goes
/// away, exactly once; jobs still queued then end `.aborted`.
public final class NeuronQueue: Sendable {
    public let device: any NeuronDeviceHandle
    public let core: Int
    private let open = Locked(true)

    init(device: any NeuronDeviceHandle, core: Int) throws(NeuronError) {
        try device.reserveCores([core])
        self.device = device
        self.core = core
    }

    deinit { close() }

    /// Release the NeuronCore; queued jobs end `.aborted`. Idempotent.
    public func close() {
        let wasOpen = open.withLock { open in
            defer { open = false }
            return open
        }
        if wasOpen { try? device.releaseCores([core]) }
    }

    /// Queue `program` with `buffers` bound to its slots, after `after`
    /// (a job of any NeuronCore this device reserved). Validation happens
    /// here: a refused program throws `.invalidProgram` with the index.
    public func submit(_ program: NeuronProgram, buffers: [NeuronBuffer?],
                       after: NeuronJob? = nil) throws(NeuronError) -> NeuronJob {
        try submit(image: program.image(), buffers: buffers, after: after)
    }

    /// Queue a program image; with `trace`, the job writes a trace of its
    /// run there (read it with `NeuronJobTrace(buffer:)` once it ended).
    /// `awaited`: the caller waits for the job next (`NeuronJobRequest.awaited`).
    public func submit(image: [UInt64], buffers: [NeuronBuffer?],
                       after: NeuronJob? = nil, trace: NeuronBuffer? = nil,
                       awaited: Bool = false) throws(NeuronError) -> NeuronJob {
        try device.submit(NeuronJobRequest(core: core, image: image, buffers: buffers, after: after,
                                           trace: trace, awaited: awaited))
    }

    /// Block until `job` ends, up to `timeout`; nil when it has not.
    public func wait(_ job: NeuronJob, timeout: Duration) throws(NeuronError) -> NeuronJobResult? {
        try device.wait(for: job, timeout: timeout)
    }

    /// How `job` ended, delivered without spinning.
    public func result(of job: NeuronJob) async throws(NeuronError) -> NeuronJobResult {
        try await device.result(of: job)
    }

    /// Submit and await the result; a full queue is waited out.
    public func run(_ program: NeuronProgram, buffers: [NeuronBuffer?],
                    after: NeuronJob? = nil) async throws(NeuronError) -> NeuronJobResult {
        let image = program.image()
        while true {
            do {
                let job = try submit(image: image, buffers: buffers, after: after, awaited: true)
                return try await result(of: job)
            } catch .queueFull {
                // Wait for the oldest job still queued, then try again.
                let info = try device.queueInfo(core: core)
                guard info.completed < info.submitted else { continue }
                do {
                    _ = try await result(of: NeuronJob(core: core, sequence: info.completed + 1))
                } catch .unknownJob {
                    continue    // it ended, and was collected, meanwhile
                }
            }
        }
    }

    /// After `.queueFull`: block until the oldest queued job has ended
    /// (or `timeout` passes), so that a submission fits again.
    public func waitForRoom(timeout: Duration) throws(NeuronError) {
        let info = try device.queueInfo(core: core)
        guard info.completed < info.submitted else { return }
        do {
            _ = try wait(NeuronJob(core: core, sequence: info.completed + 1), timeout: timeout)
        } catch .unknownJob {
            return    // it ended, and was collected, meanwhile
        }
    }

    public func info() throws(NeuronError) -> NeuronQueueInfo {
        try device.queueInfo(core: core)
    }
}

extension NeuronDeviceHandle {
    /// Reserve NeuronCore `core` of this device and return its queue.
    /// Throws `.coresBusy` naming the holder when another file holds it.
    public func queue(core: Int) throws(NeuronError) -> NeuronQueue {
        try NeuronQueue(device: self, core: core)
    }
}

/// A continuation awaiting a job's result.
typealias JobContinuation = CheckedContinuation<Result<NeuronJobResult, NeuronError>, Never>

/// The mask of `cores`, checked against `count`.
func coreMask(_ cores: [Int], count: Int, device: Int) throws(NeuronError) -> UInt32 {
    var mask: UInt32 = 0
    for core in cores {
        guard (0..<count).contains(core) else {
            throw .invalidArgument("NeuronCore \(core) does not exist on device \(device) (it has \(count)).")
        }
        mask |= 1 << UInt32(core)
    }
    guard mask != 0 else { throw .invalidArgument("No NeuronCore was named.") }
    return mask
}

func coreList(ofMask mask: UInt32) -> [Int] {
    (0..<32).filter { mask & (1 << UInt32($0)) != 0 }
}

/// Start a detached thread running `body`; the errno when it cannot.
func startDetachedThread(_ body: @escaping @Sendable () -> Void) -> Int32 {
    final class Box {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    let box = Unmanaged.passRetained(Box(body))
    var thread = pthread_t()
    let created = pthread_create(&thread, nil, { raw in
        guard let raw else { return nil }
        Unmanaged<Box>.fromOpaque(raw).takeRetainedValue().body()
        return nil
    }, box.toOpaque())
    if created == 0 {
        pthread_detach(thread)
    } else {
        box.release()
    }
    return created
}
