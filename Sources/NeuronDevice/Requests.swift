import CNeuronUAPI

/// A command of the driver tied to the type of its argument: a call with
/// the wrong structure does not compile.
package struct NeuronRequest<Argument>: Sendable {
    /// The ioctl request code (NEURON_IOCTL_<name>).
    package let code: UInt
    /// The uapi's name of the command, as errors show it ("MEM_ALLOC").
    package let name: String
}

/// What the tests compare with the uapi's list: any request, untyped.
package protocol AnyNeuronRequest: Sendable {
    var code: UInt { get }
    var name: String { get }
    var argumentSize: Int { get }
}

extension NeuronRequest: AnyNeuronRequest {
    package var argumentSize: Int { MemoryLayout<Argument>.size }
}

/// Every command of the uapi's NEURON_IOCTL_LIST, with its argument type.
/// The codes come from the C list; a test checks this list against it,
/// name, code and size, in order.
package enum NeuronRequests {
    static let driverInfo = NeuronRequest<neuron_driver_info>(code: neuron_ioctl_driver_info, name: "DRIVER_INFO")
    static let deviceInfo = NeuronRequest<neuron_device_info>(code: neuron_ioctl_device_info, name: "DEVICE_INFO")
    static let processList = NeuronRequest<neuron_process_list>(code: neuron_ioctl_process_list, name: "PROCESS_LIST")
    static let memAlloc = NeuronRequest<neuron_mem_alloc>(code: neuron_ioctl_mem_alloc, name: "MEM_ALLOC")
    static let memFree = NeuronRequest<neuron_mem_free>(code: neuron_ioctl_mem_free, name: "MEM_FREE")
    static let memInfo = NeuronRequest<neuron_mem_info>(code: neuron_ioctl_mem_info, name: "MEM_INFO")
    static let memWrite = NeuronRequest<neuron_mem_copy>(code: neuron_ioctl_mem_write, name: "MEM_WRITE")
    static let memRead = NeuronRequest<neuron_mem_copy>(code: neuron_ioctl_mem_read, name: "MEM_READ")
    static let memSet = NeuronRequest<neuron_mem_set>(code: neuron_ioctl_mem_set, name: "MEM_SET")
    static let coreReserve = NeuronRequest<neuron_core_reserve>(code: neuron_ioctl_core_reserve, name: "CORE_RESERVE")
    static let coreRelease = NeuronRequest<neuron_core_reserve>(code: neuron_ioctl_core_release, name: "CORE_RELEASE")
    static let jobSubmit = NeuronRequest<neuron_job_submit>(code: neuron_ioctl_job_submit, name: "JOB_SUBMIT")
    static let jobWait = NeuronRequest<neuron_job_wait>(code: neuron_ioctl_job_wait, name: "JOB_WAIT")
    static let queueInfo = NeuronRequest<neuron_queue_info>(code: neuron_ioctl_queue_info, name: "QUEUE_INFO")

    package static let all: [any AnyNeuronRequest] = [
        driverInfo, deviceInfo, processList, memAlloc, memFree, memInfo, memWrite, memRead, memSet,
        coreReserve, coreRelease, jobSubmit, jobWait, queueInfo,
    ]

    /// The uapi's list as the C side compiled it: names, codes, argument sizes.
    package static var uapi: [(name: String, code: UInt, size: Int)] {
        (0..<neuron_ioctl_count).map { index in
            (neuron_ioctl_list_name(index).map { String(cString: $0) } ?? "", neuron_ioctl_list_code(index),
             Int(neuron_ioctl_list_size(index)))
        }
    }
}
