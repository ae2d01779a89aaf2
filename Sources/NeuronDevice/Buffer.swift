
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Where a buffer lives.
public enum NeuronMemoryPlacement: UInt32, Sendable, Codable {
    /// Device memory, counted against the device's capacity.
    case device = 0
    /// Host memory the device reaches (staging for inputs and outputs).
    case host = 1
}

/// What a backend does for a buffer; `NeuronBuffer` checks every range
/// before it calls these, and calls `release()` exactly once.
protocol NeuronBufferStorage: Sendable {
    var handle: UInt32 { get }
    var allocatedSize: UInt64 { get }
    var deviceAddress: UInt64 { get }
    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(NeuronError)
    func read(into bytes: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(NeuronError)
    func fill(_ value: UInt8, at offset: UInt64, length: UInt64) throws(NeuronError)
    /// The whole buffer mapped into this process; the same address on
    /// every call until `release()`.
    func mapping() throws(NeuronError) -> UnsafeMutableRawPointer
    /// Host memory the buffer's written pages take.
    func residentBytes() throws(NeuronError) -> UInt64
    /// Unmap and free.
    func release()
}

/// A buffer of device memory, owned by this object: it is freed on
/// `free()` or when the last reference goes away, exactly once. A buffer
/// freed while in use (another thread inside `withUnsafeMutableBytes`, a
/// copy in flight) lives until that use ends, as the kernel keeps a buffer
/// freed while mapped.
public final class NeuronBuffer: Sendable {
    /// Bytes, as requested.
    public let size: UInt64
    public let placement: NeuronMemoryPlacement
    /// NeuronCore affinity within the device, or nil.
    public let core: Int?
    /// Index of the device the buffer is on.
    public let deviceIndex: Int
    let storage: any NeuronBufferStorage

    private struct State { var users = 0; var freed = false; var released = false }
    private let state = Locked(State())

    init(size: UInt64, placement: NeuronMemoryPlacement, core: Int?, deviceIndex: Int,
         storage: any NeuronBufferStorage) {
        self.size = size
        self.placement = placement
        self.core = core
        self.deviceIndex = deviceIndex
        self.storage = storage
    }

    deinit {
        if !state.withLock({ $0.released }) { storage.release() }
    }

    /// The buffer's handle on its device file.
    public var handle: UInt32 { storage.handle }
    /// Where the buffer sits in the device's address space.
    public var deviceAddress: UInt64 { storage.deviceAddress }
    /// Bytes the device reserved (`size` rounded up to the page size).
    public var allocatedSize: UInt64 { storage.allocatedSize }

    /// Free now; later uses fail with `.bufferFreed`. Idempotent.
    public func free() {
        let release = state.withLock { state -> Bool in
            state.freed = true
            guard state.users == 0, !state.released else { return false }
            state.released = true
            return true
        }
        if release { storage.release() }
    }

    public var isFreed: Bool { state.withLock { $0.freed } }

    func beginUse() throws(NeuronError) {
        let usable = state.withLock { state -> Bool in
            guard !state.freed else { return false }
            state.users += 1
            return true
        }
        guard usable else { throw .bufferFreed }
    }

    func endUse() {
        let release = state.withLock { state -> Bool in
            state.users -= 1
            guard state.freed, state.users == 0, !state.released else { return false }
            state.released = true
            return true
        }
        if release { storage.release() }
    }

    private func use<R>(_ body: () throws(NeuronError) -> R) throws(NeuronError) -> R {
        try beginUse()
        defer { endUse() }
        return try body()
    }

    private func checkRange(_ offset: UInt64, _ length: UInt64) throws(NeuronError) {
        let (end, overflow) = offset.addingReportingOverflow(length)
        guard !overflow, end <= size else {
            throw .invalidArgument("The range \(offset)..<\(offset &+ length) is outside the buffer of \(size) bytes.")
        }
    }

    /// Copy `bytes` into the buffer at `offset`.
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64 = 0) throws(NeuronError) {
        try checkRange(offset, UInt64(bytes.count))
        guard !bytes.isEmpty else { return }
        try use { () throws(NeuronError) in try storage.write(bytes, at: offset) }
    }

    /// Copy `values` into the buffer at `offset` (bytes).
    public func write<T: BitwiseCopyable>(_ values: [T], at offset: UInt64 = 0) throws(NeuronError) {
        do {
            try values.withUnsafeBytes { bytes in try write(bytes, at: offset) }
        } catch let error as NeuronError {
            throw error
        } catch {
            throw .invalidArgument("\(error)")  // write(_:at:) throws only NeuronError
        }
    }

    /// Copy bytes out of the buffer at `offset` into `bytes`.
    public func read(into bytes: UnsafeMutableRawBufferPointer, at offset: UInt64 = 0) throws(NeuronError) {
        try checkRange(offset, UInt64(bytes.count))
        guard !bytes.isEmpty else { return }
        try use { () throws(NeuronError) in try storage.read(into: bytes, at: offset) }
    }

    /// `count` values of `type` read at `offset` (bytes).
    public func read<T: BitwiseCopyable>(_ type: T.Type, count: Int, at offset: UInt64 = 0) throws(NeuronError) -> [T] {
        let (byteCount, overflow) = count.multipliedReportingOverflow(by: MemoryLayout<T>.stride)
        guard count >= 0, !overflow, UInt64(byteCount) <= size else {
            throw .invalidArgument("\(count) values of \(T.self) do not fit in the buffer of \(size) bytes.")
        }
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: byteCount,
                                                           alignment: MemoryLayout<T>.alignment)
        defer { bytes.deallocate() }
        try read(into: bytes, at: offset)
        return Array(bytes.bindMemory(to: T.self))
    }

    /// Set `length` bytes at `offset` (all bytes from it when nil) to `value`.
    public func fill(_ value: UInt8, at offset: UInt64 = 0, length: UInt64? = nil) throws(NeuronError) {
        let count = length ?? (offset <= size ? size - offset : 0)
        try checkRange(offset, count)
        guard count > 0 else { return }
        try use { () throws(NeuronError) in try storage.fill(value, at: offset, length: count) }
    }

    /// Zero-copy access: `body` gets the buffer's bytes mapped into this
    /// process. The pointer is valid only inside `body`; a `free()` from
    /// another thread meanwhile takes effect when `body` returns.
    public func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) throws -> R {
        try beginUse()
        defer { endUse() }
        let base = try storage.mapping()
        return try body(UnsafeMutableRawBufferPointer(start: base, count: Int(size)))
    }

    /// Host memory the buffer's written pages take (memory is committed
    /// when first written).
    public func residentBytes() throws(NeuronError) -> UInt64 {
        try use { () throws(NeuronError) in try storage.residentBytes() }
    }
}
