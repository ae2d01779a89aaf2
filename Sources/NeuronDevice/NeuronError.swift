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
        case .system(let operation, let errno):
            return "\(operation) failed: \(errno) (errno \(errno.rawValue))"
        }
    }
}
