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
        case .system(let operation, let errno):
            return "\(operation) failed: \(errno) (errno \(errno.rawValue))"
        }
    }
}
