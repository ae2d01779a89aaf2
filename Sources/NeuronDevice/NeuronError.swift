import SystemPackage

/// Everything the device layer can fail with. Each case says what went
/// wrong and what to do about it (`description`).
public enum NeuronError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The kernel driver is not loaded (no /sys/module/neuron).
    case driverNotLoaded
    /// The driver is loaded but manages no devices.
    case noDevices
    /// The device node exists but the caller may not open it.
    case permissionDenied(path: String)
    /// The driver speaks an API major version this library does not.
    case apiVersionMismatch(driverMajor: UInt32, driverMinor: UInt32, supportedMajor: UInt32)
    /// No device with that index.
    case deviceNotFound(index: Int, deviceCount: Int)
    /// A configuration value (environment variable, argument) is invalid.
    case invalidConfiguration(String)
    /// The device has not that much memory free.
    case outOfDeviceMemory(device: Int, requested: UInt64, free: UInt64, total: UInt64)
    /// An argument is out of its range (size, offset, length, placement, core...).
    case invalidArgument(String)
    /// The buffer was freed (or its device closed) before this use.
    case bufferFreed
    /// NeuronCores are reserved by another process (or another open
    /// device in this one): `pid` holds at least one of `cores`.
    case coresBusy(device: Int, cores: [Int], pid: Int32, command: String)
    /// A job was submitted to, or waited for on, a NeuronCore this
    /// device object has not reserved.
    case coreNotReserved(device: Int, core: Int)
    /// The NeuronCore's queue holds its maximum of jobs.
    case queueFull(device: Int, core: Int, depth: Int)
    /// The engine refused the program at submission.
    case invalidProgram(NeuronProgramError)
    /// A job that was never submitted, or whose result is no longer kept.
    case unknownJob(core: Int, sequence: UInt64)
    /// A job trace that cannot be read: not written (the job has not
    /// ended, or was not traced), or in a format this library does not know.
    case invalidTrace(String)
    /// A system call failed.
    case system(operation: String, errno: Errno)

    public var description: String {
        switch self {
        case .driverNotLoaded:
            return """
                The neuron driver is not loaded (/sys/module/neuron does not exist).
                  Load it:           sudo insmod driver/neuron.ko fake_devices=2   (or: sudo modprobe neuron after scripts/install-driver)
                  Where the host cannot load modules, use the VM harness:   scripts/vm-run -- neuron-ls
                  To use the in-process simulator instead:                  NEURON_BACKEND=sim
                """
        case .noDevices:
            return """
                The neuron driver is loaded but manages no devices.
                  On a machine without Inferentia hardware, create fake devices:
                  sudo rmmod neuron && sudo insmod driver/neuron.ko fake_devices=2
                """
        case .permissionDenied(let path):
            return """
                Permission denied opening \(path).
                  Join group neuron and log in again:   sudo usermod -aG neuron $USER
                  (the udev rules from scripts/install-driver give the group access, mode 0660)
                """
        case .apiVersionMismatch(let major, let minor, let supported):
            return """
                The neuron driver speaks API \(major).\(minor); this library supports API \(supported).x.
                  Install a driver and userspace of the same release (scripts/install-driver from this tree).
                """
        case .deviceNotFound(let index, let count):
            return count == 0
                ? "There is no neuron device \(index): no devices exist."
                : "There is no neuron device \(index): devices are 0...\(count - 1)."
        case .invalidConfiguration(let message):
            return message
        case .outOfDeviceMemory(let device, let requested, let free, let total):
            return """
                Device \(device) cannot hold \(requested) more bytes: \(free) of \(total) are free.
                  Free buffers you no longer need, use a smaller batch, or spread the model over more devices
                  (neuron-ls --wide shows which processes hold memory).
                """
        case .invalidArgument(let message):
            return message
        case .bufferFreed:
            return "The buffer was freed, or its device closed, before this use."
        case .coresBusy(let device, let cores, let pid, let command):
            let who = pid > 0 ? "process \(pid)\(command.isEmpty ? "" : " (\(command))")" : "another process"
            return """
                NeuronCore(s) \(cores.map(String.init).joined(separator: ",")) of device \(device) are held by \(who).
                  Wait for it to finish or stop it, or use other NeuronCores (NEURON_RT_VISIBLE_CORES);
                  neuron-ls --wide shows which process holds which cores.
                """
        case .coreNotReserved(let device, let core):
            return "NeuronCore \(core) of device \(device) is not reserved by this process: reserve it first (device.queue(core: \(core)))."
        case .queueFull(let device, let core, let depth):
            return "The queue of NeuronCore \(core) on device \(device) holds its \(depth) jobs: wait for one to finish, then submit again."
        case .invalidProgram(let error):
            return "The program was refused: \(error.description)"
        case .unknownJob(let core, let sequence):
            return "Job \(sequence) of NeuronCore \(core) was never submitted here, or ended too long ago for its status to be kept."
        case .invalidTrace(let message):
            return "The job trace cannot be read: \(message)"
        case .system(let operation, let errno):
            return "\(operation) failed: \(errno) (errno \(errno.rawValue))"
        }
    }
}
