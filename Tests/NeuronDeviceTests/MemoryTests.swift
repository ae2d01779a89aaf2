import NeuronDevice
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Device memory through the Swift API: the simulator on the host, the
/// driver in the VM; the same semantics on both.
@Suite("Device memory, whichever backend", .serialized)
struct MemoryTests {
    func withDevice<R>(_ body: (any NeuronDeviceHandle, NeuronDeviceInfo) throws -> R) throws -> R {
        let device = try backendUnderTest().open(device: 0)
        defer { device.close() }
        return try body(device, try device.info())
    }

    @Test("typed write and read, fill, and zeros where nothing was written")
    func roundTrip() throws {
        try withDevice { device, _ in
            let buffer = try device.allocate(size: 3 * 4096 + 10)
            defer { buffer.free() }
            #expect(buffer.size == 3 * 4096 + 10)
            #expect(buffer.allocatedSize == 4 * 4096)
            #expect(try buffer.residentBytes() == 0)
            let values = (0..<1000).map { Float($0) * 0.5 - 3 }
            try buffer.write(values, at: 100)
            #expect(try buffer.read(Float.self, count: 1000, at: 100) == values)
            #expect(try buffer.read(UInt8.self, count: 100) == [UInt8](repeating: 0, count: 100))
            #expect(try buffer.read(UInt64.self, count: 1, at: 3 * 4096) == [0])
            // The floats take bytes 100..<4100, pages 0 and 1; fill in page 2.
            try buffer.fill(0x7f, at: 8192, length: 8)
            #expect(try buffer.read(UInt8.self, count: 10, at: 8191) == [0] + [UInt8](repeating: 0x7f, count: 8) + [0])
            #expect(try buffer.residentBytes() >= 2 * 4096)
            #expect(try buffer.residentBytes() <= 3 * 4096)
        }
    }

    @Test("withUnsafeMutableBytes is the buffer's memory, both ways")
    func zeroCopy() throws {
        try withDevice { device, _ in
            let buffer = try device.allocate(size: 64 * 1024)
            defer { buffer.free() }
            try buffer.withUnsafeMutableBytes { bytes in
                #expect(bytes.count == 64 * 1024)
                for index in stride(from: 0, to: bytes.count, by: 4096) { bytes[index] = UInt8(index / 4096) }
            }
            #expect(try buffer.read(UInt8.self, count: 1, at: 5 * 4096) == [5])
            try buffer.write([UInt32(0xdead_beef)], at: 8)
            let seen = try buffer.withUnsafeMutableBytes { $0.load(fromByteOffset: 8, as: UInt32.self) }
            #expect(seen == 0xdead_beef)
        }
    }

    @Test("bad sizes and ranges are refused with what was wrong")
    func badInput() throws {
        try withDevice { device, info in
            #expect(throws: NeuronError.invalidArgument("A buffer of 0 bytes cannot be allocated.")) {
                try device.allocate(size: 0)
            }
            do {
                _ = try device.allocate(size: info.memorySize + 1)
                Issue.record("allocated past capacity")
            } catch {
                guard case NeuronError.outOfDeviceMemory(0, let requested, _, let total) = error else {
                    Issue.record("unexpected \(error)")
                    return
                }
                #expect(requested == info.memorySize + 1 && total == info.memorySize)
            }
            #expect(throws: NeuronError.self) { try device.allocate(size: 4096, placement: .device, core: info.coreCount) }
            let buffer = try device.allocate(size: 4096)
            defer { buffer.free() }
            for (offset, count) in [(UInt64.max - 1, 4), (4096, 1), (1, 4096), (0, 4097)] {
                #expect(throws: NeuronError.self) {
                    try buffer.write([UInt8](repeating: 1, count: count), at: offset)
                }
            }
            #expect(throws: NeuronError.self) { try buffer.fill(1, at: 4000, length: 97) }
            try buffer.write([UInt8](), at: 4096)
        }
    }

    @Test("a freed buffer refuses use; free is idempotent")
    func useAfterFree() throws {
        try withDevice { device, _ in
            let buffer = try device.allocate(size: 4096)
            buffer.free()
            buffer.free()
            #expect(buffer.isFreed)
            #expect(throws: NeuronError.bufferFreed) { try buffer.read(UInt8.self, count: 1) }
            #expect(throws: NeuronError.bufferFreed) { try buffer.write([UInt8(1)]) }
            #expect(throws: NeuronError.bufferFreed) { try buffer.fill(0) }
            #expect(throws: NeuronError.bufferFreed) { try buffer.withUnsafeMutableBytes { _ in } }
        }
    }

    @Test("freed while mapped: the bytes stay until the use ends, the memory then returns")
    func freeWhileInUse() throws {
        try withDevice { device, _ in
            let before = try device.info().memoryUsed
            let buffer = try device.allocate(size: 8192)
            try buffer.withUnsafeMutableBytes { bytes throws in
                buffer.free()
                bytes[8191] = 9
                #expect(bytes[8191] == 9)
                #expect(try device.info().memoryUsed == before + 8192)
            }
            #expect(try device.info().memoryUsed == before)
        }
    }

    @Test("accounting: device and process, current; closing the device returns everything")
    func accounting() throws {
        let backend = try backendUnderTest()
        let device = try backend.open(device: 0)
        let before = try device.info().memoryUsed
        let a = try device.allocate(size: 3 * 4096)
        let b = try device.allocate(size: 5 * 4096)
        let h = try device.allocate(size: 4096, placement: .host, core: nil)
        #expect(try device.info().memoryUsed == before + 8 * 4096)
        let mine = try #require(try device.processes().first { $0.pid == getpid() })
        #expect(mine.deviceMemory >= 8 * 4096)
        #expect(mine.hostMemory >= 4096)
        b.free()
        #expect(try device.info().memoryUsed == before + 3 * 4096)
        device.close()
        let observer = try backend.open(device: 0)
        defer { observer.close() }
        #expect(try observer.info().memoryUsed == before)
        #expect(throws: NeuronError.bufferFreed) { try a.read(UInt8.self, count: 1) }
        #expect(throws: NeuronError.bufferFreed) { try h.write([UInt8(1)]) }
        a.free()
        h.free()
    }

    @Test("the whole device in one untouched buffer costs no host memory")
    func lazyCapacity() throws {
        try withDevice { device, info in
            let free = info.memorySize - info.memoryUsed
            let buffer = try device.allocate(size: free)
            defer { buffer.free() }
            #expect(try buffer.residentBytes() == 0)
            #expect(throws: NeuronError.self) { try device.allocate(size: 4096) }
        }
    }
}

@Suite("Buffer reads that cannot fit")
struct BufferReadLimits {
    @Test("a count past the buffer or overflowing is refused, not trapped")
    func hugeCounts() throws {
        let device = try backendUnderTest().open(device: 0)
        defer { device.close() }
        let buffer = try device.allocate(size: 64)
        defer { buffer.free() }
        #expect(throws: NeuronError.self) { try buffer.read(UInt64.self, count: 9) }
        #expect(throws: NeuronError.self) { try buffer.read(UInt64.self, count: Int.max / 2) }
        #expect(throws: NeuronError.self) { try buffer.read(UInt8.self, count: -1) }
        #expect(try buffer.read(UInt64.self, count: 8).count == 8)
    }
}
