import NeuronDevice
import NeuronNEFF

/// A tensor in device memory: a buffer with a name, dtype and shape.
public final class NeuronTensor: Sendable {
    public let name: String
    public let dtype: NeuronDType
    public let shape: [Int]
    public let buffer: NeuronBuffer

    /// A view of `buffer` as a tensor (the buffer must hold its bytes).
    public init(name: String, dtype: NeuronDType, shape: [Int], buffer: NeuronBuffer) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.buffer = buffer
    }

    /// Bytes of its elements.
    public var byteCount: Int { shape.reduce(dtype.size, *) }

    public func write(_ bytes: UnsafeRawBufferPointer, at offset: Int = 0) throws(NeuronRuntimeError) {
        do { try buffer.write(bytes, at: UInt64(offset)) } catch { throw NeuronRuntimeError(error, while: "writing tensor \(name)") }
    }

    public func write<T: BitwiseCopyable>(_ values: [T]) throws(NeuronRuntimeError) {
        do { try buffer.write(values) } catch { throw NeuronRuntimeError(error, while: "writing tensor \(name)") }
    }

    public func read<T: BitwiseCopyable>(_ type: T.Type) throws(NeuronRuntimeError) -> [T] {
        do {
            return try buffer.read(type, count: byteCount / MemoryLayout<T>.stride)
        } catch {
            throw NeuronRuntimeError(error, while: "reading tensor \(name)")
        }
    }

    /// Zero-copy access to the tensor's bytes.
    public func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) throws -> R {
        try buffer.withUnsafeMutableBytes { try body(UnsafeMutableRawBufferPointer(rebasing: $0.prefix(byteCount))) }
    }
}

/// The runtime: devices, the NeuronCores this process may use, and the
/// models loaded on them. One device file per device, shared by every
/// model on it, so that the replicas of a model share its weights.
public final class NeuronRuntime: Sendable {
    public let backend: any NeuronBackend
    /// (device, core) of each global NeuronCore index.
    public let cores: [(device: Int, core: Int)]
    /// The global indices this process may use.
    public let visibleCores: [Int]
    /// What `load` uses when given no options (from the environment).
    public let defaultLoadOptions: NeuronLoadOptions
    private let devices: [any NeuronDeviceHandle]
    private let weights = Locked<[WeightKey: WeightSet]>([:])
    /// Global cores a loaded model of this runtime runs on.
    private let inUse = Locked<Set<Int>>([])

    struct WeightKey: Hashable {
        var uuid: [UInt8]
        var device: Int
    }

    /// The weights of one model on one device, shared by its loads.
    final class WeightSet: Sendable {
        let buffers: [String: NeuronBuffer]
        let users = Locked(0)
        init(buffers: [String: NeuronBuffer]) { self.buffers = buffers }
    }

    /// Open every device of `backend` (or the environment's) and read the
    /// visible NeuronCores from `environment`.
    public init(backend: (any NeuronBackend)? = nil,
                environment: [String: String] = NeuronBackendSelection.processEnvironment()) throws(NeuronRuntimeError) {
        do {
            self.backend = try backend ?? NeuronBackendSelection.fromEnvironment(environment)
            let count = try self.backend.driverInfo().deviceCount
            var devices: [any NeuronDeviceHandle] = []
            var cores: [(device: Int, core: Int)] = []
            for index in 0..<count {
                let device = try self.backend.open(device: index)
                devices.append(device)
                cores += (0..<(try device.info().coreCount)).map { (index, $0) }
            }
            self.devices = devices
            self.cores = cores
        } catch let error as NeuronRuntimeError {
            throw error
        } catch let error as NeuronError {
            throw NeuronRuntimeError(error, while: "starting the runtime")
        } catch {
            throw NeuronRuntimeError(.failure, "starting the runtime: \(error)")
        }
        visibleCores = try NeuronCoreVisibility.visibleCores(total: cores.count, environment: environment)
        defaultLoadOptions = try NeuronLoadOptions(environment: environment)
    }

    /// Every device, closed; loaded models stop working (`.closed`).
    public func close() {
        for device in devices { device.close() }
    }

    /// NeuronCores in this machine, and those this process may use.
    public var totalCoreCount: Int { cores.count }
    public var visibleCoreCount: Int { visibleCores.count }

    /// Read the NEFF at `path` and load it; the file's bytes and the host
    /// copy of its weights are gone when this returns.
    public func load(contentsOf path: String, startCore start: Int? = nil,
                     options: NeuronLoadOptions? = nil) throws(NeuronRuntimeError) -> NeuronLoadedModel {
        let model: NEFFModel
        do {
            model = try NEFFModel(contentsOf: path)
        } catch let error as NEFFError {
            throw NeuronRuntimeError(error)
        } catch {
            throw NeuronRuntimeError(.invalid, "\(error)")
        }
        return try load(model, startCore: start, options: options)
    }

    /// Load `model` on the first visible group of `model.coreCount`
    /// NeuronCores of one device that no one holds (or from global core
    /// `start`). Weights are uploaded once per device and model, shared
    /// by every load of it there.
    public func load(_ model: NEFFModel, startCore start: Int? = nil,
                     options: NeuronLoadOptions? = nil) throws(NeuronRuntimeError) -> NeuronLoadedModel {
        let options = options ?? defaultLoadOptions
        guard options.maxInFlight >= 1 else {
            throw NeuronRuntimeError(.invalid, "maxInFlight is \(options.maxInFlight); a model needs at least 1 request in flight")
        }
        do { try model.validate() } catch { throw NeuronRuntimeError(error) }
        var busy: NeuronError?
        let candidates = start.map { [$0] } ?? visibleCores
        for first in candidates {
            let group = Array(first..<(first + model.coreCount))
            guard group.allSatisfy({ visibleCores.contains($0) && $0 < cores.count }),
                  Set(group.map { cores[$0].device }).count == 1 else { continue }
            // Claim the group within this runtime, then on the device.
            let claimed = inUse.withLock { used -> Bool in
                guard used.isDisjoint(with: group) else { return false }
                used.formUnion(group)
                return true
            }
            guard claimed else { continue }
            let device = devices[cores[first].device]
            var queues: [NeuronQueue] = []
            do {
                for global in group { queues.append(try device.queue(core: cores[global].core)) }
            } catch {
                queues.forEach { $0.close() }
                releaseCores(group)
                if case .coresBusy = error { busy = error; continue }
                throw NeuronRuntimeError(error, while: "reserving NeuronCores for \(model.name)")
            }
            do {
                let weightSet = try sharedWeights(for: model, device: device)
                return try NeuronLoadedModel(runtime: self, model: model, device: device, cores: group,
                                             queues: queues, weights: weightSet, options: options)
            } catch {
                queues.forEach { $0.close() }
                releaseCores(group)
                throw error
            }
        }
        if let busy {
            throw NeuronRuntimeError(busy, while: "loading \(model.name) on \(model.coreCount) NeuronCore(s)")
        }
        throw NeuronRuntimeError(.loadNotEnoughCores, "\(model.name) needs \(model.coreCount) NeuronCore(s) of one device; the visible ones (\(visibleCores.map(String.init).joined(separator: ","))) have no such group. Set NEURON_RT_VISIBLE_CORES or NEURON_RT_NUM_CORES to include more.")
    }

    func releaseCores(_ group: [Int]) {
        inUse.withLock { $0.subtract(group) }
    }

    private func sharedWeights(for model: NEFFModel, device: any NeuronDeviceHandle) throws(NeuronRuntimeError) -> WeightSet {
        let key = WeightKey(uuid: model.uuid, device: device.index)
        if let existing = weights.withLock({ $0[key] }) {
            existing.users.withLock { $0 += 1 }
            return existing
        }
        var buffers: [String: NeuronBuffer] = [:]
        for tensor in model.tensors where tensor.kind == .weight {
            guard let bytes = model.weights[tensor.name] else { continue }
            do {
                let buffer = try device.allocate(size: UInt64(bytes.count))
                try buffer.write(bytes)
                buffers[tensor.name] = buffer
            } catch {
                buffers.values.forEach { $0.free() }
                throw NeuronRuntimeError(error, while: "uploading the weights of \(model.name)")
            }
        }
        let set = WeightSet(buffers: buffers)
        set.users.withLock { $0 = 1 }
        let winner = weights.withLock { all -> WeightSet in
            if let raced = all[key] { return raced }
            all[key] = set
            return set
        }
        if winner !== set {
            buffers.values.forEach { $0.free() }
            winner.users.withLock { $0 += 1 }
        }
        return winner
    }

    func releaseWeights(_ set: WeightSet, model: NEFFModel, device: Int) {
        let last = set.users.withLock { users -> Bool in
            users -= 1
            return users == 0
        }
        guard last else { return }
        weights.withLock { all in
            let key = WeightKey(uuid: model.uuid, device: device)
            if all[key] === set { all[key] = nil }
        }
        set.buffers.values.forEach { $0.free() }
    }

    /// Device memory for a tensor of `bytes`, on the device of visible
    /// NeuronCore `logicalCore` (an index into `visibleCores`).
    public func allocateBuffer(bytes: Int, logicalCore: Int) throws(NeuronRuntimeError) -> NeuronBuffer {
        guard visibleCores.indices.contains(logicalCore) else {
            throw NeuronRuntimeError(.invalid, "NeuronCore \(logicalCore) is not visible; \(visibleCores.count) are (0-\(visibleCores.count - 1))")
        }
        guard bytes > 0 else { throw NeuronRuntimeError(.invalid, "a tensor of 0 bytes") }
        do {
            return try devices[cores[visibleCores[logicalCore]].device].allocate(size: UInt64(bytes))
        } catch {
            throw NeuronRuntimeError(error, while: "allocating \(bytes) bytes")
        }
    }

    /// A tensor for `info` on `device` (an input or output of a model).
    func allocate(_ info: NEFFTensor, on device: any NeuronDeviceHandle) throws(NeuronRuntimeError) -> NeuronTensor {
        do {
            let buffer = try device.allocate(size: UInt64(max(1, info.byteCount ?? 1)))
            return NeuronTensor(name: info.name, dtype: info.dtype, shape: info.shape, buffer: buffer)
        } catch {
            throw NeuronRuntimeError(error, while: "allocating tensor \(info.name)")
        }
    }
}
