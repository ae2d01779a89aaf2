import NeuronCLI
import NeuronDevice

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

let selfPID = getpid()

/// What neuron-ls reports of one device; its JSON keys are those of AWS's
/// neuron-ls (`neuron_device`, `bdf`, `connected_to`, `nc_count`,
/// `memory_size`, `neuroncore_ids`, `numa_node`, `neuron_processes`), plus
/// `platform`, `serial` and `memory_used`.
public struct DeviceListing: Codable, Sendable, Equatable {
    public struct Process: Codable, Sendable, Equatable {
        public var pid: Int32
        public var command: String
        public var neuroncore_ids: [Int]
        public var memory_used: UInt64
        public var host_memory_used: UInt64
        public var open_files: Int
    }

    public var neuron_device: Int
    public var platform: String
    public var serial: String
    public var bdf: String
    public var connected_to: [Int]
    public var nc_count: Int
    public var memory_size: UInt64
    public var memory_used: UInt64
    public var neuroncore_ids: [Int]
    public var numa_node: Int
    public var neuron_processes: [Process]

    /// `firstCoreID` is the global ID of the device's first NeuronCore:
    /// cores are numbered across devices in index order, as AWS's tools do.
    public init(info: NeuronDeviceInfo, firstCoreID: Int, processes: [NeuronProcessInfo]) {
        neuron_device = info.index
        platform = info.platform.rawValue
        serial = info.serial
        bdf = info.pciBDF ?? ""
        connected_to = info.connectedTo
        nc_count = info.coreCount
        memory_size = info.memorySize
        memory_used = info.memoryUsed
        neuroncore_ids = Array(firstCoreID..<(firstCoreID + info.coreCount))
        numa_node = info.numaNode ?? -1
        neuron_processes = processes.map {
            Process(pid: $0.pid, command: $0.command,
                    neuroncore_ids: $0.coresHeld.map { firstCoreID + $0 },
                    memory_used: $0.deviceMemory, host_memory_used: $0.hostMemory,
                    open_files: $0.openFiles)
        }
    }

    /// Read every device of `backend`, with the processes using each.
    public static func collect(from backend: any NeuronBackend) throws(NeuronError) -> [DeviceListing] {
        let count = try backend.driverInfo().deviceCount
        var listings: [DeviceListing] = []
        var nextCore = 0
        for index in 0..<count {
            let device = try backend.open(device: index)
            defer { device.close() }
            let info = try device.info()
            // Our own file is on the list while we ask; leave it out.
            let processes = try device.processes().compactMap { process -> NeuronProcessInfo? in
                guard process.pid == selfPID else { return process }
                var others = process
                others.openFiles -= 1
                return others.openFiles > 0 ? others : nil
            }
            listings.append(DeviceListing(info: info, firstCoreID: nextCore, processes: processes))
            nextCore += info.coreCount
        }
        return listings
    }
}
