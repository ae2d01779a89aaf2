import CNeuronEngine
import CNeuronUAPI
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A mutex with condition variables (monotonic clock) for the simulator's
/// queues, where threads sleep until a job, a completion or a signal
/// comes: two per NeuronCore (a job to run, a job ended) and one for
/// semaphores and barriers, so that an event wakes only the threads it
/// concerns. Each condition also counts
/// its broadcasts, so that a thread can poll for the next one without the
/// mutex (`poll`).
final class SimCondition: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let conds: UnsafeMutablePointer<pthread_cond_t>
    private let count: Int
    /// Broadcasts of each condition so far, read without the mutex.
    private final class Events: Sendable {
        let value = Atomic<UInt64>(0)
    }
    private let events: [Events]

    init(conditions: Int) {
        count = max(1, conditions)
        events = (0..<count).map { _ in Events() }
        conds = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: count)
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        for i in 0..<count { pthread_cond_init(conds + i, &attributes) }
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        for i in 0..<count { pthread_cond_destroy(conds + i) }
        pthread_mutex_destroy(mutex)
        conds.deallocate()
        mutex.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }

    func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// With the lock held: sleep until condition `index` is signalled or
    /// `nanoseconds` pass.
    func wait(on index: Int, nanoseconds: Int64) {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let total = Int64(now.tv_nsec) + max(0, min(nanoseconds, 3_600_000_000_000))
        var until = timespec(tv_sec: now.tv_sec + Int(total / 1_000_000_000), tv_nsec: Int(total % 1_000_000_000))
        pthread_cond_timedwait(conds + min(max(index, 0), count - 1), mutex, &until)
    }

    /// With the lock held: let it go and poll, yielding the CPU between
    /// looks, until condition `index` is broadcast or `deadline` (monotonic
    /// nanoseconds) passes; then take it again. Neither side of a hand-off
    /// then sleeps on the mutex: a thread woken from sleep starts tens of
    /// microseconds later on a small VM.
    func poll(_ index: Int, until deadline: Int64) {
        let counter = events[min(max(index, 0), count - 1)]
        let seen = counter.value.load(ordering: .acquiring)
        pthread_mutex_unlock(mutex)
        while counter.value.load(ordering: .acquiring) == seen && monotonicNanoseconds() < deadline {
            sched_yield()
        }
        pthread_mutex_lock(mutex)
    }

    /// Wake whoever sleeps on or polls condition `index`.
    func broadcast(_ index: Int) {
        let index = min(max(index, 0), count - 1)
        events[index].value.wrappingAdd(1, ordering: .releasing)
        pthread_cond_broadcast(conds + index)
    }

    func broadcastAll() {
        for i in 0..<count { broadcast(i) }
    }
}

func monotonicNanoseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}

/// A program image validated against the sizes and alignments of the
/// buffers bound to it: the simulator's own copy, which jobs share. The
/// driver copies and validates every submission; the simulator does so
/// for the first submission of an image and reuses the result while the
/// same image (the caller's array, by identity: this entry holds its
/// storage, so an equal address is the same unchanged array) comes with
/// buffers of the same sizes, as a loaded model's requests do. Validation
/// is a function of the image's bytes and those sizes alone.
final class SimProgramImage: @unchecked Sendable {
    /// The array it was copied from, held so that its storage stays.
    let source: [UInt64]
    let file: Int
    /// Per slot: its size and its base address's misalignment (mod 8).
    let slotKey: [UInt64]
    let bytes: UnsafeMutableRawBufferPointer
    /// Points into `bytes`; immutable once made.
    let program: neuron_engine_program
    /// Small enough, and without semaphores or barriers, to run on the
    /// thread that waits for it (`NeuronJobRequest.awaited`).
    let runsInCaller: Bool

    /// The work (the engine's estimate, as NEURON_SECTION_WORK counts it)
    /// of the largest program a waiting thread runs itself: a few tens of
    /// microseconds, where handing a job to the core's thread and back is
    /// a large share of the request.
    static let callerWork: UInt64 = 1 << 21

    private init(source: [UInt64], file: Int, slotKey: [UInt64], bytes: UnsafeMutableRawBufferPointer,
                 program: neuron_engine_program) {
        self.source = source
        self.file = file
        self.slotKey = slotKey
        self.bytes = bytes
        self.program = program
        var work: UInt64 = 0
        var sync = false
        withUnsafePointer(to: program) { prog in
            for index in 0..<program.insn_count {
                if neuron_engine_insn_is_sync(prog.pointee.insns + Int(index)) != 0 { sync = true }
                work &+= min(neuron_engine_insn_cost(prog, index), Self.callerWork)
            }
        }
        runsInCaller = !sync && work <= Self.callerWork
    }

    deinit { bytes.deallocate() }

    static func key(_ slots: [neuron_engine_slot]) -> [UInt64] {
        var key: [UInt64] = []
        key.reserveCapacity(slots.count * 2)
        for slot in slots {
            key.append(slot.size)
            key.append(UInt64(UInt(bitPattern: slot.base)) & 7)
        }
        return key
    }

    /// Whether `image` is this entry's array and `slotKey` its slots'.
    func matches(_ image: [UInt64], file: Int, slotKey: [UInt64]) -> Bool {
        guard self.file == file, image.count == source.count else { return false }
        let same = image.withUnsafeBufferPointer { given in
            source.withUnsafeBufferPointer { held in given.baseAddress == held.baseAddress }
        }
        return same && self.slotKey == slotKey
    }

    /// Copy and validate `source` against `slots`.
    static func validate(_ source: [UInt64], file: Int, slots: [neuron_engine_slot])
        throws(NeuronError) -> SimProgramImage {
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: max(8, source.count * 8), alignment: 64)
        source.withUnsafeBytes { bytes.copyMemory(from: $0) }
        var program = neuron_engine_program()
        var status = neuron_engine_status()
        let valid = slots.withUnsafeBufferPointer { slotPointer in
            neuron_engine_validate(bytes.baseAddress, UInt64(source.count * 8), slotPointer.baseAddress,
                                   UInt32(slotPointer.count), &program, &status) == 0
        }
        guard valid else {
            bytes.deallocate()
            throw .invalidProgram(NeuronProgramError(kind: .init(rawValue: status.error) ?? .header,
                                                     index: Int(status.index)))
        }
        return SimProgramImage(source: source, file: file, slotKey: key(slots), bytes: bytes, program: program)
    }
}

/// A job on a simulated queue: a validated program image (shared with the
/// jobs that submit the same one), and the buffers it holds in use until
/// it ends.
final class SimJob: @unchecked Sendable {
    let file: Int
    var sequence: UInt64 = 0
    let dependency: NeuronJob?
    let image: SimProgramImage
    var program: neuron_engine_program
    var slots: [neuron_engine_slot]
    let buffers: [NeuronBuffer]
    /// The trace the engine's runner writes (its buffer is among `buffers`), or nil.
    let trace: UnsafeMutablePointer<neuron_engine_trace>?
    /// Left for the thread that waits for it (the core's thread was not
    /// woken; it takes the job only if another comes after it, or when
    /// nobody came for it within its idle wait).
    var deferred = false

    init(file: Int, image: SimProgramImage, slots: [neuron_engine_slot], buffers: [NeuronBuffer],
         dependency: NeuronJob?, trace: neuron_engine_slot?) {
        self.file = file
        self.dependency = dependency
        self.slots = slots
        self.buffers = buffers
        self.image = image
        self.program = image.program
        if let trace {
            let state = UnsafeMutablePointer<neuron_engine_trace>.allocate(capacity: 1)
            state.initialize(to: neuron_engine_trace())
            state.pointee.buf = trace
            self.trace = state
        } else {
            self.trace = nil
        }
    }

    deinit {
        trace?.deallocate()
        for buffer in buffers { buffer.endUse() }
    }
}

/// The queues of one simulated device, with the driver's semantics and
/// limits: exclusive reservation per open file, in-order queues of
/// NEURON_QUEUE_DEPTH, a thread per reserved NeuronCore running the
/// engine in bounded slices, dependencies, semaphores and barriers per
/// file, a job timeout that resets the core.
final class SimDeviceQueues: @unchecked Sendable {
    struct Core {
        var owner: Int?
        var queue: [SimJob] = []
        var running = false
        var queued = 0
        var submitted: UInt64 = 0
        var completed: UInt64 = 0
        var firstSequence: UInt64 = 1
        var abort = false
        var history = [(sequence: UInt64, result: NeuronJobResult)?](repeating: nil, count: NeuronQueueLimits.history)
        var waiters: [UInt64: [JobContinuation]] = [:]
        var thread = false
    }
    /// A file's semaphores and barriers, as the engine's job runner keeps
    /// them (under `lock`); freed once the file holds no NeuronCore, when
    /// no job of it can run.
    final class Sync: @unchecked Sendable {
        let state = UnsafeMutablePointer<neuron_sync_state>.allocate(capacity: 1)
        init() { state.initialize(to: neuron_sync_state()) }
        deinit { state.deallocate() }
    }

    let device: Int
    let timeoutMilliseconds: Int
    /// Fixed at creation, so read without the lock (`cores` is not).
    let coreCount: Int
    private let lock: SimCondition
    /// The condition a core's thread sleeps on for a job to run.
    private func work(_ core: Int) -> Int { core }
    /// The condition of a core's jobs ending, which waiters sleep on.
    private func done(_ core: Int) -> Int { coreCount + core }
    /// The condition of semaphores and barriers (after the cores').
    private var syncCondition: Int { 2 * coreCount }
    // Under `lock`:
    private var cores: [Core]
    private var sync: [Int: Sync] = [:]
    /// Jobs run on the thread that waited for them (`runDeferred`).
    private var callerRunCount = 0
    /// Each core's scratch memory, made when it first runs a job.
    private var scratchMemory: [Int: UnsafeMutableRawBufferPointer] = [:]
    /// Program images validated lately, most recent first (`SimProgramImage`).
    private let images = Locked<[SimProgramImage]>([])
    private static let imageCacheEntries = 16

    /// How long a NeuronCore's thread, having run a job, and a caller
    /// waiting for one keep polling (yielding the CPU between looks) before
    /// they sleep: a thread woken from sleep starts tens of microseconds
    /// later (measured 40-50 µs on the 2-CPU VMs), which a request of a
    /// small model pays twice; back-to-back requests then pay neither. They
    /// poll without the mutex (`SimCondition.poll`): polling with it taken
    /// between looks put the other side to sleep on the mutex instead.
    static let spinNanoseconds: Int64 = 250_000

    /// The section budget of a preemptible thread (neuron_engine.h says
    /// why it differs from the driver's).
    private static let sectionWork: UInt64 = NEURON_SECTION_WORK_THREAD

    deinit {
        for memory in scratchMemory.values { memory.deallocate() }
    }

    init(device: Int, coreCount: Int, timeoutMilliseconds: Int) {
        self.device = device
        self.timeoutMilliseconds = timeoutMilliseconds
        self.coreCount = coreCount
        self.cores = [Core](repeating: Core(), count: coreCount)
        self.lock = SimCondition(conditions: 2 * coreCount + 1)
    }

    /// The NeuronCores any file holds.
    func heldCores() -> [Int] {
        lock.withLock { cores.indices.filter { cores[$0].owner != nil } }
    }

    func ownerMask(file: Int) -> [Int] {
        lock.withLock { cores.indices.filter { cores[$0].owner == file } }
    }

    func reserve(file: Int, cores wanted: [Int]) throws(NeuronError) {
        let mask = try coreMask(wanted, count: coreCount, device: device)
        let busy: [Int] = lock.withLock {
            let busy = coreList(ofMask: mask).filter { cores[$0].owner != nil && cores[$0].owner != file }
            guard busy.isEmpty else { return busy }
            for core in coreList(ofMask: mask) where cores[core].owner != file {
                cores[core].owner = file
                cores[core].firstSequence = cores[core].submitted + 1
                if !cores[core].thread {
                    cores[core].thread = true
                    startThread(core: core)
                }
            }
            return []
        }
        guard busy.isEmpty else {
            throw .coresBusy(device: device, cores: busy, pid: getpid(), command: SimulatorWorld.command)
        }
    }

    /// Abort the jobs of `wanted` (held by `file`), wait, release them.
    func release(file: Int, cores wanted: [Int]) throws(NeuronError) {
        let mask = try coreMask(wanted, count: coreCount, device: device)
        let list = coreList(ofMask: mask)
        let held = lock.withLock { list.allSatisfy { cores[$0].owner == file } }
        guard held else { throw .coreNotReserved(device: device, core: list.first ?? 0) }
        lock.withLock {
            for core in list { cores[core].abort = true }
            lock.broadcastAll()
            while let busy = list.first(where: { cores[$0].queued > 0 || cores[$0].running }) {
                lock.wait(on: done(busy), nanoseconds: 100_000_000)
            }
            for core in list {
                cores[core].owner = nil
                cores[core].abort = false
                // Idle now (no job queued or running): the next holder starts afresh.
                scratchMemory.removeValue(forKey: core)?.deallocate()
            }
            if !cores.contains(where: { $0.owner == file }) {
                sync[file] = nil
                images.withLock { $0.removeAll { $0.file == file } }
            }
            lock.broadcastAll()
        }
    }

    func releaseAll(file: Int) {
        let held = ownerMask(file: file)
        if !held.isEmpty { try? release(file: file, cores: held) }
    }

    func submit(file: Int, world: SimulatorWorld, request: NeuronJobRequest) throws(NeuronError) -> NeuronJob {
        guard (0..<coreCount).contains(request.core) else {
            throw .invalidArgument("NeuronCore \(request.core) does not exist on device \(device) (it has \(coreCount)).")
        }
        guard request.buffers.count <= NeuronQueueLimits.slots else {
            throw .invalidArgument("A job binds at most \(NeuronQueueLimits.slots) buffers; \(request.buffers.count) were given.")
        }
        guard request.image.count * 8 <= Int(neuron_max_program_size), request.image.count >= 4 else {
            throw .invalidArgument("The program is \(request.image.count * 8) bytes; a job carries 32 to \(neuron_max_program_size).")
        }
        try lock.withLock { () throws(NeuronError) in
            guard cores[request.core].owner == file, !cores[request.core].abort else {
                throw .coreNotReserved(device: device, core: request.core)
            }
        }
        // Hold the buffers in use from here until the job ends.
        var slots: [neuron_engine_slot] = []
        var held: [NeuronBuffer] = []
        var failure: NeuronError?
        for (slot, buffer) in request.buffers.enumerated() {
            guard let buffer else {
                slots.append(neuron_engine_slot(base: nil, size: 0))
                continue
            }
            guard let storage = buffer.storage as? SimulatedBufferStorage, storage.world === world,
                  storage.file == file else {
                failure = .invalidArgument("The buffer bound to slot \(slot) belongs to another device or file; bind buffers allocated through this device object.")
                break
            }
            do { try buffer.beginUse() } catch { failure = error; break }
            held.append(buffer)
            slots.append(neuron_engine_slot(base: storage.base, size: storage.allocatedSize))
        }
        var traceSlot: neuron_engine_slot?
        if failure == nil, let trace = request.trace {
            if let storage = trace.storage as? SimulatedBufferStorage, storage.world === world, storage.file == file {
                if storage.allocatedSize < NeuronJobTrace.headerSize {
                    failure = .invalidArgument("A trace buffer holds at least a header of \(NeuronJobTrace.headerSize) bytes; this one has \(storage.allocatedSize).")
                } else {
                    do {
                        try trace.beginUse()
                        held.append(trace)
                        traceSlot = neuron_engine_slot(base: storage.base, size: storage.allocatedSize)
                    } catch { failure = error }
                }
            } else {
                failure = .invalidArgument("The trace buffer belongs to another device or file; allocate it through this device object.")
            }
        }
        if let failure {
            for buffer in held { buffer.endUse() }
            throw failure
        }
        let image: SimProgramImage
        do {
            image = try validated(request.image, file: file, slots: slots)
        } catch {
            for buffer in held { buffer.endUse() }
            throw error
        }
        let job = SimJob(file: file, image: image, slots: slots, buffers: held, dependency: request.after,
                         trace: traceSlot)
        // As the driver: the runner gets only what the program can fill.
        if let trace = job.trace {
            trace.pointee.buf.size = min(trace.pointee.buf.size, neuron_engine_trace_extent(&job.program))
        }
        return try lock.withLock { () throws(NeuronError) -> NeuronJob in
            guard cores[request.core].owner == file, !cores[request.core].abort else {
                throw .coreNotReserved(device: device, core: request.core)
            }
            if let dep = request.after {
                guard (0..<coreCount).contains(dep.core), cores[dep.core].owner == file,
                      dep.sequence >= cores[dep.core].firstSequence, dep.sequence <= cores[dep.core].submitted else {
                    throw .invalidArgument("The job cannot depend on \(dep): it was not submitted through this device object.")
                }
                // A job left for its waiter that another job now waits on
                // goes to its core's thread: its submitter may wait only
                // for the dependent job.
                if let first = cores[dep.core].queue.first, first.deferred, first.sequence <= dep.sequence {
                    first.deferred = false
                    lock.broadcast(work(dep.core))
                }
            }
            guard cores[request.core].queued < NeuronQueueLimits.depth else {
                throw .queueFull(device: device, core: request.core, depth: NeuronQueueLimits.depth)
            }
            cores[request.core].submitted += 1
            job.sequence = cores[request.core].submitted
            job.trace?.pointee.submitted_ns = UInt64(monotonicNanoseconds())
            job.deferred = request.awaited && image.runsInCaller && request.after == nil && job.trace == nil &&
                cores[request.core].queue.isEmpty && !cores[request.core].running
            cores[request.core].queued += 1
            cores[request.core].queue.append(job)
            if !job.deferred { lock.broadcast(work(request.core)) }
            return NeuronJob(core: request.core, sequence: job.sequence)
        }
    }

    /// `image` validated against `slots`: a cached copy when this file
    /// submitted the same array with buffers of the same sizes before.
    private func validated(_ image: [UInt64], file: Int, slots: [neuron_engine_slot])
        throws(NeuronError) -> SimProgramImage {
        let key = SimProgramImage.key(slots)
        let cached: SimProgramImage? = images.withLock { list in
            guard let at = list.firstIndex(where: { $0.matches(image, file: file, slotKey: key) }) else { return nil }
            let entry = list[at]
            if at != 0 {
                list.remove(at: at)
                list.insert(entry, at: 0)
            }
            return entry
        }
        if let cached { return cached }
        let fresh = try SimProgramImage.validate(image, file: file, slots: slots)
        images.withLock { list in
            list.insert(fresh, at: 0)
            if list.count > Self.imageCacheEntries { list.removeLast() }
        }
        return fresh
    }

    /// With the lock held: the job's result if it ended, or why it cannot be known.
    private func lookup(file: Int, _ job: NeuronJob) throws(NeuronError) -> NeuronJobResult? {
        guard (0..<coreCount).contains(job.core), cores[job.core].owner == file else {
            throw .coreNotReserved(device: device, core: job.core)
        }
        let core = cores[job.core]
        guard job.sequence >= core.firstSequence, job.sequence <= core.submitted else {
            throw .unknownJob(core: job.core, sequence: job.sequence)
        }
        guard core.completed >= job.sequence else { return nil }
        guard let entry = core.history[Int(job.sequence % UInt64(NeuronQueueLimits.history))],
              entry.sequence == job.sequence else {
            throw .unknownJob(core: job.core, sequence: job.sequence)
        }
        return entry.result
    }

    func wait(file: Int, for job: NeuronJob, timeout: Duration) throws(NeuronError) -> NeuronJobResult? {
        let (seconds, attoseconds) = timeout.components
        let deadline = monotonicNanoseconds() + max(0, seconds) * 1_000_000_000 + max(0, attoseconds) / 1_000_000_000
        let spinUntil = monotonicNanoseconds() + Self.spinNanoseconds
        return try lock.withLock { () throws(NeuronError) -> NeuronJobResult? in
            while true {
                if let result = try lookup(file: file, job) { return result }
                let now = monotonicNanoseconds()
                let left = deadline - now
                if left <= 0 { return nil }
                if now < spinUntil {
                    lock.poll(done(job.core), until: min(spinUntil, deadline))
                } else {
                    lock.wait(on: done(job.core), nanoseconds: left)
                }
            }
        }
    }

    /// How many jobs ran on the thread that waited for them (for tests).
    var callerRuns: Int { lock.withLock { callerRunCount } }

    /// Run `job` on this thread when it was left for its waiter
    /// (`SimJob.deferred`) and is still next on its idle core; nil when
    /// the core's thread runs it (or ran it) instead.
    func runDeferred(file: Int, _ job: NeuronJob) -> NeuronJobResult? {
        let claimed: (SimJob, UnsafeMutableRawBufferPointer)? = lock.withLock {
            guard (0..<coreCount).contains(job.core), cores[job.core].owner == file, !cores[job.core].running,
                  !cores[job.core].abort, let first = cores[job.core].queue.first, first.deferred,
                  first.sequence == job.sequence else { return nil }
            cores[job.core].running = true
            cores[job.core].queue.removeFirst()
            callerRunCount += 1
            return (first, scratch(core: job.core))
        }
        guard let (simJob, scratch) = claimed else { return nil }
        let result = run(simJob, core: job.core, scratch: scratch)
        finish(simJob, core: job.core, result: result)
        return result
    }

    /// With the lock held: core `core`'s scratch memory, for whichever
    /// thread runs its job (one at a time: `Core.running`).
    private func scratch(core: Int) -> UnsafeMutableRawBufferPointer {
        if let existing = scratchMemory[core] { return existing }
        let made = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(NEURON_GEMM_SCRATCH), alignment: 64)
        made.initializeMemory(as: UInt8.self, repeating: 0)
        scratchMemory[core] = made
        return made
    }

    /// Before a caller suspends for `job`: when it is the only job queued
    /// on this device (one request in flight, a small model's latency is
    /// what counts), poll for its end for up to `spinNanoseconds`, as
    /// `wait` does, so that the caller's thread is not put to sleep and
    /// woken again (tens of microseconds on a small VM). With more jobs in
    /// flight the caller suspends at once: its thread has other requests
    /// to submit.
    func pollIfAlone(file: Int, _ job: NeuronJob) {
        let deadline = monotonicNanoseconds() + Self.spinNanoseconds
        lock.withLock {
            while (0..<coreCount).contains(job.core), cores[job.core].owner == file,
                  cores[job.core].completed < job.sequence, job.sequence <= cores[job.core].submitted,
                  cores.reduce(0, { $0 + $1.queued }) == 1, monotonicNanoseconds() < deadline {
                lock.poll(done(job.core), until: deadline)
            }
        }
    }

    func await(file: Int, _ job: NeuronJob, _ continuation: JobContinuation) {
        let ready: Result<NeuronJobResult, NeuronError>? = lock.withLock {
            do throws(NeuronError) {
                if let result = try lookup(file: file, job) { return .success(result) }
                cores[job.core].waiters[job.sequence, default: []].append(continuation)
                return nil
            } catch {
                return .failure(error)
            }
        }
        if let ready { continuation.resume(returning: ready) }
    }

    func info(core: Int) throws(NeuronError) -> NeuronQueueInfo {
        guard (0..<coreCount).contains(core) else {
            throw .invalidArgument("NeuronCore \(core) does not exist on device \(device) (it has \(coreCount)).")
        }
        return lock.withLock {
            NeuronQueueInfo(submitted: cores[core].submitted, completed: cores[core].completed,
                            queued: cores[core].queued, ownerPID: cores[core].owner == nil ? nil : getpid())
        }
    }

    // MARK: The NeuronCore threads

    private func startThread(core: Int) {
        if startDetachedThread({ self.coreLoop(core: core) }) != 0 {
            cores[core].thread = false
        }
    }

    private func coreLoop(core: Int) {
        var spinUntil: Int64 = 0   // after a job: the next one often follows at once
        while true {
            let next: (SimJob, UnsafeMutableRawBufferPointer)? = lock.withLock {
                // A waiting thread may be running a job of this core (`runDeferred`).
                while cores[core].queue.isEmpty || cores[core].running {
                    if cores[core].owner == nil {
                        cores[core].thread = false
                        return nil
                    }
                    if monotonicNanoseconds() < spinUntil {
                        lock.poll(work(core), until: spinUntil)
                    } else {
                        lock.wait(on: work(core), nanoseconds: 1_000_000_000)
                    }
                }
                cores[core].running = true
                return (cores[core].queue.removeFirst(), scratch(core: core))
            }
            guard let (job, scratch) = next else { return }
            job.trace?.pointee.dequeued_ns = UInt64(monotonicNanoseconds())
            let result = run(job, core: core, scratch: scratch)
            if let trace = job.trace {
                neuron_engine_trace_close(trace, UInt32(core), job.sequence, job.program.insn_count,
                                          result.status.rawStatus, UInt64(monotonicNanoseconds()))
            }
            finish(job, core: core, result: result)
            spinUntil = monotonicNanoseconds() + Self.spinNanoseconds
        }
    }

    fileprivate func aborting(_ core: Int) -> Bool {
        lock.withLock { cores[core].abort }
    }

    private func run(_ job: SimJob, core: Int, scratch: UnsafeMutableRawBufferPointer) -> NeuronJobResult {
        if let dep = job.dependency {
            let ok: Bool = lock.withLock {
                while cores[dep.core].completed < dep.sequence && !cores[core].abort {
                    lock.wait(on: done(dep.core), nanoseconds: 1_000_000_000)
                }
                if cores[core].abort { return false }
                guard let entry = cores[dep.core].history[Int(dep.sequence % UInt64(NeuronQueueLimits.history))],
                      entry.sequence == dep.sequence else { return true }
                return entry.result.status == .ok
            }
            if !ok { return NeuronJobResult(status: .aborted, duration: .zero) }
        }
        if aborting(core) { return NeuronJobResult(status: .aborted, duration: .zero) }

        let sync: Sync = lock.withLock {
            if let existing = self.sync[job.file] { return existing }
            let created = Sync()
            self.sync[job.file] = created
            return created
        }
        let context = SimRunContext(queues: self, core: core, file: job.file, sync: sync)
        let start = monotonicNanoseconds()
        var scratchSlot = neuron_engine_slot(base: scratch.baseAddress, size: UInt64(scratch.count))
        var result = neuron_run_result()
        job.slots.withUnsafeBufferPointer { slots in
            withUnsafePointer(to: &job.program) { program in
                withUnsafePointer(to: &scratchSlot) { scratchPointer in
                    var run = neuron_run_job(
                        prog: program, slots: slots.baseAddress, scratch: scratchPointer, sync: sync.state,
                        core: UInt32(core), deadline_ns: UInt64(start + Int64(timeoutMilliseconds) * 1_000_000),
                        section_work: Self.sectionWork, trace: job.trace)
                    withExtendedLifetime(context) {
                        withUnsafePointer(to: simRunHost) { host in
                            neuron_engine_run(host, Unmanaged.passUnretained(context).toOpaque(), &run, &result)
                        }
                    }
                }
            }
        }
        let status = NeuronJobStatus(status: result.status, error: result.error, index: result.error_index)
        if case .timedOut = status {
            // The core reset: its scratch memory is cleared.
            scratch.initializeMemory(as: UInt8.self, repeating: 0)
        }
        return NeuronJobResult(status: status, duration: .nanoseconds(monotonicNanoseconds() - start))
    }

    // MARK: What the engine's job runner asks of the simulator

    /// The NeuronCores `file` holds, as a mask (BARRIER's core masks).
    fileprivate func heldMask(file: Int) -> UInt32 {
        ownerMask(file: file).reduce(UInt32(0)) { $0 | UInt32(1) << UInt32($1) }
    }

    fileprivate func lockSync() { lock.lock() }
    fileprivate func unlockSync() { lock.unlock() }

    /// Sleep until the file's sync events move past `seen`, the core aborts, or `nanoseconds` pass.
    fileprivate func waitSync(_ context: SimRunContext, seen: UInt64, nanoseconds: UInt64) {
        lock.withLock {
            if context.sync.state.pointee.events == seen && !cores[context.core].abort {
                lock.wait(on: syncCondition, nanoseconds: Int64(min(nanoseconds, 1_000_000_000)))
            }
        }
    }

    fileprivate func wakeSync() { lock.broadcast(syncCondition) }

    private func finish(_ job: SimJob, core: Int, result: NeuronJobResult) {
        let waiters: [JobContinuation] = lock.withLock {
            cores[core].history[Int(job.sequence % UInt64(NeuronQueueLimits.history))] = (job.sequence, result)
            cores[core].completed = job.sequence
            cores[core].queued -= 1
            cores[core].running = false
            lock.broadcast(done(core))
            // A job queued behind one a waiting thread ran: the core's thread takes it.
            if !cores[core].queue.isEmpty { lock.broadcast(work(core)) }
            return cores[core].waiters.removeValue(forKey: job.sequence) ?? []
        }
        for waiter in waiters { waiter.resume(returning: .success(result)) }
    }
}

/// One job's run, as the C callbacks below see it.
final class SimRunContext {
    unowned let queues: SimDeviceQueues
    let core: Int
    let file: Int
    let sync: SimDeviceQueues.Sync

    init(queues: SimDeviceQueues, core: Int, file: Int, sync: SimDeviceQueues.Sync) {
        self.queues = queues
        self.core = core
        self.file = file
        self.sync = sync
    }
}

private func simContext(_ raw: UnsafeMutableRawPointer?) -> SimRunContext {
    // The runner passes back the context it was given, which outlives the run.
    Unmanaged<SimRunContext>.fromOpaque(raw.unsafelyUnwrapped).takeUnretainedValue()
}

/// The host table of the engine's job runner for a simulator thread: no
/// FPU sections to mark, a preemptible thread to yield, the queues' lock
/// and condition for semaphores and barriers.
private let simRunHost = neuron_run_host(
    fpu_begin: { _ in },
    fpu_end: { _ in },
    yield: { _ in },
    now_ns: { _ in UInt64(monotonicNanoseconds()) },
    aborting: { simContext($0).queues.aborting(simContext($0).core) ? 1 : 0 },
    cores_held: { simContext($0).queues.heldMask(file: simContext($0).file) },
    sync_lock: { simContext($0).queues.lockSync() },
    sync_unlock: { simContext($0).queues.unlockSync() },
    sync_wait: { context, seen, ns in
        let run = simContext(context)
        run.queues.waitSync(run, seen: seen, nanoseconds: ns)
    },
    sync_wake: { simContext($0).queues.wakeSync() })
