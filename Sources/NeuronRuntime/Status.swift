import NeuronDevice
import NeuronNEFF

/// Status codes in the spirit of AWS's NRT_STATUS, with the same values
/// where they have a counterpart, for the C API to return.
public enum NRTStatus: Int32, Sendable, CaseIterable {
    case success = 0
    case failure = 1
    case invalid = 2
    case invalidHandle = 3
    case resource = 4
    case timeout = 5
    case hardwareError = 6
    case queueFull = 7
    case loadNotEnoughCores = 9
    case unsupportedNEFFVersion = 10
    case uninitialized = 13
    case closed = 14
    case execBadInput = 1002
    case execCompletedWithNumericalError = 1003
    case execCompletedWithError = 1004
    case execCoreBusy = 1005

    /// NRT_SUCCESS, NRT_INVALID, ... as AWS spells them.
    public var name: String {
        switch self {
        case .success: "NRT_SUCCESS"
        case .failure: "NRT_FAILURE"
        case .invalid: "NRT_INVALID"
        case .invalidHandle: "NRT_INVALID_HANDLE"
        case .resource: "NRT_RESOURCE"
        case .timeout: "NRT_TIMEOUT"
        case .hardwareError: "NRT_HW_ERROR"
        case .queueFull: "NRT_QUEUE_FULL"
        case .loadNotEnoughCores: "NRT_LOAD_NOT_ENOUGH_NC"
        case .unsupportedNEFFVersion: "NRT_UNSUPPORTED_NEFF_VERSION"
        case .uninitialized: "NRT_UNINITIALIZED"
        case .closed: "NRT_CLOSED"
        case .execBadInput: "NRT_EXEC_BAD_INPUT"
        case .execCompletedWithNumericalError: "NRT_EXEC_COMPLETED_WITH_NUM_ERR"
        case .execCompletedWithError: "NRT_EXEC_COMPLETED_WITH_ERR"
        case .execCoreBusy: "NRT_EXEC_NC_BUSY"
        }
    }
}

/// A runtime failure: its status code and what to do about it.
public struct NeuronRuntimeError: Error, Equatable, Sendable, CustomStringConvertible {
    public var status: NRTStatus
    public var message: String

    public init(_ status: NRTStatus, _ message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { "\(status.name): \(message)" }

    /// From the device layer's errors.
    init(_ error: NeuronError, while doing: String) {
        switch error {
        case .outOfDeviceMemory, .queueFull:
            self.init(error.isQueueFull ? .queueFull : .resource, "\(doing): \(error.description)")
        case .coresBusy:
            self.init(.loadNotEnoughCores, "\(doing): \(error.description)")
        case .invalidProgram, .invalidArgument, .unknownJob, .coreNotReserved, .invalidTrace:
            self.init(.invalid, "\(doing): \(error.description)")
        case .driverNotLoaded, .noDevices, .deviceNotFound, .permissionDenied, .apiVersionMismatch,
             .invalidConfiguration:
            self.init(.uninitialized, "\(doing): \(error.description)")
        case .bufferFreed:
            self.init(.closed, "\(doing): \(error.description)")
        case .system:
            self.init(.failure, "\(doing): \(error.description)")
        }
    }

    init(_ error: NEFFError) {
        self.init(error.kind == .version ? .unsupportedNEFFVersion : .invalid, error.description)
    }
}

extension NeuronError {
    var isQueueFull: Bool {
        if case .queueFull = self { return true }
        return false
    }
}
