import CNeuronUAPI
import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// NeuronCores and job queues of a /dev/neuronN file.
extension KernelDevice {
    public func reserveCores(_ cores: [Int]) throws(NeuronError) {
        let count = try info().coreCount
        var request = neuron_core_reserve()
        request.core_mask = try coreMask(cores, count: count, device: index)
        do {
            try ioctl(NeuronRequests.coreReserve, &request)
        } catch {
            guard case .system(_, .resourceBusy) = error else { throw error }
            let command = (try? processes())?.first { $0.pid == request.busy_pid }?.command ?? ""
            throw .coresBusy(device: index, cores: coreList(ofMask: request.busy_mask),
                             pid: request.busy_pid, command: command)
        }
    }

    public func releaseCores(_ cores: [Int]) throws(NeuronError) {
        let count = try info().coreCount
        var request = neuron_core_reserve()
        request.core_mask = try coreMask(cores, count: count, device: index)
        do {
            try ioctl(NeuronRequests.coreRelease, &request)
        } catch {
            guard case .system(_, .invalidArgument) = error else { throw error }
            throw .coreNotReserved(device: index, core: cores.first ?? 0)
        }
        for core in cores { completions.released(core: core) }
    }

    public func submit(_ request: NeuronJobRequest) throws(NeuronError) -> NeuronJob {
        guard request.buffers.count <= NeuronQueueLimits.slots else {
            throw .invalidArgument("A job binds at most \(NeuronQueueLimits.slots) buffers; \(request.buffers.count) were given.")
        }
        var raw = neuron_job_submit()
        raw.core = UInt32(clamping: request.core)
        raw.slot_count = UInt32(request.buffers.count)
        raw.dep_core = request.after.map { UInt32(clamping: $0.core) } ?? NEURON_NO_DEP
        raw.dep_seq = request.after?.sequence ?? 0
        if let trace = request.trace {
            guard let storage = trace.storage as? KernelBufferStorage, storage.device === self else {
                throw .invalidArgument("The trace buffer belongs to another device or file; allocate it through this device object.")
            }
            guard !trace.isFreed else { throw .bufferFreed }
            guard trace.allocatedSize >= NeuronJobTrace.headerSize else {
                throw .invalidArgument("A trace buffer holds at least a header of \(NeuronJobTrace.headerSize) bytes; this one has \(trace.allocatedSize).")
            }
            raw.flags = NEURON_JOB_TRACE
            raw.trace = storage.handle
        }
        try withUnsafeMutableBytes(of: &raw.slots) { slots throws(NeuronError) in
            for (slot, buffer) in request.buffers.enumerated() {
                guard let buffer else { continue }
                guard let storage = buffer.storage as? KernelBufferStorage, storage.device === self else {
                    throw .invalidArgument("The buffer bound to slot \(slot) belongs to another device or file; bind buffers allocated through this device object.")
                }
                guard !buffer.isFreed else { throw .bufferFreed }
                slots.storeBytes(of: storage.handle, toByteOffset: slot * 4, as: UInt32.self)
            }
        }
        let outcome: Result<Void, NeuronError> = request.image.withUnsafeBytes { image in
            raw.program = UInt64(UInt(bitPattern: image.baseAddress))
            raw.program_size = UInt32(clamping: image.count)
            do throws(NeuronError) {
                try ioctl(NeuronRequests.jobSubmit, &raw)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        if case .failure(let error) = outcome {
            guard case .system(_, let errno) = error else { throw error }
            switch errno {
            case .resourceTemporarilyUnavailable:
                throw .queueFull(device: index, core: request.core, depth: NeuronQueueLimits.depth)
            case .notPermitted:
                throw .coreNotReserved(device: index, core: request.core)
            case .noSuchFileOrDirectory:
                throw .bufferFreed
            case .invalidArgument where raw.error != 0:
                throw .invalidProgram(NeuronProgramError(kind: .init(rawValue: raw.error) ?? .header,
                                                         index: Int(raw.error_index)))
            case .invalidArgument:
                if request.trace != nil, let info = try? driverInfo(), info.apiMinor < 8 {
                    throw .invalidArgument("The driver speaks API \(info.apiMajor).\(info.apiMinor); traced jobs need API 1.8. Install this tree's driver (scripts/install-driver), or trace on the simulator (NEURON_BACKEND=sim).")
                }
                if request.image.count * 8 > Int(neuron_max_program_size) {
                    throw .invalidArgument("The program is \(request.image.count * 8) bytes; a job carries at most \(neuron_max_program_size).")
                }
                throw .invalidArgument("The driver refused the job on NeuronCore \(request.core)\(request.after.map { " after \($0)" } ?? ""): no such core, or a dependency on a job not submitted through this device object.")
            default:
                throw error
            }
        }
        let job = NeuronJob(core: request.core, sequence: raw.seq)
        completions.submitted(job)
        return job
    }

    /// JOB_WAIT; nil on ETIMEDOUT.
    func waitIoctl(_ job: NeuronJob, milliseconds: UInt32) throws(NeuronError) -> NeuronJobResult? {
        var raw = neuron_job_wait()
        raw.core = UInt32(clamping: job.core)
        raw.seq = job.sequence
        raw.timeout_ms = milliseconds
        do {
            try ioctl(NeuronRequests.jobWait, &raw)
        } catch {
            guard case .system(_, let errno) = error else { throw error }
            switch errno {
            case .timedOut: return nil
            case .notPermitted: throw .coreNotReserved(device: index, core: job.core)
            case .invalidArgument, .noData: throw .unknownJob(core: job.core, sequence: job.sequence)
            default: throw error
            }
        }
        return NeuronJobResult(status: NeuronJobStatus(status: raw.status, error: raw.error, index: raw.error_index),
                               duration: .nanoseconds(Int64(clamping: raw.duration_ns)))
    }

    public func wait(for job: NeuronJob, timeout: Duration) throws(NeuronError) -> NeuronJobResult? {
        if let kept = completions.kept(job) { return kept }
        let (seconds, attoseconds) = timeout.components
        let milliseconds = max(0, seconds) * 1000 + max(0, attoseconds) / 1_000_000_000_000_000
        do {
            return try waitIoctl(job, milliseconds: UInt32(clamping: milliseconds))
        } catch .unknownJob(let core, let sequence) {
            if let kept = completions.kept(job) { return kept }
            throw .unknownJob(core: core, sequence: sequence)
        }
    }

    public func result(of job: NeuronJob) async throws(NeuronError) -> NeuronJobResult {
        let outcome = await withCheckedContinuation { (continuation: JobContinuation) in
            completions.await(job, continuation, device: self)
        }
        return try outcome.get()
    }

    public func queueInfo(core: Int) throws(NeuronError) -> NeuronQueueInfo {
        var raw = neuron_queue_info()
        raw.core = UInt32(clamping: core)
        try ioctl(NeuronRequests.queueInfo, &raw)
        return NeuronQueueInfo(submitted: raw.submitted, completed: raw.completed, queued: Int(raw.queued),
                               ownerPID: raw.owner_pid > 0 ? raw.owner_pid : nil)
    }
}

/// Completion delivery for one kernel device file: a thread, running
/// only while someone awaits a job, sleeps in poll(2) on the file and an
/// eventfd, collects every job that ended (in order, per NeuronCore) and
/// resumes whoever awaits it. Results nobody awaited yet are kept (the
/// most recent `keep` per core) for a later `result(of:)`.
final class KernelCompletions: Sendable {
    private struct Core {
        var next: UInt64 = 0          // next job to collect; 0: none submitted
        var last: UInt64 = 0          // last job submitted
        var kept: [UInt64: NeuronJobResult] = [:]
        var waiters: [UInt64: [JobContinuation]] = [:]
    }
    private struct State {
        var cores: [Int: Core] = [:]
        var running = false
        var stopped = false
    }
    private let state = Locked(State())
    private let wakeFD: Int32
    private static let keep = 1024

    init() {
        wakeFD = neuron_wake_fd()
    }

    deinit {
        if wakeFD >= 0 { Glibc.close(wakeFD) }
    }

    func submitted(_ job: NeuronJob) {
        state.withLock { state in
            var core = state.cores[job.core] ?? Core()
            if core.next == 0 { core.next = job.sequence }
            core.last = max(core.last, job.sequence)
            state.cores[job.core] = core
        }
    }

    /// A result collected and not yet handed out.
    func kept(_ job: NeuronJob) -> NeuronJobResult? {
        state.withLock { $0.cores[job.core]?.kept[job.sequence] }
    }

    /// The core was released: what was awaited there ends aborted.
    func released(core: Int) {
        let waiters = state.withLock { state in
            state.cores.removeValue(forKey: core)?.waiters.values.flatMap { $0 } ?? []
        }
        for waiter in waiters {
            waiter.resume(returning: .success(NeuronJobResult(status: .aborted, duration: .zero)))
        }
    }

    /// The device closes: everyone awaiting learns the jobs were aborted.
    func stop() {
        let waiters = state.withLock { state in
            state.stopped = true
            defer { state.cores.removeAll() }
            return state.cores.values.flatMap { $0.waiters.values.flatMap { $0 } }
        }
        if wakeFD >= 0 { neuron_wake(wakeFD) }
        for waiter in waiters {
            waiter.resume(returning: .success(NeuronJobResult(status: .aborted, duration: .zero)))
        }
    }

    func await(_ job: NeuronJob, _ continuation: JobContinuation, device: KernelDevice) {
        enum Action { case resume(Result<NeuronJobResult, NeuronError>), start, wake }
        let action: Action = state.withLock { state in
            if state.stopped { return .resume(.failure(.bufferFreed)) }
            guard var core = state.cores[job.core], core.next != 0, job.sequence <= core.last else {
                return .resume(.failure(.unknownJob(core: job.core, sequence: job.sequence)))
            }
            if let result = core.kept.removeValue(forKey: job.sequence) {
                state.cores[job.core] = core
                return .resume(.success(result))
            }
            if job.sequence < core.next {
                return .resume(.failure(.unknownJob(core: job.core, sequence: job.sequence)))
            }
            core.waiters[job.sequence, default: []].append(continuation)
            state.cores[job.core] = core
            if state.running { return .wake }
            state.running = true
            return .start
        }
        switch action {
        case .resume(let result):
            continuation.resume(returning: result)
        case .wake:
            neuron_wake(wakeFD)
        case .start:
            startThread(device: device)
        }
    }

    private func startThread(device: KernelDevice) {
        let created = startDetachedThread { self.collectLoop(device: device) }
        if created != 0 {
            fail(with: .system(operation: "pthread_create", errno: Errno(rawValue: created)))
        }
    }

    private func fail(with error: NeuronError) {
        let waiters = state.withLock { state in
            state.running = false
            var all: [JobContinuation] = []
            for key in state.cores.keys {
                all += state.cores[key]?.waiters.values.flatMap { $0 } ?? []
                state.cores[key]?.waiters.removeAll()
            }
            return all
        }
        for waiter in waiters { waiter.resume(returning: .failure(error)) }
    }

    /// The thread: collect, deliver, sleep in poll(2); exit when nobody waits.
    private func collectLoop(device: KernelDevice) {
        while true {
            let pending: [(core: Int, from: UInt64, to: UInt64)]? = state.withLock { state in
                let waiting = state.cores.values.contains { !$0.waiters.isEmpty }
                guard waiting, !state.stopped else {
                    state.running = false
                    return nil
                }
                return state.cores.compactMap { key, core in
                    core.next != 0 && core.next <= core.last ? (key, core.next, core.last) : nil
                }
            }
            guard let pending else { return }
            for (core, from, to) in pending {
                var sequence = from
                while sequence <= to {
                    let job = NeuronJob(core: core, sequence: sequence)
                    let result: Result<NeuronJobResult, NeuronError>
                    do {
                        guard let ended = try device.waitIoctl(job, milliseconds: 0) else { break }
                        result = .success(ended)
                    } catch .unknownJob {
                        // Ended too long ago to be kept: no status to give.
                        result = .failure(.unknownJob(core: core, sequence: sequence))
                    } catch {
                        result = .success(NeuronJobResult(status: .aborted, duration: .zero))
                    }
                    deliver(job, result)
                    sequence += 1
                }
            }
            let ready = device.withDescriptor { fd in
                neuron_poll_jobs(fd.rawValue, wakeFD, 1000)
            }
            if ready == nil || ready == -1 {
                fail(with: .bufferFreed)
                return
            }
        }
    }

    private func deliver(_ job: NeuronJob, _ result: Result<NeuronJobResult, NeuronError>) {
        let waiters: [JobContinuation] = state.withLock { state in
            guard var core = state.cores[job.core] else { return [] }
            core.next = max(core.next, job.sequence + 1)
            let waiters = core.waiters.removeValue(forKey: job.sequence) ?? []
            if waiters.isEmpty, case .success(let ended) = result {
                core.kept[job.sequence] = ended
                if core.kept.count > Self.keep, let oldest = core.kept.keys.min() {
                    core.kept.removeValue(forKey: oldest)
                }
            }
            state.cores[job.core] = core
            return waiters
        }
        for waiter in waiters { waiter.resume(returning: result) }
    }
}
