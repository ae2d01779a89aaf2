import CNeuronUAPI
import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The kernel driver: devices are /dev/neuronN, found through udev.
public struct KernelBackend: NeuronBackend {
    public let name = "kernel"
    /// The API major version this library speaks.
    public static let supportedAPIMajor = UInt32(NEURON_API_VERSION_MAJOR)

    public init() {}

    /// True when neuron.ko is loaded.
    public static var isDriverLoaded: Bool {
        access("/sys/module/neuron", F_OK) == 0
    }

    public func driverInfo() throws(NeuronError) -> NeuronDriverInfo {
        let nodes = try deviceNodes()
        guard let first = nodes.first else { throw .noDevices }
        let device = try KernelDevice.open(path: first.path, index: first.index, deviceCount: nodes.count)
        defer { device.close() }
        return try device.driverInfo()
    }

    public func open(device index: Int) throws(NeuronError) -> any NeuronDeviceHandle {
        let nodes = try deviceNodes()
        guard let node = nodes.first(where: { $0.index == index }) else {
            throw .deviceNotFound(index: index, deviceCount: nodes.count)
        }
        return try KernelDevice.open(path: node.path, index: index, deviceCount: nodes.count)
    }

    /// The device nodes, in index order, from udev's view of the
    /// neuron_device class.
    func deviceNodes() throws(NeuronError) -> [(index: Int, path: String)] {
        guard Self.isDriverLoaded else { throw .driverNotLoaded }
        return try NeuronUdev.enumerate().compactMap { record in
            guard let index = record.index else { return nil }
            return (index, record.devnode ?? "/dev/\(record.sysname)")
        }.sorted { $0.index < $1.index }
    }
}

/// An open /dev/neuronN. Closes its descriptor exactly once: on `close()`
/// or when the last reference goes away.
public final class KernelDevice: NeuronDeviceHandle {
    public let index: Int
    public let path: String
    /// The descriptor and the calls using it: close(2) waits until the
    /// last call in flight (a blocking JOB_WAIT, a poll) returns, so that
    /// no call ever reaches a descriptor number reused meanwhile.
    private struct Descriptor {
        var fd: FileDescriptor?
        var users = 0
        var closing = false
    }
    private let descriptor: Locked<Descriptor>
    /// Delivers job completions to `result(of:)` (KernelQueue.swift).
    let completions: KernelCompletions

    private init(fd: FileDescriptor, path: String, index: Int) {
        self.descriptor = Locked(Descriptor(fd: fd))
        self.path = path
        self.index = index
        self.completions = KernelCompletions()
    }

    deinit {
        close()
    }

    /// Open `path` and check that the driver speaks our API.
    public static func open(path: String, index: Int, deviceCount: Int) throws(NeuronError) -> KernelDevice {
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(FilePath(path), .readWrite, options: [.closeOnExec],
                                         retryOnInterrupt: true)
        } catch let errno as Errno {
            switch errno {
            case .noSuchFileOrDirectory, .noSuchAddressOrDevice, .operationNotSupportedByDevice:
                throw KernelBackend.isDriverLoaded
                    ? .deviceNotFound(index: index, deviceCount: deviceCount) : .driverNotLoaded
            case .permissionDenied, .notPermitted:
                throw .permissionDenied(path: path)
            default:
                throw .system(operation: "open \(path)", errno: errno)
            }
        } catch {
            throw .system(operation: "open \(path)", errno: .ioError)
        }
        let device = KernelDevice(fd: fd, path: path, index: index)
        let info = try device.driverInfo()
        guard info.apiMajor == KernelBackend.supportedAPIMajor else {
            throw .apiVersionMismatch(driverMajor: info.apiMajor, driverMinor: info.apiMinor,
                                      supportedMajor: KernelBackend.supportedAPIMajor)
        }
        return device
    }

    public func close() {
        let toClose: FileDescriptor? = descriptor.withLock { state in
            guard state.fd != nil, !state.closing else { return nil }
            state.closing = true
            guard state.users == 0 else { return nil }
            defer { state.fd = nil }
            return state.fd
        }
        completions.stop()
        // close(2) is not retried on EINTR on Linux: the descriptor is gone.
        try? toClose?.close()
    }

    /// Run `body` with the open descriptor, or return nil when closed.
    func withDescriptor<R>(_ body: (FileDescriptor) -> R) -> R? {
        guard let fd = descriptor.withLock({ state -> FileDescriptor? in
            guard let fd = state.fd, !state.closing else { return nil }
            state.users += 1
            return fd
        }) else { return nil }
        defer {
            let toClose: FileDescriptor? = descriptor.withLock { state in
                state.users -= 1
                guard state.closing, state.users == 0 else { return nil }
                defer { state.fd = nil }
                return state.fd
            }
            try? toClose?.close()
        }
        return body(fd)
    }

    /// Issue one ioctl, retrying on EINTR.
    func ioctl<Argument>(_ request: NeuronRequest<Argument>, _ argument: inout Argument) throws(NeuronError) {
        let failure: Errno? = withUnsafeMutablePointer(to: &argument) { pointer in
            withDescriptor { fd -> Errno? in
                while true {
                    if neuron_ioctl(fd.rawValue, request.code, pointer) >= 0 { return nil }
                    let error = Errno(rawValue: errno)
                    if error != .interrupted { return error }
                }
            } ?? .badFileDescriptor
        }
        if let failure {
            throw .system(operation: "NEURON_IOCTL_\(request.name) on \(path)", errno: failure)
        }
    }

    /// mmap `length` bytes at `offset` of this file, shared and writable.
    /// Throws `.bufferFreed` when the device is closed or has no such buffer.
    func map(length: UInt64, offset: UInt64) throws(NeuronError) -> UnsafeMutableRawPointer {
        let result: Result<UInt, Errno> = withDescriptor { fd in
            guard let pointer = neuron_mmap(fd.rawValue, length, offset) else {
                return .failure(Errno(rawValue: errno))
            }
            return .success(UInt(bitPattern: pointer))
        } ?? .failure(.badFileDescriptor)
        switch result {
        case .success(let address):
            guard let pointer = UnsafeMutableRawPointer(bitPattern: address) else { throw .bufferFreed }
            return pointer
        case .failure(let error) where error == .badFileDescriptor || error == .invalidArgument:
            throw .bufferFreed
        case .failure(let error):
            throw .system(operation: "mmap of \(length) bytes at offset \(offset) of \(path)", errno: error)
        }
    }

    public func allocate(size: UInt64, placement: NeuronMemoryPlacement, core: Int?) throws(NeuronError) -> NeuronBuffer {
        if let core, core < 0 || core > Int(UInt32.max - 1) {
            throw .invalidArgument("NeuronCore \(core) does not exist on device \(index).")
        }
        var request = neuron_mem_alloc()
        request.size = size
        request.placement = placement.rawValue
        request.core = core.map { UInt32($0) } ?? NEURON_CORE_ANY
        do {
            try ioctl(NeuronRequests.memAlloc, &request)
        } catch {
            guard case .system(_, let errno) = error else { throw error }
            switch errno {
            case .noMemory:
                let info = try self.info()
                throw .outOfDeviceMemory(device: index, requested: size,
                                         free: info.memorySize - info.memoryUsed, total: info.memorySize)
            case .invalidArgument:
                throw .invalidArgument(size == 0
                    ? "A buffer of 0 bytes cannot be allocated."
                    : "Device \(index) refused the allocation (size \(size), placement \(placement), core \(core.map(String.init) ?? "any")).")
            default:
                throw error
            }
        }
        let storage = KernelBufferStorage(device: self, handle: request.handle,
                                          allocatedSize: roundUpToPage(size),
                                          deviceAddress: request.device_addr,
                                          mmapOffset: request.mmap_offset)
        return NeuronBuffer(size: size, placement: placement, core: core, deviceIndex: index, storage: storage)
    }

    /// NEURON_IOCTL_DRIVER_INFO.
    public func driverInfo() throws(NeuronError) -> NeuronDriverInfo {
        var raw = neuron_driver_info()
        try ioctl(NeuronRequests.driverInfo, &raw)
        return NeuronDriverInfo(apiMajor: raw.api_major, apiMinor: raw.api_minor,
                                deviceCount: Int(raw.device_count),
                                version: stringFromCArray(raw.version))
    }

    /// NEURON_IOCTL_DEVICE_INFO.
    public func info() throws(NeuronError) -> NeuronDeviceInfo {
        var raw = neuron_device_info()
        try ioctl(NeuronRequests.deviceInfo, &raw)
        let platform: NeuronPlatform = raw.platform == NEURON_PLATFORM_INF1.rawValue ? .inf1 : .fake
        let links = arrayFromCArray(raw.connected, of: UInt32.self)
            .prefix(Int(min(raw.connected_count, UInt32(NEURON_MAX_CONNECTED))))
        let bdf = stringFromCArray(raw.pci_bdf)
        return NeuronDeviceInfo(
            index: Int(raw.index), platform: platform, coreCount: Int(raw.core_count),
            memorySize: raw.memory_size, memoryUsed: raw.memory_used,
            numaNode: raw.numa_node < 0 ? nil : Int(raw.numa_node),
            connectedTo: links.map { Int($0) }, serial: stringFromCArray(raw.serial),
            pciBDF: bdf.isEmpty ? nil : bdf, jobTimeoutMilliseconds: raw.job_timeout_ms)
    }

    /// NEURON_IOCTL_PROCESS_LIST, sized with a first call for the count.
    public func processes() throws(NeuronError) -> [NeuronProcessInfo] {
        var capacity: UInt32 = 16
        while true {
            var entries = [neuron_process_info](repeating: neuron_process_info(), count: Int(capacity))
            var request = neuron_process_list()
            request.entry_size = UInt32(MemoryLayout<neuron_process_info>.stride)
            request.capacity = capacity
            let count: UInt32 = try entries.withUnsafeMutableBufferPointer { buffer throws(NeuronError) in
                request.entries = UInt64(UInt(bitPattern: buffer.baseAddress))
                try ioctl(NeuronRequests.processList, &request)
                return request.count
            }
            if count > capacity {
                capacity = count + 8
                continue
            }
            return entries.prefix(Int(count)).map { entry in
                NeuronProcessInfo(
                    pid: entry.pid, command: stringFromCArray(entry.command),
                    openFiles: Int(entry.open_files),
                    coresHeld: coreList(ofMask: entry.cores_held),
                    hostMemory: entry.host_memory, deviceMemory: entry.device_memory)
            }
        }
    }
}

/// A buffer of a /dev/neuronN file: ioctls by handle, one lazy mapping.
final class KernelBufferStorage: NeuronBufferStorage {
    let device: KernelDevice
    let handle: UInt32
    let allocatedSize: UInt64
    let deviceAddress: UInt64
    let mmapOffset: UInt64
    /// The mapping's address, once mapped.
    private let mapped = Locked<UInt?>(nil)

    init(device: KernelDevice, handle: UInt32, allocatedSize: UInt64, deviceAddress: UInt64, mmapOffset: UInt64) {
        self.device = device
        self.handle = handle
        self.allocatedSize = allocatedSize
        self.deviceAddress = deviceAddress
        self.mmapOffset = mmapOffset
    }

    /// A freed handle (ENOENT) or a closed device (EBADF) is a freed buffer.
    private func run<Argument>(_ request: NeuronRequest<Argument>, _ argument: inout Argument) throws(NeuronError) {
        do {
            try device.ioctl(request, &argument)
        } catch {
            if case .system(_, let errno) = error, errno == .noSuchFileOrDirectory || errno == .badFileDescriptor {
                throw .bufferFreed
            }
            throw error
        }
    }

    private func copy(_ request: NeuronRequest<neuron_mem_copy>, _ address: UnsafeRawPointer?, _ count: Int,
                      at offset: UInt64) throws(NeuronError) {
        var copy = neuron_mem_copy()
        copy.handle = handle
        copy.offset = offset
        copy.length = UInt64(count)
        copy.user_addr = UInt64(UInt(bitPattern: address))
        try run(request, &copy)
    }

    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(NeuronError) {
        try copy(NeuronRequests.memWrite, bytes.baseAddress, bytes.count, at: offset)
    }

    func read(into bytes: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(NeuronError) {
        try copy(NeuronRequests.memRead, bytes.baseAddress, bytes.count, at: offset)
    }

    func fill(_ value: UInt8, at offset: UInt64, length: UInt64) throws(NeuronError) {
        var request = neuron_mem_set()
        request.handle = handle
        request.offset = offset
        request.length = length
        request.value = UInt32(value)
        try run(NeuronRequests.memSet, &request)
    }

    func mapping() throws(NeuronError) -> UnsafeMutableRawPointer {
        let result: Result<UInt, NeuronError> = mapped.withLock { mapped in
            if let mapped { return .success(mapped) }
            do throws(NeuronError) {
                let pointer = try device.map(length: allocatedSize, offset: mmapOffset)
                mapped = UInt(bitPattern: pointer)
                return .success(UInt(bitPattern: pointer))
            } catch {
                return .failure(error)
            }
        }
        guard let pointer = UnsafeMutableRawPointer(bitPattern: try result.get()) else { throw .bufferFreed }
        return pointer
    }

    func residentBytes() throws(NeuronError) -> UInt64 {
        var info = neuron_mem_info()
        info.handle = handle
        try run(NeuronRequests.memInfo, &info)
        return info.resident_bytes
    }

    func release() {
        if let address = mapped.withLock({ $0.take() }), let pointer = UnsafeMutableRawPointer(bitPattern: address) {
            munmap(pointer, Int(allocatedSize))
        }
        var request = neuron_mem_free()
        request.handle = handle
        // A closed device has freed its buffers already.
        try? device.ioctl(NeuronRequests.memFree, &request)
    }
}

/// `size` rounded up to the page size, as the driver allocates.
func roundUpToPage(_ size: UInt64) -> UInt64 {
    let page = UInt64(sysconf(Int32(_SC_PAGESIZE)))
    return (size + page - 1) / page * page
}
