/// Where a device's NeuronCores come from.
public enum NeuronPlatform: String, Sendable, Codable {
    /// Software-backed NeuronCores in the kernel driver (fake mode).
    case fake
    /// An Inferentia (Inf1) PCI device.
    case inf1
    /// The in-process simulator (`NEURON_BACKEND=sim`).
    case simulator = "sim"
}

/// What DRIVER_INFO reports.
public struct NeuronDriverInfo: Sendable, Equatable {
    public var apiMajor: UInt32
    public var apiMinor: UInt32
    public var deviceCount: Int
    public var version: String

    public init(apiMajor: UInt32, apiMinor: UInt32, deviceCount: Int, version: String) {
        self.apiMajor = apiMajor
        self.apiMinor = apiMinor
        self.deviceCount = deviceCount
        self.version = version
    }
}

/// One device, as DEVICE_INFO describes it.
public struct NeuronDeviceInfo: Sendable, Equatable {
    public var index: Int
    public var platform: NeuronPlatform
    public var coreCount: Int
    public var memorySize: UInt64
    public var memoryUsed: UInt64
    /// nil when the device has no NUMA affinity.
    public var numaNode: Int?
    /// Indices of the devices this one links to.
    public var connectedTo: [Int]
    public var serial: String
    /// nil for fake and simulated devices.
    public var pciBDF: String?
    public var jobTimeoutMilliseconds: UInt32

    public init(index: Int, platform: NeuronPlatform, coreCount: Int, memorySize: UInt64,
                memoryUsed: UInt64, numaNode: Int?, connectedTo: [Int], serial: String,
                pciBDF: String?, jobTimeoutMilliseconds: UInt32) {
        self.index = index
        self.platform = platform
        self.coreCount = coreCount
        self.memorySize = memorySize
        self.memoryUsed = memoryUsed
        self.numaNode = numaNode
        self.connectedTo = connectedTo
        self.serial = serial
        self.pciBDF = pciBDF
        self.jobTimeoutMilliseconds = jobTimeoutMilliseconds
    }
}

/// One process attached to a device.
public struct NeuronProcessInfo: Sendable, Equatable {
    /// The process id, or 0 for files of no visible live process (not in
    /// the caller's PID namespace, a descriptor in flight over a socket,
    /// or only mappings left).
    public var pid: Int32
    public var command: String
    public var openFiles: Int
    /// Indices (within the device) of the NeuronCores the process holds.
    public var coresHeld: [Int]
    public var hostMemory: UInt64
    public var deviceMemory: UInt64

    public init(pid: Int32, command: String, openFiles: Int, coresHeld: [Int],
                hostMemory: UInt64, deviceMemory: UInt64) {
        self.pid = pid
        self.command = command
        self.openFiles = openFiles
        self.coresHeld = coresHeld
        self.hostMemory = hostMemory
        self.deviceMemory = deviceMemory
    }
}

/// The ring in which devices are linked, as on Inf1 and in the driver's
/// fake mode: device i links to i-1 and i+1, modulo the count.
public func neuronRingNeighbours(of index: Int, count: Int) -> [Int] {
    guard count > 1 else { return [] }
    let previous = (index + count - 1) % count
    let next = (index + 1) % count
    return previous == next ? [previous] : [previous, next]
}

/// The serial of fake device `ordinal`: the driver's formula
/// (driver/neuron_fake.c), so simulated and fake devices agree.
public func neuronFakeSerial(ordinal: Int) -> String {
    var z: UInt64 = 0x6e65_7572_6f6e_0000 &+ UInt64(ordinal)
    z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
    z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
    z ^= z >> 31
    let hex = String(z & 0xffff_ffff_ffff, radix: 16)
    return "FAKE" + String(repeating: "0", count: 12 - hex.count) + hex
}
