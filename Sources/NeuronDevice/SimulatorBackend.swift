import CNeuronEngine
import CNeuronUAPI
import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The in-process simulator: devices that behave as the driver's fake
/// devices do (same serials, ring, limits), for hosts without the module.
/// It grows with the driver: memory, engine and queues land here in the
/// same issues that add them to the driver.
public struct SimulatorBackend: NeuronBackend {
    /// The engine's vector paths (`NEURON_SIM_SIMD`), to measure on this
    /// machine what a CPU with fewer extensions would do: the same bits,
    /// other speeds. It applies to the whole process.
    public enum VectorPaths: String, Sendable, CaseIterable {
        /// The reference loops only.
        case scalar
        /// AVX2 with FMA (8 lanes).
        case avx2
        /// AVX-512F (16 lanes), bf16 pairs emulated with FMA.
        case avx512
        /// AVX-512F with AVX512_BF16's VDPBF16PS for bf16 pairs.
        case avx512BF16 = "avx512-bf16"

        var level: UInt32 {
            switch self {
            case .scalar: UInt32(NEURON_SIMD_SCALAR.rawValue)
            case .avx2: UInt32(NEURON_SIMD_AVX2.rawValue)
            case .avx512, .avx512BF16: UInt32(NEURON_SIMD_AVX512.rawValue)
            }
        }

        var bf16: Int32 { self == .avx512BF16 ? 1 : 0 }
    }

    /// How the simulator runs MATMUL's and CONV2D's bf16 pairs products
    /// (`NEURON_SIM_BF16`). It applies to the whole process.
    public enum BF16Products: String, Sendable, CaseIterable {
        /// The ISA's definition, bit for bit (VDPBF16PS where the CPU has
        /// it, an exact emulation elsewhere): the driver's results.
        case exact
        /// AMX-BF16's tiles (TDPBF16PS), an explicit inexact mode: the
        /// tiles sum each 16 pairs in an order of their own, so outputs
        /// differ from the definition's in their last bits
        /// (docs/benchmarks.md measures how much). Products of more than
        /// 8 rows only; the rest stay exact.
        case amx

        var mode: UInt32 {
            switch self {
            case .exact: UInt32(NEURON_AMX_OFF.rawValue)
            case .amx: UInt32(NEURON_AMX_NATIVE.rawValue)
            }
        }
    }

    public struct Configuration: Sendable, Equatable {
        public var devices: Int
        public var coresPerDevice: Int
        public var memoryMiBPerDevice: Int
        /// The driver's job_timeout_ms.
        public var jobTimeoutMilliseconds: Int
        /// The engine's vector paths; nil: the widest this CPU has.
        public var vectorPaths: VectorPaths?
        /// bf16 pairs products: exact (the default) or on AMX's tiles.
        public var bf16Products: BF16Products

        /// The driver's limits, so the simulator refuses what the module would.
        public static let deviceRange = 0...16
        public static let coreRange = 1...8
        public static let memoryRange = 1...1_048_576
        public static let jobTimeoutRange = 10...3_600_000

        public init(devices: Int = 1, coresPerDevice: Int = 4, memoryMiBPerDevice: Int = 8192,
                    jobTimeoutMilliseconds: Int = 10_000, vectorPaths: VectorPaths? = nil,
                    bf16Products: BF16Products = .exact) throws(NeuronError) {
            guard Self.deviceRange.contains(devices) else {
                throw .invalidConfiguration("NEURON_SIM_DEVICES=\(devices) is out of range; expected \(Self.deviceRange.lowerBound)...\(Self.deviceRange.upperBound).")
            }
            guard Self.coreRange.contains(coresPerDevice) else {
                throw .invalidConfiguration("NEURON_SIM_CORES=\(coresPerDevice) is out of range; expected \(Self.coreRange.lowerBound)...\(Self.coreRange.upperBound).")
            }
            guard Self.memoryRange.contains(memoryMiBPerDevice) else {
                throw .invalidConfiguration("NEURON_SIM_MEMORY_MB=\(memoryMiBPerDevice) is out of range; expected \(Self.memoryRange.lowerBound)...\(Self.memoryRange.upperBound).")
            }
            guard Self.jobTimeoutRange.contains(jobTimeoutMilliseconds) else {
                throw .invalidConfiguration("NEURON_SIM_JOB_TIMEOUT_MS=\(jobTimeoutMilliseconds) is out of range; expected \(Self.jobTimeoutRange.lowerBound)...\(Self.jobTimeoutRange.upperBound).")
            }
            if let vectorPaths, neuron_simd_can_run(vectorPaths.level, vectorPaths.bf16) == 0 {
                throw .invalidConfiguration("NEURON_SIM_SIMD=\(vectorPaths.rawValue) needs CPU extensions this machine lacks; choose one of \(VectorPaths.allCases.filter { neuron_simd_can_run($0.level, $0.bf16) != 0 }.map(\.rawValue).joined(separator: ", ")), or unset it for the widest.")
            }
            if neuron_amx_can_run(bf16Products.mode) == 0 {
                throw .invalidConfiguration("NEURON_SIM_BF16=\(bf16Products.rawValue) needs AMX-BF16 (an Intel Xeon of the Sapphire Rapids generation or later) and a kernel that grants a process AMX's state (Linux 5.16 or later); this machine cannot: unset it for the exact products.")
            }
            self.vectorPaths = vectorPaths
            self.bf16Products = bf16Products
            self.devices = devices
            self.coresPerDevice = coresPerDevice
            self.memoryMiBPerDevice = memoryMiBPerDevice
            self.jobTimeoutMilliseconds = jobTimeoutMilliseconds
        }

        /// From NEURON_SIM_DEVICES, NEURON_SIM_CORES, NEURON_SIM_MEMORY_MB,
        /// NEURON_SIM_JOB_TIMEOUT_MS, NEURON_SIM_SIMD and NEURON_SIM_BF16.
        public static func fromEnvironment(_ environment: [String: String]) throws(NeuronError) -> Configuration {
            func value(_ key: String, _ fallback: Int) throws(NeuronError) -> Int {
                guard let text = environment[key], !text.isEmpty else { return fallback }
                guard let number = Int(text) else {
                    throw .invalidConfiguration("\(key)=\(text) is not a whole number.")
                }
                return number
            }
            var paths: VectorPaths?
            if let text = environment["NEURON_SIM_SIMD"], !text.isEmpty {
                guard let chosen = VectorPaths(rawValue: text) else {
                    throw .invalidConfiguration("NEURON_SIM_SIMD=\(text) is not a vector path; use one of \(VectorPaths.allCases.map(\.rawValue).joined(separator: ", ")).")
                }
                paths = chosen
            }
            var products = BF16Products.exact
            if let text = environment["NEURON_SIM_BF16"], !text.isEmpty {
                guard let chosen = BF16Products(rawValue: text) else {
                    throw .invalidConfiguration("NEURON_SIM_BF16=\(text) is not a way to run bf16 products; use exact (the ISA's bits, the default) or amx (AMX's tiles, faster, inexact).")
                }
                products = chosen
            }
            return try Configuration(devices: value("NEURON_SIM_DEVICES", 1),
                                     coresPerDevice: value("NEURON_SIM_CORES", 4),
                                     memoryMiBPerDevice: value("NEURON_SIM_MEMORY_MB", 8192),
                                     jobTimeoutMilliseconds: value("NEURON_SIM_JOB_TIMEOUT_MS", 10_000),
                                     vectorPaths: paths, bf16Products: products)
        }
    }

    public let name = "sim"
    public let configuration: Configuration
    let world: SimulatorWorld

    public init(configuration: Configuration) {
        self.configuration = configuration
        self.world = SimulatorWorld()
        if let paths = configuration.vectorPaths {
            _ = neuron_simd_set_process(paths.level, paths.bf16)   // checked by Configuration
        }
        // Always: a backend of exact products after one on AMX turns AMX off.
        _ = neuron_amx_set_process(configuration.bf16Products.mode)   // checked by Configuration
    }

    public func driverInfo() throws(NeuronError) -> NeuronDriverInfo {
        guard configuration.devices > 0 else { throw .noDevices }
        return NeuronDriverInfo(apiMajor: KernelBackend.supportedAPIMajor,
                                apiMinor: SimulatorWorld.apiMinor,
                                deviceCount: configuration.devices, version: "sim")
    }

    public func open(device index: Int) throws(NeuronError) -> any NeuronDeviceHandle {
        guard (0..<configuration.devices).contains(index) else {
            throw .deviceNotFound(index: index, deviceCount: configuration.devices)
        }
        return SimulatedDevice(backend: self, index: index)
    }

    func info(of index: Int) -> NeuronDeviceInfo {
        NeuronDeviceInfo(
            index: index, platform: .simulator, coreCount: configuration.coresPerDevice,
            memorySize: UInt64(configuration.memoryMiBPerDevice) << 20,
            memoryUsed: 0, numaNode: 0,
            connectedTo: neuronRingNeighbours(of: index, count: configuration.devices),
            serial: neuronFakeSerial(ordinal: index), pciBDF: nil,
            jobTimeoutMilliseconds: UInt32(configuration.jobTimeoutMilliseconds))
    }
}

/// Shared state of one simulator instance: open files, their buffers and
/// the memory accounting, as the driver keeps them.
final class SimulatorWorld: Sendable {
    static let apiMinor: UInt32 = UInt32(NEURON_API_VERSION_MINOR)

    struct OpenFile {
        let device: Int
        let pid: Int32
        let command: String
        let sequence: Int
        var nextHandle: UInt32 = 0
        var live: [UInt32: (placement: NeuronMemoryPlacement, bytes: UInt64)] = [:]
        var deviceMemory: UInt64 = 0
        var hostMemory: UInt64 = 0
        var deviceMemoryPeak: UInt64 = 0
        var hostMemoryPeak: UInt64 = 0
    }

    struct State {
        var next = 0
        var files: [Int: OpenFile] = [:]
        var deviceUsed: [Int: UInt64] = [:]
    }

    private let state = Locked(State())
    private let deviceQueues = Locked<[Int: SimDeviceQueues]>([:])

    /// The queues of `device`, made on first use.
    func queues(device: Int, configuration: SimulatorBackend.Configuration) -> SimDeviceQueues {
        deviceQueues.withLock { all in
            if let queues = all[device] { return queues }
            let queues = SimDeviceQueues(device: device, coreCount: configuration.coresPerDevice,
                                         timeoutMilliseconds: configuration.jobTimeoutMilliseconds)
            all[device] = queues
            return queues
        }
    }

    func register(device: Int) -> Int {
        state.withLock { state in
            state.next += 1
            state.files[state.next] = OpenFile(device: device, pid: getpid(),
                                               command: SimulatorWorld.command, sequence: state.next)
            return state.next
        }
    }

    /// Closing a file frees every buffer it holds, as the driver does.
    func unregister(_ id: Int) {
        state.withLock { state in
            guard let file = state.files.removeValue(forKey: id) else { return }
            state.deviceUsed[file.device, default: 0] -= file.deviceMemory
        }
    }

    func memoryUsed(on device: Int) -> UInt64 {
        state.withLock { $0.deviceUsed[device, default: 0] }
    }

    /// Account a new buffer of `bytes` on `file`; its handle.
    func reserve(file id: Int, placement: NeuronMemoryPlacement, bytes: UInt64, requested: UInt64,
                 capacity: UInt64) throws(NeuronError) -> UInt32 {
        let result: Result<UInt32, NeuronError> = state.withLock { state in
            guard var file = state.files[id] else { return .failure(.bufferFreed) }
            let used = state.deviceUsed[file.device, default: 0]
            if placement == .device {
                guard bytes <= capacity - used else {
                    return .failure(.outOfDeviceMemory(device: file.device, requested: requested,
                                                       free: capacity - used, total: capacity))
                }
                state.deviceUsed[file.device] = used + bytes
                file.deviceMemory += bytes
                file.deviceMemoryPeak = max(file.deviceMemoryPeak, file.deviceMemory)
            } else {
                file.hostMemory += bytes
                file.hostMemoryPeak = max(file.hostMemoryPeak, file.hostMemory)
            }
            file.nextHandle += 1
            file.live[file.nextHandle] = (placement, bytes)
            state.files[id] = file
            return .success(file.nextHandle)
        }
        return try result.get()
    }

    func isLive(file id: Int, handle: UInt32) -> Bool {
        state.withLock { $0.files[id]?.live[handle] != nil }
    }

    func release(file id: Int, handle: UInt32) {
        state.withLock { state in
            guard var file = state.files[id], let buffer = file.live.removeValue(forKey: handle) else { return }
            if buffer.placement == .device {
                file.deviceMemory -= buffer.bytes
                state.deviceUsed[file.device, default: 0] -= buffer.bytes
            } else {
                file.hostMemory -= buffer.bytes
            }
            state.files[id] = file
        }
    }

    func processes(on device: Int) -> [NeuronProcessInfo] {
        let files = state.withLock { $0.files.values.filter { $0.device == device } }
        var result: [NeuronProcessInfo] = []
        for file in files.sorted(by: { $0.sequence < $1.sequence }) {
            if let existing = result.firstIndex(where: { $0.pid == file.pid }) {
                result[existing].openFiles += 1
                result[existing].deviceMemory += file.deviceMemory
                result[existing].hostMemory += file.hostMemory
            } else {
                result.append(NeuronProcessInfo(pid: file.pid, command: file.command, openFiles: 1,
                                                coresHeld: [], hostMemory: file.hostMemory,
                                                deviceMemory: file.deviceMemory))
            }
        }
        return result
    }

    /// This process's command name, as /proc/self/comm has it.
    static let command: String = {
        guard let fd = try? FileDescriptor.open("/proc/self/comm", .readOnly) else { return "" }
        defer { try? fd.close() }
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = (try? buffer.withUnsafeMutableBytes { try fd.read(into: $0) }) ?? 0
        return String(decoding: buffer.prefix(count).prefix { $0 != 0x0a }, as: UTF8.self)
    }()
}

/// An open simulated device; closes exactly once.
public final class SimulatedDevice: NeuronDeviceHandle {
    public let index: Int
    private let backend: SimulatorBackend
    private let file: Locked<Int?>

    init(backend: SimulatorBackend, index: Int) {
        self.backend = backend
        self.index = index
        self.file = Locked(backend.world.register(device: index))
    }

    deinit { close() }

    public func close() {
        let id = file.withLock { id -> Int? in
            defer { id = nil }
            return id
        }
        guard let id else { return }
        // As the driver's release: NeuronCores (aborting their jobs), then memory.
        queues.releaseAll(file: id)
        backend.world.unregister(id)
    }

    var queues: SimDeviceQueues {
        backend.world.queues(device: index, configuration: backend.configuration)
    }

    public func reserveCores(_ cores: [Int]) throws(NeuronError) {
        try queues.reserve(file: try openFile(), cores: cores)
    }

    public func releaseCores(_ cores: [Int]) throws(NeuronError) {
        try queues.release(file: try openFile(), cores: cores)
    }

    public func submit(_ request: NeuronJobRequest) throws(NeuronError) -> NeuronJob {
        try queues.submit(file: try openFile(), world: backend.world, request: request)
    }

    public func wait(for job: NeuronJob, timeout: Duration) throws(NeuronError) -> NeuronJobResult? {
        let id = try openFile()
        if timeout > .zero, let result = queues.runDeferred(file: id, job) { return result }
        return try queues.wait(file: id, for: job, timeout: timeout)
    }

    public func result(of job: NeuronJob) async throws(NeuronError) -> NeuronJobResult {
        let id = try openFile()
        let queues = self.queues
        if let result = queues.runDeferred(file: id, job) { return result }
        queues.pollIfAlone(file: id, job)
        let outcome = await withCheckedContinuation { (continuation: JobContinuation) in
            queues.await(file: id, job, continuation)
        }
        return try outcome.get()
    }

    public func queueInfo(core: Int) throws(NeuronError) -> NeuronQueueInfo {
        _ = try openFile()
        return try queues.info(core: core)
    }

    private func openFile() throws(NeuronError) -> Int {
        guard let id = file.withLock({ $0 }) else {
            throw .system(operation: "use of a closed device", errno: .badFileDescriptor)
        }
        return id
    }

    public func info() throws(NeuronError) -> NeuronDeviceInfo {
        _ = try openFile()
        var info = backend.info(of: index)
        info.memoryUsed = backend.world.memoryUsed(on: index)
        return info
    }

    public func processes() throws(NeuronError) -> [NeuronProcessInfo] {
        _ = try openFile()
        // Every simulated file belongs to this process: it holds every reserved core.
        let held = queues.heldCores()
        return backend.world.processes(on: index).map { entry in
            var entry = entry
            if entry.pid == getpid() { entry.coresHeld = held }
            return entry
        }
    }

    public func allocate(size: UInt64, placement: NeuronMemoryPlacement, core: Int?) throws(NeuronError) -> NeuronBuffer {
        let id = try openFile()
        guard size > 0 else { throw .invalidArgument("A buffer of 0 bytes cannot be allocated.") }
        if let core, !(0..<backend.configuration.coresPerDevice).contains(core) {
            throw .invalidArgument("NeuronCore \(core) does not exist on device \(index).")
        }
        let pageSize = UInt64(sysconf(Int32(_SC_PAGESIZE)))
        let capacity = UInt64(backend.configuration.memoryMiBPerDevice) << 20
        let hostLimit = UInt64(sysconf(Int32(_SC_PHYS_PAGES))) &* pageSize
        let limit = placement == .device ? capacity : hostLimit
        guard size <= limit else {
            throw .outOfDeviceMemory(device: index, requested: size,
                                     free: capacity - backend.world.memoryUsed(on: index), total: capacity)
        }
        let allocated = roundUpToPage(size)
        let handle = try backend.world.reserve(file: id, placement: placement, bytes: allocated,
                                               requested: size, capacity: capacity)
        // Address space only: pages are committed when first written. A page that
        // faults on any access follows the buffer, as in the driver's kernel mapping
        // (a vmalloc area ends at an unmapped guard page): an engine kernel that
        // reads or writes past a tensor's buffer crashes here as it would oops there.
        let address = mmap(nil, Int(allocated) + SimulatedBufferStorage.guardSize, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let address, address != MAP_FAILED else {
            backend.world.release(file: id, handle: handle)
            throw .system(operation: "mmap of \(allocated) bytes", errno: Errno(rawValue: errno))
        }
        guard mprotect(address + Int(allocated), SimulatedBufferStorage.guardSize, PROT_NONE) == 0 else {
            let error = Errno(rawValue: errno)
            munmap(address, Int(allocated) + SimulatedBufferStorage.guardSize)
            backend.world.release(file: id, handle: handle)
            throw .system(operation: "mprotect of a buffer's guard page", errno: error)
        }
        // Large buffers (weights, activations) in huge pages where the host allows them: the
        // engine sweeps them with long strides, which 4 KiB pages turn into TLB misses.
        if allocated >= 2 << 20 { _ = madvise(address, Int(allocated), MADV_HUGEPAGE) }
        let storage = SimulatedBufferStorage(world: backend.world, file: id, handle: handle,
                                             allocatedSize: allocated, base: address)
        return NeuronBuffer(size: size, placement: placement, core: core, deviceIndex: index, storage: storage)
    }
}

/// A simulated buffer: an anonymous mapping reserved without backing.
final class SimulatedBufferStorage: NeuronBufferStorage {
    let world: SimulatorWorld
    let file: Int
    let handle: UInt32
    let allocatedSize: UInt64
    nonisolated(unsafe) let base: UnsafeMutableRawPointer
    var deviceAddress: UInt64 { UInt64(handle) << 40 }
    /// Pages committed as the driver counts them: written by write or
    /// fill (a sparse bitmap, 64 pages a word), or any page once mapped
    /// (then mincore tells).
    private let committed = Locked<(words: [Int: UInt64], mapped: Bool)>(([:], false))
    private static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
    /// The inaccessible page mapped after every buffer.
    static let guardSize = pageSize

    private func markWritten(_ offset: UInt64, _ length: Int) {
        guard length > 0 else { return }
        let first = Int(offset) / Self.pageSize
        let last = (Int(offset) + length - 1) / Self.pageSize
        committed.withLock { state in
            for page in first...last { state.words[page >> 6, default: 0] |= 1 << UInt64(page & 63) }
        }
    }

    init(world: SimulatorWorld, file: Int, handle: UInt32, allocatedSize: UInt64, base: UnsafeMutableRawPointer) {
        self.world = world
        self.file = file
        self.handle = handle
        self.allocatedSize = allocatedSize
        self.base = base
    }

    private func checkLive() throws(NeuronError) {
        guard world.isLive(file: file, handle: handle) else { throw .bufferFreed }
    }

    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(NeuronError) {
        try checkLive()
        guard let source = bytes.baseAddress else { return }
        (base + Int(offset)).copyMemory(from: source, byteCount: bytes.count)
        markWritten(offset, bytes.count)
    }

    func read(into bytes: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(NeuronError) {
        try checkLive()
        guard let target = bytes.baseAddress else { return }
        target.copyMemory(from: base + Int(offset), byteCount: bytes.count)
    }

    func fill(_ value: UInt8, at offset: UInt64, length: UInt64) throws(NeuronError) {
        try checkLive()
        memset(base + Int(offset), Int32(value), Int(length))
        markWritten(offset, Int(length))
    }

    func mapping() throws(NeuronError) -> UnsafeMutableRawPointer {
        try checkLive()
        committed.withLock { $0.mapped = true }
        return base
    }

    func residentBytes() throws(NeuronError) -> UInt64 {
        try checkLive()
        let (words, mapped) = committed.withLock { ($0.words, $0.mapped) }
        var pages = words.values.reduce(0) { $0 + $1.nonzeroBitCount }
        if mapped {
            var vector = [UInt8](repeating: 0, count: Int(allocatedSize) / Self.pageSize)
            guard mincore(base, Int(allocatedSize), &vector) == 0 else {
                throw .system(operation: "mincore", errno: Errno(rawValue: errno))
            }
            pages = vector.indices.reduce(0) { count, page in
                let written = (words[page >> 6] ?? 0) & (1 << UInt64(page & 63)) != 0
                return count + (written || vector[page] & 1 != 0 ? 1 : 0)
            }
        }
        return UInt64(pages * Self.pageSize)
    }

    func release() {
        munmap(base, Int(allocatedSize) + Self.guardSize)
        world.release(file: file, handle: handle)
    }
}
