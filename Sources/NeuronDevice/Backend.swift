#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An open device: the kernel's /dev/neuronN or a simulated one. It holds
/// what it opened until `close()` or until the last reference goes away,
/// exactly once either way.
public protocol NeuronDeviceHandle: AnyObject, Sendable {
    var index: Int { get }
    /// DEVICE_INFO.
    func info() throws(NeuronError) -> NeuronDeviceInfo
    /// PROCESS_LIST: the processes that hold this device open.
    func processes() throws(NeuronError) -> [NeuronProcessInfo]
    /// Allocate `size` bytes of memory on this device, zero until written.
    /// `core` is the NeuronCore the buffer is meant for, or nil.
    func allocate(size: UInt64, placement: NeuronMemoryPlacement, core: Int?) throws(NeuronError) -> NeuronBuffer
    /// Release the device now, and every buffer allocated through it that
    /// is not in use (later uses fail with `.bufferFreed`). Idempotent.
    func close()

    /// CORE_RESERVE: all of `cores` or none; `.coresBusy` names the holder.
    func reserveCores(_ cores: [Int]) throws(NeuronError)
    /// CORE_RELEASE: their queued jobs end `.aborted` first.
    func releaseCores(_ cores: [Int]) throws(NeuronError)
    /// JOB_SUBMIT: validate and queue; returns the job.
    func submit(_ request: NeuronJobRequest) throws(NeuronError) -> NeuronJob
    /// JOB_WAIT: block up to `timeout`; nil when the job has not ended.
    func wait(for job: NeuronJob, timeout: Duration) throws(NeuronError) -> NeuronJobResult?
    /// The job's result, awaited without blocking a thread or spinning.
    func result(of job: NeuronJob) async throws(NeuronError) -> NeuronJobResult
    /// QUEUE_INFO of one NeuronCore.
    func queueInfo(core: Int) throws(NeuronError) -> NeuronQueueInfo
}

/// A source of devices: the kernel driver or the in-process simulator.
public protocol NeuronBackend: Sendable {
    /// "kernel" or "sim".
    var name: String { get }
    /// DRIVER_INFO (the simulator reports its own version).
    func driverInfo() throws(NeuronError) -> NeuronDriverInfo
    /// Open device `index` (0-based, /dev/neuronN for the kernel).
    func open(device index: Int) throws(NeuronError) -> any NeuronDeviceHandle
}

extension NeuronDeviceHandle {
    /// Device memory for any NeuronCore.
    public func allocate(size: UInt64) throws(NeuronError) -> NeuronBuffer {
        try allocate(size: size, placement: .device, core: nil)
    }
}

extension NeuronBackend {
    /// Every device's DEVICE_INFO, in index order. Fails with `.noDevices`
    /// when there are none.
    public func devices() throws(NeuronError) -> [NeuronDeviceInfo] {
        let count = try driverInfo().deviceCount
        guard count > 0 else { throw .noDevices }
        var result: [NeuronDeviceInfo] = []
        for index in 0..<count {
            let device = try open(device: index)
            defer { device.close() }
            result.append(try device.info())
        }
        return result
    }
}

/// Chooses the backend from the environment:
/// - `NEURON_BACKEND=kernel` (the default): the kernel driver, /dev/neuronN;
/// - `NEURON_BACKEND=sim`: the in-process simulator, sized by
///   `NEURON_SIM_DEVICES` (default 1), `NEURON_SIM_CORES` (default 4) and
///   `NEURON_SIM_MEMORY_MB` (default 8192).
/// Without a driver and without `NEURON_BACKEND`, opening a device fails
/// with `.driverNotLoaded`; there is never a silent fall-back to simulation.
public enum NeuronBackendSelection {
    public static func fromEnvironment(
        _ environment: [String: String] = NeuronBackendSelection.processEnvironment()
    ) throws(NeuronError) -> any NeuronBackend {
        switch environment["NEURON_BACKEND"] ?? "kernel" {
        case "kernel", "":
            return KernelBackend()
        case "sim", "simulator":
            return try SimulatorBackend(configuration: .fromEnvironment(environment))
        case let other:
            throw .invalidConfiguration(
                "NEURON_BACKEND=\(other) is not a backend; use NEURON_BACKEND=kernel (the driver) or NEURON_BACKEND=sim (the in-process simulator).")
        }
    }

    /// The process's environment, read with getenv's table.
    public static func processEnvironment() -> [String: String] {
        var result: [String: String] = [:]
        var entry = environ
        while let pointer = entry.pointee {
            let pair = String(cString: pointer)
            if let equals = pair.firstIndex(of: "=") {
                result[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
            }
            entry += 1
        }
        return result
    }
}
