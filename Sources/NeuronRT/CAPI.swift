// The C API (Sources/CNRT/include/nrt.h), implemented over NeuronRuntime.
// Handles are retained Swift objects passed as opaque pointers; every
// entry point checks its pointers and returns a status, never traps.
import CNRT
import NeuronDevice
import NeuronNEFF
import NeuronRuntime

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

final class CModel {
    let loaded: NeuronLoadedModel
    init(_ loaded: NeuronLoadedModel) { self.loaded = loaded }
}

final class CTensor {
    let name: String
    let buffer: NeuronBuffer
    let size: Int
    init(name: String, buffer: NeuronBuffer, size: Int) {
        self.name = name
        self.buffer = buffer
        self.size = size
    }
}

final class CTensorSet {
    var tensors: [String: CTensor] = [:]
}

/// The process's runtime, between nrt_init and nrt_close.
let sharedRuntime = Locked<NeuronRuntime?>(nil)

func status(_ value: NRTStatus) -> Int32 { value.rawValue }

/// Say why a call failed on standard error (as AWS's runtime logs).
func report(_ message: String) {
    var text = message
    text.withUTF8 { bytes in _ = write(2, bytes.baseAddress, bytes.count) }
}

func runtime() -> NeuronRuntime? { sharedRuntime.withLock { $0 } }

func object<T: AnyObject>(_ pointer: OpaquePointer?, as type: T.Type) -> T? {
    guard let pointer else { return nil }
    return Unmanaged<AnyObject>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue() as? T
}

func handle(_ value: AnyObject) -> OpaquePointer {
    OpaquePointer(Unmanaged.passRetained(value).toOpaque())
}

@_cdecl("nrt_init")
public func nrtInit(_ framework: Int32, _ fwVersion: UnsafePointer<CChar>?, _ falVersion: UnsafePointer<CChar>?) -> Int32 {
    do {
        let created = try NeuronRuntime()
        let installed = sharedRuntime.withLock { current -> Bool in
            guard current == nil else { return false }
            current = created
            return true
        }
        if !installed { created.close() }
        return status(.success)
    } catch {
        report("nrt_init: \(error)\n")
        return status(error.status)
    }
}

@_cdecl("nrt_close")
public func nrtClose() {
    sharedRuntime.withLock { $0 }?.close()
    sharedRuntime.withLock { $0 = nil }
}

@_cdecl("nrt_get_total_nc_count")
public func nrtTotalCount(_ count: UnsafeMutablePointer<UInt32>?) -> Int32 {
    guard let count else { return status(.invalid) }
    guard let rt = runtime() else { return status(.uninitialized) }
    count.pointee = UInt32(rt.totalCoreCount)
    return status(.success)
}

@_cdecl("nrt_get_visible_nc_count")
public func nrtVisibleCount(_ count: UnsafeMutablePointer<UInt32>?) -> Int32 {
    guard let count else { return status(.invalid) }
    guard let rt = runtime() else { return status(.uninitialized) }
    count.pointee = UInt32(rt.visibleCoreCount)
    return status(.success)
}

@_cdecl("nrt_load")
public func nrtLoad(_ bytes: UnsafeRawPointer?, _ size: Int, _ startCore: Int32, _ coreCount: Int32,
                    _ model: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guard let bytes, let model, size > 0 else { return status(.invalid) }
    guard let rt = runtime() else { return status(.uninitialized) }
    let neff: NEFFModel
    do {
        neff = try NEFFModel(bytes: Array(UnsafeRawBufferPointer(start: bytes, count: size)))
    } catch {
        report("nrt_load: \(error)\n")
        return status(error.kind == .version ? .unsupportedNEFFVersion : .invalid)
    }
    if coreCount > 0, Int(coreCount) != neff.coreCount {
        report("nrt_load: the NEFF needs \(neff.coreCount) NeuronCore(s), \(coreCount) were asked for\n")
        return status(.invalid)
    }
    let start = startCore >= 0 && rt.visibleCores.indices.contains(Int(startCore))
        ? rt.visibleCores[Int(startCore)] : nil
    if startCore >= 0 && start == nil { return status(.invalid) }
    do {
        model.pointee = handle(CModel(try rt.load(neff, startCore: start)))
        return status(.success)
    } catch {
        report("nrt_load: \(error)\n")
        return status(error.status)
    }
}

@_cdecl("nrt_unload")
public func nrtUnload(_ model: OpaquePointer?) -> Int32 {
    guard let pointer = model, let found = object(pointer, as: CModel.self) else { return status(.invalidHandle) }
    found.loaded.unload()
    Unmanaged<AnyObject>.fromOpaque(UnsafeRawPointer(pointer)).release()
    return status(.success)
}

@_cdecl("nrt_execute")
public func nrtExecute(_ model: OpaquePointer?, _ inputs: OpaquePointer?, _ outputs: OpaquePointer?) -> Int32 {
    guard let found = object(model, as: CModel.self) else { return status(.invalidHandle) }
    guard let inputSet = object(inputs, as: CTensorSet.self),
          let outputSet = object(outputs, as: CTensorSet.self) else { return status(.invalid) }
    let loaded = found.loaded
    func views(_ set: CTensorSet, _ kind: NEFFTensor.Kind) throws(NeuronRuntimeError) -> [String: NeuronTensor] {
        var result: [String: NeuronTensor] = [:]
        for (name, tensor) in set.tensors {
            guard let info = loaded.model.tensor(named: name), info.kind == kind else {
                throw NeuronRuntimeError(.execBadInput, "\(loaded.model.name) has no \(kind.rawValue) named \(name)")
            }
            guard let bytes = info.byteCount, tensor.size >= bytes else {
                throw NeuronRuntimeError(.execBadInput, "tensor \(name) has \(tensor.size) bytes; the model's \(kind.rawValue) \(name) needs \(info.byteCount ?? 0)")
            }
            result[name] = NeuronTensor(name: name, dtype: info.dtype, shape: info.shape, buffer: tensor.buffer)
        }
        return result
    }
    do {
        try loaded.execute(inputs: try views(inputSet, .input), outputs: try views(outputSet, .output))
        return status(.success)
    } catch {
        report("nrt_execute: \(error)\n")
        return status(error.status)
    }
}

@_cdecl("nrt_get_model_tensor_info")
public func nrtTensorInfo(_ model: OpaquePointer?, _ info: UnsafeMutablePointer<UnsafeMutablePointer<nrt_tensor_info_array_t>?>?) -> Int32 {
    guard let found = object(model, as: CModel.self) else { return status(.invalidHandle) }
    guard let info else { return status(.invalid) }
    let tensors = found.loaded.model.tensors.filter { $0.kind == .input || $0.kind == .output }
    guard let array = nrt_info_alloc(UInt64(tensors.count)) else { return status(.resource) }
    for (index, tensor) in tensors.enumerated() {
        let shape = tensor.shape.map { UInt32(clamping: $0) }
        let ok = shape.withUnsafeBufferPointer { dims in
            nrt_info_set(array, UInt64(index), tensor.name, tensor.kind == .input ? 0 : 1, tensor.byteCount ?? 0,
                         Int32(tensor.dtype.rawValue), dims.baseAddress, UInt32(dims.count))
        }
        guard ok == 0 else {
            nrt_info_free(array)
            return status(.resource)
        }
    }
    info.pointee = array
    return status(.success)
}

@_cdecl("nrt_free_model_tensor_info")
public func nrtFreeTensorInfo(_ info: UnsafeMutablePointer<nrt_tensor_info_array_t>?) -> Int32 {
    nrt_info_free(info)
    return status(.success)
}

@_cdecl("nrt_tensor_allocate")
public func nrtTensorAllocate(_ placement: Int32, _ logicalCore: Int32, _ size: Int, _ name: UnsafePointer<CChar>?,
                              _ tensor: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guard let tensor, size > 0, placement == 0 || placement == 1 else { return status(.invalid) }
    guard let rt = runtime() else { return status(.uninitialized) }
    do {
        let buffer = try rt.allocateBuffer(bytes: size, logicalCore: Int(logicalCore))
        tensor.pointee = handle(CTensor(name: name.map { String(cString: $0) } ?? "", buffer: buffer, size: size))
        return status(.success)
    } catch {
        report("nrt_tensor_allocate: \(error)\n")
        return status(error.status)
    }
}

@_cdecl("nrt_tensor_free")
public func nrtTensorFree(_ tensor: UnsafeMutablePointer<OpaquePointer?>?) {
    guard let tensor, let pointer = tensor.pointee, let found = object(pointer, as: CTensor.self) else { return }
    found.buffer.free()
    Unmanaged<AnyObject>.fromOpaque(UnsafeRawPointer(pointer)).release()
    tensor.pointee = nil
}

@_cdecl("nrt_tensor_read")
public func nrtTensorRead(_ tensor: OpaquePointer?, _ buf: UnsafeMutableRawPointer?, _ offset: Int, _ size: Int) -> Int32 {
    guard let found = object(tensor, as: CTensor.self) else { return status(.invalidHandle) }
    guard let buf, offset >= 0, size >= 0, size <= found.size - min(offset, found.size), offset <= found.size else {
        return status(.invalid)
    }
    do {
        try found.buffer.read(into: UnsafeMutableRawBufferPointer(start: buf, count: size), at: UInt64(offset))
        return status(.success)
    } catch {
        return status(.invalid)
    }
}

@_cdecl("nrt_tensor_write")
public func nrtTensorWrite(_ tensor: OpaquePointer?, _ buf: UnsafeRawPointer?, _ offset: Int, _ size: Int) -> Int32 {
    guard let found = object(tensor, as: CTensor.self) else { return status(.invalidHandle) }
    guard let buf, offset >= 0, size >= 0, offset <= found.size, size <= found.size - offset else {
        return status(.invalid)
    }
    do {
        try found.buffer.write(UnsafeRawBufferPointer(start: buf, count: size), at: UInt64(offset))
        return status(.success)
    } catch {
        return status(.invalid)
    }
}

@_cdecl("nrt_tensor_get_size")
public func nrtTensorSize(_ tensor: OpaquePointer?) -> Int {
    object(tensor, as: CTensor.self)?.size ?? 0
}

@_cdecl("nrt_allocate_tensor_set")
public func nrtAllocateSet(_ result: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guard let result else { return status(.invalid) }
    result.pointee = handle(CTensorSet())
    return status(.success)
}

@_cdecl("nrt_destroy_tensor_set")
public func nrtDestroySet(_ set: UnsafeMutablePointer<OpaquePointer?>?) {
    guard let set, let pointer = set.pointee, object(pointer, as: CTensorSet.self) != nil else { return }
    Unmanaged<AnyObject>.fromOpaque(UnsafeRawPointer(pointer)).release()
    set.pointee = nil
}

@_cdecl("nrt_add_tensor_to_tensor_set")
public func nrtAddToSet(_ set: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ tensor: OpaquePointer?) -> Int32 {
    guard let found = object(set, as: CTensorSet.self) else { return status(.invalidHandle) }
    guard let name, let member = object(tensor, as: CTensor.self) else { return status(.invalid) }
    found.tensors[String(cString: name)] = member
    return status(.success)
}

@_cdecl("nrt_get_tensor_from_tensor_set")
public func nrtGetFromSet(_ set: OpaquePointer?, _ name: UnsafePointer<CChar>?,
                          _ tensor: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guard let found = object(set, as: CTensorSet.self) else { return status(.invalidHandle) }
    guard let name, let tensor, let member = found.tensors[String(cString: name)] else { return status(.invalid) }
    tensor.pointee = OpaquePointer(Unmanaged<AnyObject>.passUnretained(member).toOpaque())
    return status(.success)
}

/// Status names, as static C strings.
nonisolated(unsafe) let statusNames: [Int32: UnsafeMutablePointer<CChar>] = {
    var names: [Int32: UnsafeMutablePointer<CChar>] = [:]
    for value in NRTStatus.allCases { names[value.rawValue] = strdup(value.name) }
    names[-1] = strdup("NRT_UNKNOWN_STATUS")
    return names
}()

@_cdecl("nrt_get_status_as_str")
public func nrtStatusString(_ value: Int32) -> UnsafePointer<CChar>? {
    UnsafePointer(statusNames[value] ?? statusNames[-1])
}
