import Foundation
import NeuronDevice
import NeuronISA
import NeuronNEFF
import NeuronProfile

/// A model loaded on a group of NeuronCores: its reserved queues, its
/// (shared) weights and its scratch tensors. Unloaded exactly once, on
/// `unload()` or when the last reference goes away.
public final class NeuronLoadedModel: Sendable {
    /// The model's metadata and programs; its weights live on the device
    /// only (`model.weights` is empty), so a load keeps no host copy.
    public let model: NEFFModel
    /// The global NeuronCore indices it runs on.
    public let cores: [Int]
    let runtime: NeuronRuntime
    let device: any NeuronDeviceHandle
    let queues: [NeuronQueue]
    let weights: NeuronRuntime.WeightSet
    /// How it was loaded.
    public let options: NeuronLoadOptions
    /// A request in flight holds one of these.
    private let requestSlots: RequestSlots
    /// Where executions are profiled, if they are; `profileDirectory`
    /// when the capture is written there at unload (NEURON_RT_PROFILE).
    let profiler: NeuronProfileRecorder?
    private let profileDirectory: String?
    /// Records each program's trace buffer has room for (profiling only).
    private let traceRecords: [Int]

    private struct State {
        var loaded = true
        /// Scratch tensors by request slot: one set for a single-core
        /// model (its jobs run one after another on its core), one per
        /// slot for a multi-core model, allocated on first use.
        var scratch: [Int: [String: NeuronBuffer]] = [:]
        /// Trace buffers by request slot, one per program (profiling only).
        var traces: [Int: [NeuronBuffer]] = [:]
    }
    private let state = Locked(State())
    /// Requests are submitted one at a time (their jobs then run in order).
    private let submitLock = Locked(())

    init(runtime: NeuronRuntime, model: NEFFModel, device: any NeuronDeviceHandle, cores: [Int],
         queues: [NeuronQueue], weights: NeuronRuntime.WeightSet, options: NeuronLoadOptions) throws(NeuronRuntimeError) {
        self.runtime = runtime
        var metadata = model
        metadata.weights = [:]
        self.model = metadata
        self.device = device
        self.cores = cores
        self.queues = queues
        self.weights = weights
        self.options = options
        requestSlots = RequestSlots(count: options.maxInFlight)
        profiler = options.profiler ?? (options.profileDirectory != nil ? NeuronProfileRecorder() : nil)
        profileDirectory = options.profiler == nil ? options.profileDirectory : nil
        traceRecords = profiler == nil ? [] : metadata.programs.map { Self.traceRecords($0, of: metadata) }
        do {
            _ = try scratch(for: 0)
        } catch {
            runtime.releaseWeights(weights, model: metadata, device: device.index)
            throw error
        }
    }

    /// The scratch tensors request slot `slot` uses, allocated on first use.
    private func scratch(for slot: Int) throws(NeuronRuntimeError) -> [String: NeuronBuffer] {
        let set = model.coreCount > 1 ? slot : 0
        if let existing = state.withLock({ $0.scratch[set] }) { return existing }
        var buffers: [String: NeuronBuffer] = [:]
        for tensor in model.tensors where tensor.kind == .scratch {
            do {
                buffers[tensor.name] = try device.allocate(size: UInt64(max(1, tensor.byteCount ?? 1)))
            } catch {
                buffers.values.forEach { $0.free() }
                throw NeuronRuntimeError(error, while: "allocating the scratch tensors of \(model.name)")
            }
        }
        let kept = state.withLock { state -> Bool in
            guard state.loaded, state.scratch[set] == nil else { return false }
            state.scratch[set] = buffers
            return true
        }
        guard kept else {
            buffers.values.forEach { $0.free() }
            throw NeuronRuntimeError(.closed, "\(model.name) was unloaded")
        }
        return buffers
    }

    /// Records a job of `program` can write: one per instruction, one
    /// more per section of the driver's (the smaller) a sliced one spans.
    private static func traceRecords(_ program: NEFFProgram, of model: NEFFModel) -> Int {
        let costs = (try? NeuronEngine.instructions(program.image, slotSizes: model.slotSizes(of: program)).map(\.cost)) ?? []
        let sections = costs.reduce(0) { $0 + Int(min($1 >> 21, 1 << 20)) }
        return program.instructionCount + sections + 64
    }

    /// The trace buffers of request slot `slot`, allocated on first use.
    private func traces(for slot: Int) throws(NeuronRuntimeError) -> [NeuronBuffer] {
        if let existing = state.withLock({ $0.traces[slot] }) { return existing }
        var buffers: [NeuronBuffer] = []
        for records in traceRecords {
            do {
                buffers.append(try device.allocate(size: NeuronJobTrace.bufferSize(records: records)))
            } catch {
                buffers.forEach { $0.free() }
                throw NeuronRuntimeError(error, while: "allocating the profile's trace buffers of \(model.name)")
            }
        }
        let kept = state.withLock { state -> Bool in
            guard state.loaded, state.traces[slot] == nil else { return false }
            state.traces[slot] = buffers
            return true
        }
        guard kept else {
            buffers.forEach { $0.free() }
            throw NeuronRuntimeError(.closed, "\(model.name) was unloaded")
        }
        return buffers
    }

    /// Hand the ended jobs' traces of request slot `slot` to the profiler.
    private func recordTraces(slot: Int, requested: UInt64) {
        guard let profiler, let buffers = state.withLock({ $0.traces[slot] }) else { return }
        let returned = NeuronJobTrace.now()
        var jobs: [NeuronProfile.Job] = []
        for (index, buffer) in buffers.enumerated() {
            guard let trace = try? NeuronJobTrace(buffer: buffer) else { return }
            let core = model.programs[index].core
            jobs.append(NeuronProfile.Job(program: index, device: device.index, deviceCore: queues[core].core,
                                          globalCore: cores[core], trace: trace))
        }
        profiler.record(replica: replica, jobs: jobs, requested: requested, returned: returned)
    }

    /// This load's number among those profiled into the same recorder.
    private var replica: Int { profiler?.replica(of: ObjectIdentifier(self)) ?? 0 }

    /// With NEURON_RT_PROFILE: write the capture, and say where.
    private func writeProfile() {
        guard let profiler, let dir = profileDirectory else { return }
        let executions = profiler.executions.kept
        guard !executions.isEmpty else { return }
        let safe = String(model.name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" })
        let path = "\(dir)/\(safe)-\(getpid())-\(replica).profile.json"
        do {
            try profiler.capture(tool: "runtime (NEURON_RT_PROFILE)", model: model, backend: runtime.backend)
                .write(to: path)
            FileHandle.standardError.write(Data("neuron: profile of \(self.model.name) (\(executions.count) executions) written to \(path)\n".utf8))
        } catch {
            FileHandle.standardError.write(Data("neuron: the profile of \(self.model.name) could not be written to \(path): \(error)\n".utf8))
        }
    }

    deinit { unload() }

    /// Release the NeuronCores (queued requests end aborted), the scratch
    /// tensors, and this load's share of the weights. Idempotent.
    public func unload() {
        let (wasLoaded, scratch, traces) = state.withLock { state in
            defer {
                state.loaded = false
                state.scratch = [:]
                state.traces = [:]
            }
            return (state.loaded, state.scratch, state.traces)
        }
        guard wasLoaded else { return }
        requestSlots.close()
        queues.forEach { $0.close() }
        runtime.releaseCores(cores)
        writeProfile()
        scratch.values.forEach { $0.values.forEach { $0.free() } }
        traces.values.forEach { $0.forEach { $0.free() } }
        runtime.releaseWeights(weights, model: model, device: device.index)
    }

    public var isLoaded: Bool { state.withLock { $0.loaded } }
    public var inputs: [NEFFTensor] { model.inputs }
    public var outputs: [NEFFTensor] { model.outputs }

    /// A device tensor for the model's input or output `name`.
    public func allocateTensor(named name: String) throws(NeuronRuntimeError) -> NeuronTensor {
        guard let info = model.tensor(named: name), info.kind == .input || info.kind == .output else {
            throw NeuronRuntimeError(.invalid, "\(model.name) has no input or output named \(name); inputs: \(inputs.map(\.name).joined(separator: ", ")); outputs: \(outputs.map(\.name).joined(separator: ", "))")
        }
        return try runtime.allocate(info, on: device)
    }

    /// Tensors for every input, or every output, by name.
    public func allocateInputs() throws(NeuronRuntimeError) -> [String: NeuronTensor] {
        var result: [String: NeuronTensor] = [:]
        for info in inputs { result[info.name] = try allocateTensor(named: info.name) }
        return result
    }

    public func allocateOutputs() throws(NeuronRuntimeError) -> [String: NeuronTensor] {
        var result: [String: NeuronTensor] = [:]
        for info in outputs { result[info.name] = try allocateTensor(named: info.name) }
        return result
    }

    /// Check the tensors against the model and bind every program's slots.
    private func bind(inputs: [String: NeuronTensor], outputs: [String: NeuronTensor], slot: Int)
        throws(NeuronRuntimeError) -> [[NeuronBuffer?]] {
        for (set, kind) in [(inputs, NEFFTensor.Kind.input), (outputs, .output)] {
            for info in model.tensors where info.kind == kind {
                guard let given = set[info.name] else {
                    throw NeuronRuntimeError(.execBadInput, "the \(kind.rawValue) \(info.name) of \(model.name) is missing")
                }
                guard given.dtype == info.dtype, given.shape == info.shape else {
                    throw NeuronRuntimeError(.execBadInput, "the \(kind.rawValue) \(info.name) of \(model.name) is \(info.dtype) \(info.shape); \(given.dtype) \(given.shape) was given")
                }
                guard given.buffer.deviceIndex == device.index else {
                    throw NeuronRuntimeError(.execBadInput, "the \(kind.rawValue) \(info.name) is on device \(given.buffer.deviceIndex); the model is on device \(device.index)")
                }
            }
            for name in set.keys where model.tensor(named: name)?.kind != kind {
                throw NeuronRuntimeError(.execBadInput, "\(model.name) has no \(kind.rawValue) named \(name)")
            }
        }
        let scratch = try scratch(for: slot)
        return model.programs.map { program in
            program.slots.map { name in
                guard let name else { return nil }
                return inputs[name]?.buffer ?? outputs[name]?.buffer ?? weights.buffers[name] ?? scratch[name]
            }
        }
    }

    /// Submit one request holding request slot `slot`: every program, in
    /// order, with its dependencies. `awaited`: the caller waits for it
    /// next, so a one-program model's job may run on the caller's thread
    /// (`NeuronJobRequest.awaited`; a pipeline's stages keep their cores).
    private func submit(inputs: [String: NeuronTensor], outputs: [String: NeuronTensor], slot: Int,
                        awaited: Bool = false) throws(NeuronRuntimeError) -> [NeuronJob] {
        guard isLoaded else { throw NeuronRuntimeError(.closed, "\(model.name) was unloaded") }
        let bound = try bind(inputs: inputs, outputs: outputs, slot: slot)
        let traces = profiler == nil ? nil : try self.traces(for: slot)
        return try submitLock.withLock { () throws(NeuronRuntimeError) -> [NeuronJob] in
            var jobs: [NeuronJob] = []
            for (index, program) in model.programs.enumerated() {
                let after = program.after.map { jobs[$0] }
                while true {
                    do throws(NeuronError) {
                        jobs.append(try queues[program.core].submit(image: program.image, buffers: bound[index],
                                                                    after: after, trace: traces?[index],
                                                                    awaited: awaited && model.programs.count == 1))
                        break
                    } catch .queueFull {
                        do throws(NeuronError) {
                            try queues[program.core].waitForRoom(timeout: .seconds(3600))
                        } catch {
                            throw NeuronRuntimeError(error, while: "waiting for room on a NeuronCore")
                        }
                    } catch {
                        throw NeuronRuntimeError(error, while: "submitting program \(index) of \(model.name)")
                    }
                }
            }
            return jobs
        }
    }

    private func check(_ results: [NeuronJobResult]) throws(NeuronRuntimeError) {
        for (index, result) in results.enumerated() {
            switch result.status {
            case .ok:
                continue
            case .fault(let error):
                throw NeuronRuntimeError(.execCompletedWithError, "program \(index) of \(model.name): \(error.description)")
            case .timedOut(let instruction):
                throw NeuronRuntimeError(.timeout, "program \(index) of \(model.name) ran past the job timeout at instruction \(instruction)")
            case .invalid(let instruction):
                throw NeuronRuntimeError(.invalid, "program \(index) of \(model.name) could not run instruction \(instruction) on these NeuronCores")
            case .aborted:
                throw NeuronRuntimeError(.closed, "program \(index) of \(model.name) was aborted (the model was unloaded, or an earlier program failed)")
            }
        }
    }

    /// Run one inference and wait for it.
    public func execute(inputs: [String: NeuronTensor], outputs: [String: NeuronTensor]) throws(NeuronRuntimeError) {
        let requested = profiler == nil ? 0 : NeuronJobTrace.now()
        guard let slot = requestSlots.acquire() else { throw NeuronRuntimeError(.closed, "\(model.name) was unloaded") }
        defer { requestSlots.release(slot) }
        let jobs = try submit(inputs: inputs, outputs: outputs, slot: slot, awaited: true)
        var results: [NeuronJobResult] = []
        for (index, job) in jobs.enumerated() {
            let result: NeuronJobResult?
            do {
                result = try queues[model.programs[index].core].wait(job, timeout: .seconds(3600))
            } catch {
                throw NeuronRuntimeError(error, while: "waiting for \(model.name)")
            }
            guard let result else {
                throw NeuronRuntimeError(.timeout, "program \(index) of \(model.name) did not end within an hour")
            }
            results.append(result)
        }
        recordTraces(slot: slot, requested: requested)
        try check(results)
    }

    /// Run one inference; the caller's task suspends, no thread waits.
    public func execute(inputs: [String: NeuronTensor], outputs: [String: NeuronTensor]) async throws(NeuronRuntimeError) {
        let requested = profiler == nil ? 0 : NeuronJobTrace.now()
        guard let slot = await requestSlots.acquire() else { throw NeuronRuntimeError(.closed, "\(model.name) was unloaded") }
        defer { requestSlots.release(slot) }
        try await collect(try submit(inputs: inputs, outputs: outputs, slot: slot, awaited: true), slot: slot,
                          requested: requested)
    }

    /// Queue one inference and return at once (after waiting for a request
    /// slot when `options.maxInFlight` are in flight): requests queued one
    /// after another run in that order. The slot is given back when its
    /// jobs end, whether or not anyone awaits `result()`.
    public func enqueue(inputs: [String: NeuronTensor], outputs: [String: NeuronTensor])
        async throws(NeuronRuntimeError) -> NeuronInference {
        let requested = profiler == nil ? 0 : NeuronJobTrace.now()
        guard let slot = await requestSlots.acquire() else { throw NeuronRuntimeError(.closed, "\(model.name) was unloaded") }
        let jobs: [NeuronJob]
        do {
            jobs = try submit(inputs: inputs, outputs: outputs, slot: slot)
        } catch {
            requestSlots.release(slot)
            throw error
        }
        let completion = Task { () -> Result<Void, NeuronRuntimeError> in
            defer { self.requestSlots.release(slot) }
            do throws(NeuronRuntimeError) {
                try await self.collect(jobs, slot: slot, requested: requested)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        return NeuronInference(model: self, jobs: jobs, completion: completion)
    }

    /// Await every job of a request (holding request slot `slot`) and
    /// check how each ended.
    private func collect(_ jobs: [NeuronJob], slot: Int, requested: UInt64) async throws(NeuronRuntimeError) {
        var results: [NeuronJobResult] = []
        for (index, job) in jobs.enumerated() {
            do {
                results.append(try await queues[model.programs[index].core].result(of: job))
            } catch {
                throw NeuronRuntimeError(error, while: "waiting for \(model.name)")
            }
        }
        recordTraces(slot: slot, requested: requested)
        try check(results)
    }

    /// True when every job of `jobs` ended (without waiting). A job of
    /// ours the queue no longer knows ended long ago (its history keeps
    /// the last NEURON_JOB_HISTORY), or its core was released.
    func ended(_ jobs: [NeuronJob]) -> Bool {
        jobs.enumerated().allSatisfy { index, job in
            do {
                return try queues[model.programs[index].core].wait(job, timeout: .zero) != nil
            } catch {
                return true
            }
        }
    }
}

/// An inference queued with `NeuronLoadedModel.enqueue`.
public final class NeuronInference: Sendable {
    /// Its jobs, one per program of the model, in the model's order.
    public let jobs: [NeuronJob]
    private let model: NeuronLoadedModel
    private let completion: Task<Result<Void, NeuronRuntimeError>, Never>

    init(model: NeuronLoadedModel, jobs: [NeuronJob], completion: Task<Result<Void, NeuronRuntimeError>, Never>) {
        self.model = model
        self.jobs = jobs
        self.completion = completion
    }

    /// Wait for it to end; throws as `execute` would.
    public func result() async throws(NeuronRuntimeError) {
        try await completion.value.get()
    }

    /// Whether every job of it ended, without waiting.
    public var hasEnded: Bool { model.ended(jobs) }
}
