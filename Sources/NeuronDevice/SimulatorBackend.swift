import Synchronization
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
    public struct Configuration: Sendable, Equatable {
        public var devices: Int
        public var coresPerDevice: Int
        public var memoryMiBPerDevice: Int

        /// The driver's limits, so the simulator refuses what the module would.
        public static let deviceRange = 0...16
        public static let coreRange = 1...8
        public static let memoryRange = 1...1_048_576

        public init(devices: Int = 1, coresPerDevice: Int = 4, memoryMiBPerDevice: Int = 8192) throws(NeuronError) {
            guard Self.deviceRange.contains(devices) else {
                throw .invalidConfiguration("NEURON_SIM_DEVICES=\(devices) is out of range; expected \(Self.deviceRange.lowerBound)...\(Self.deviceRange.upperBound).")
            }
            guard Self.coreRange.contains(coresPerDevice) else {
                throw .invalidConfiguration("NEURON_SIM_CORES=\(coresPerDevice) is out of range; expected \(Self.coreRange.lowerBound)...\(Self.coreRange.upperBound).")
            }
            guard Self.memoryRange.contains(memoryMiBPerDevice) else {
                throw .invalidConfiguration("NEURON_SIM_MEMORY_MB=\(memoryMiBPerDevice) is out of range; expected \(Self.memoryRange.lowerBound)...\(Self.memoryRange.upperBound).")
            }
            self.devices = devices
            self.coresPerDevice = coresPerDevice
            self.memoryMiBPerDevice = memoryMiBPerDevice
        }

        /// From NEURON_SIM_DEVICES, NEURON_SIM_CORES and NEURON_SIM_MEMORY_MB.
        public static func fromEnvironment(_ environment: [String: String]) throws(NeuronError) -> Configuration {
            func value(_ key: String, _ fallback: Int) throws(NeuronError) -> Int {
                guard let text = environment[key], !text.isEmpty else { return fallback }
                guard let number = Int(text) else {
                    throw .invalidConfiguration("\(key)=\(text) is not a whole number.")
                }
                return number
            }
            return try Configuration(devices: value("NEURON_SIM_DEVICES", 1),
                                     coresPerDevice: value("NEURON_SIM_CORES", 4),
                                     memoryMiBPerDevice: value("NEURON_SIM_MEMORY_MB", 8192))
        }
    }

    public let name = "sim"
    public let configuration: Configuration
    let world: SimulatorWorld

    public init(configuration: Configuration) {
        self.configuration = configuration
        self.world = SimulatorWorld()
    }

    public func driverInfo() throws(NeuronError) -> NeuronDriverInfo {
        guard configuration.devices > 0 else { throw .noDevices }
        return NeuronDriverInfo(apiMajor: KernelBackend.supportedAPIMajor,
                                apiMinor: SimulatorWorld.apiMinor,
                                deviceCount: configuration.devices, version: "sim")
    }

    public func open(device index: Int) throws(NeuronError) -> any NeuronDevice {
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
            jobTimeoutMilliseconds: 10_000)
    }
}

/// Shared state of one simulator instance: which files are open.
final class SimulatorWorld: Sendable {
    static let apiMinor: UInt32 = 0
    struct OpenFile { let id: Int; let device: Int; let pid: Int32; let command: String; let sequence: Int }
    private let state = Mutex<(next: Int, files: [OpenFile])>((0, []))

    func register(device: Int) -> Int {
        state.withLock { state in
            state.next += 1
            state.files.append(OpenFile(id: state.next, device: device, pid: getpid(),
                                        command: SimulatorWorld.command, sequence: state.next))
            return state.next
        }
    }

    func unregister(_ id: Int) {
        state.withLock { $0.files.removeAll { $0.id == id } }
    }

    func processes(on device: Int) -> [NeuronProcessInfo] {
        let files = state.withLock { $0.files.filter { $0.device == device } }
        var result: [NeuronProcessInfo] = []
        for file in files.sorted(by: { $0.sequence < $1.sequence }) {
            if let existing = result.firstIndex(where: { $0.pid == file.pid }) {
                result[existing].openFiles += 1
            } else {
                result.append(NeuronProcessInfo(pid: file.pid, command: file.command, openFiles: 1,
                                                coresHeld: [], hostMemory: 0, deviceMemory: 0))
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
public final class SimulatedDevice: NeuronDevice {
    public let index: Int
    private let backend: SimulatorBackend
    private let file: Mutex<Int?>

    init(backend: SimulatorBackend, index: Int) {
        self.backend = backend
        self.index = index
        self.file = Mutex(backend.world.register(device: index))
    }

    deinit { close() }

    public func close() {
        let id = file.withLock { id -> Int? in
            defer { id = nil }
            return id
        }
        if let id { backend.world.unregister(id) }
    }

    private func checkOpen() throws(NeuronError) {
        if file.withLock({ $0 }) == nil {
            throw .system(operation: "use of a closed device", errno: .badFileDescriptor)
        }
    }

    public func info() throws(NeuronError) -> NeuronDeviceInfo {
        try checkOpen()
        return backend.info(of: index)
    }

    public func processes() throws(NeuronError) -> [NeuronProcessInfo] {
        try checkOpen()
        return backend.world.processes(on: index)
    }
}
