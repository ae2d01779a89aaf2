import CLibudev
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A neuron_device as udev sees it.
public struct NeuronUdevRecord: Sendable, Equatable {
    /// "neuron0", ...
    public var sysname: String
    /// "/dev/neuron0", or nil when udev has not made the node.
    public var devnode: String?
    public var syspath: String
    /// N of neuronN.
    public var index: Int? {
        sysname.hasPrefix("neuron") ? Int(sysname.dropFirst("neuron".count)) : nil
    }
}

/// What happened to a device.
public struct NeuronHotplugEvent: Sendable, Equatable {
    public enum Action: String, Sendable {
        case added = "add", removed = "remove", changed = "change", other
    }
    public var action: Action
    public var device: NeuronUdevRecord
}

/// Discovery through libudev: the neuron_device class.
public enum NeuronUdev {
    static let subsystem = "neuron_device"

    /// Every neuron device udev knows, in no particular order.
    public static func enumerate() throws(NeuronError) -> [NeuronUdevRecord] {
        guard let udev = udev_new() else {
            throw .system(operation: "udev_new", errno: .noMemory)
        }
        defer { udev_unref(udev) }
        guard let enumerator = udev_enumerate_new(udev) else {
            throw .system(operation: "udev_enumerate_new", errno: .noMemory)
        }
        defer { udev_enumerate_unref(enumerator) }
        udev_enumerate_add_match_subsystem(enumerator, subsystem)
        let status = udev_enumerate_scan_devices(enumerator)
        if status < 0 {
            throw .system(operation: "udev_enumerate_scan_devices", errno: .init(rawValue: -status))
        }
        var records: [NeuronUdevRecord] = []
        var entry = udev_enumerate_get_list_entry(enumerator)
        while let current = entry {
            if let path = udev_list_entry_get_name(current),
               let device = udev_device_new_from_syspath(udev, path) {
                records.append(record(device))
                udev_device_unref(device)
            }
            entry = udev_list_entry_get_next(current)
        }
        return records
    }

    static func record(_ device: OpaquePointer) -> NeuronUdevRecord {
        NeuronUdevRecord(
            sysname: udev_device_get_sysname(device).map { String(cString: $0) } ?? "",
            devnode: udev_device_get_devnode(device).map { String(cString: $0) },
            syspath: udev_device_get_syspath(device).map { String(cString: $0) } ?? "")
    }

    /// Devices added, removed or changed from now on, as udev announces
    /// them (after its rules ran, so nodes and links exist). Ends when the
    /// consumer stops iterating.
    public static func hotplugEvents() throws(NeuronError) -> AsyncStream<NeuronHotplugEvent> {
        let monitor = try UdevMonitor()
        return AsyncStream { continuation in
            let thread = UdevMonitorThread(monitor: monitor, continuation: continuation)
            continuation.onTermination = { _ in thread.stop() }
            thread.start()
        }
    }
}

/// A libudev monitor of the neuron_device class. Confined to one thread
/// after creation.
final class UdevMonitor: @unchecked Sendable {
    let udev: OpaquePointer
    let monitor: OpaquePointer
    let fd: Int32

    init() throws(NeuronError) {
        guard let udev = udev_new() else { throw .system(operation: "udev_new", errno: .noMemory) }
        guard let monitor = udev_monitor_new_from_netlink(udev, "udev") else {
            udev_unref(udev)
            throw .system(operation: "udev_monitor_new_from_netlink", errno: .init(rawValue: errno))
        }
        udev_monitor_filter_add_match_subsystem_devtype(monitor, NeuronUdev.subsystem, nil)
        let status = udev_monitor_enable_receiving(monitor)
        guard status >= 0 else {
            udev_monitor_unref(monitor)
            udev_unref(udev)
            throw .system(operation: "udev_monitor_enable_receiving", errno: .init(rawValue: -status))
        }
        self.udev = udev
        self.monitor = monitor
        self.fd = udev_monitor_get_fd(monitor)
    }

    deinit {
        udev_monitor_unref(monitor)
        udev_unref(udev)
    }

    func receive() -> NeuronHotplugEvent? {
        guard let device = udev_monitor_receive_device(monitor) else { return nil }
        defer { udev_device_unref(device) }
        let action = udev_device_get_action(device).map { String(cString: $0) } ?? ""
        return NeuronHotplugEvent(action: .init(rawValue: action) ?? .other,
                                  device: NeuronUdev.record(device))
    }
}

/// Polls a monitor on a thread of its own (never a concurrency-pool
/// thread) and feeds the stream; stops within 100 ms of `stop()`.
final class UdevMonitorThread: Sendable {
    let monitor: UdevMonitor
    let continuation: AsyncStream<NeuronHotplugEvent>.Continuation
    let stopped = Atomic<Bool>(false)

    init(monitor: UdevMonitor, continuation: AsyncStream<NeuronHotplugEvent>.Continuation) {
        self.monitor = monitor
        self.continuation = continuation
    }

    func stop() { stopped.store(true, ordering: .relaxed) }

    func start() {
        if startDetachedThread({ self.run() }) != 0 { continuation.finish() }
    }

    private func run() {
        while !stopped.load(ordering: .relaxed) {
            var pfd = pollfd(fd: monitor.fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, 100)
            if ready < 0 && errno != EINTR { break }
            if ready > 0, let event = monitor.receive() {
                continuation.yield(event)
            }
        }
        continuation.finish()
    }
}
