import CNeuronUAPI
import Foundation
import NeuronDevice
import Testing
import TestSupport

/// Job traces (API 1.8): what the engine's job runner writes into a
/// job's trace buffer, the same from the driver and from the simulator.
@Suite("Queues: job traces")
struct TraceTests {
    @Test("a traced job records every instruction in order, with times, work and bytes")
    func records() throws {
        let device = try backendUnderTest().open(device: 0)
        defer { device.close() }
        let queue = try device.queue(core: 1)
        let data = try device.allocate(size: 1 << 20)
        let trace = try device.allocate(size: NeuronJobTrace.bufferSize(records: 64))
        var program = NeuronProgram()
        program.fill(.contiguous(slot: 0, dims: [256]), value: 2)
        program.copy(.contiguous(slot: 0, dims: [256], offset: 256), from: .contiguous(slot: 0, dims: [256]))
        program.nop()
        // A broadcast operand counts its distinct elements once.
        program.matmul(.contiguous(slot: 0, dims: [32, 48], offset: 4096),
                       .contiguous(slot: 0, dims: [32, 64]), .contiguous(slot: 0, dims: [64, 48], offset: 2048))
        program.semaphoreSignal(3)
        program.semaphoreWait(3)
        let before = NeuronJobTrace.now()
        let job = try queue.submit(image: program.image(), buffers: [data], trace: trace)
        #expect(try finish(queue, job).status == .ok)
        let after = NeuronJobTrace.now()
        let t = try NeuronJobTrace(buffer: trace)

        #expect(t.core == 1 && t.sequence == job.sequence && t.status == NEURON_JOB_OK.rawValue)
        #expect(t.instructionCount == 6 && t.dropped == 0 && t.capacity >= t.records.count && UInt64(t.capacity) <= (trace.allocatedSize - NeuronJobTrace.headerSize) / NeuronJobTrace.recordSize)
        #expect(t.records.map(\.instruction) == [0, 1, 2, 3, 4, 5])
        #expect(t.records.map { NeuronEngine.name(opcode: UInt8($0.opcode), sub: 0) }
                == ["FILL", "COPY", "NOP", "MATMUL", "SEM_SIGNAL", "SEM_WAIT"])
        #expect(t.records.map(\.kind) == [.compute, .compute, .nop, .compute, .sync, .sync])
        #expect(t.records.allSatisfy { $0.part == 0 && $0.partCount == $0.parts && $0.start <= $0.end })
        // Queue events and records in time order, inside the caller's clock.
        #expect(before <= t.submitted && t.submitted <= t.dequeued && t.dequeued <= t.started)
        #expect(t.started <= t.records[0].start && t.records.last!.end <= t.finished && t.finished <= after)
        for (a, b) in zip(t.records, t.records.dropFirst()) { #expect(a.end <= b.start) }
        // Work is the engine's cost; bytes are the operands' elements.
        #expect(t.records[0].work == 256 && t.records[0].bytesRead == 0 && t.records[0].bytesWritten == 1024)
        #expect(t.records[1].bytesRead == 1024 && t.records[1].bytesWritten == 1024)
        #expect(t.records[3].work == 32 * 48 * 64)
        #expect(t.records[3].bytesRead == (32 * 64 + 64 * 48) * 4 && t.records[3].bytesWritten == 32 * 48 * 4)
    }

    @Test("a sliced instruction's records cover its parts once, and its work adds up")
    func slices() throws {
        let device = try backendUnderTest().open(device: 0)
        defer { device.close() }
        let queue = try device.queue(core: 0)
        let data = try device.allocate(size: 16 << 20)
        let trace = try device.allocate(size: NeuronJobTrace.bufferSize(records: 4096))
        // 2^29 multiply-adds: more than a section of either host.
        var program = NeuronProgram()
        program.matmul(.contiguous(slot: 0, dims: [1024, 1024], offset: 2 << 20),
                       .contiguous(slot: 0, dims: [1024, 512]), .contiguous(slot: 0, dims: [512, 1024], offset: 1 << 20))
        let job = try queue.submit(image: program.image(), buffers: [data], trace: trace)
        #expect(try finish(queue, job, seconds: 600).status == .ok)
        let t = try NeuronJobTrace(buffer: trace)
        #expect(t.records.count > 1 && t.dropped == 0)
        let parts = t.records.first?.parts ?? 0
        #expect(parts > 1 && t.records.allSatisfy { $0.instruction == 0 && $0.parts == parts })
        var next: UInt32 = 0
        for record in t.records {
            #expect(record.part == next)
            next = record.part + record.partCount
        }
        #expect(next == parts)
        #expect(t.records.reduce(0) { $0 + $1.work } == 1024 * 1024 * 512)
        #expect(t.records.reduce(0) { $0 + $1.bytesWritten } == 1024 * 1024 * 4)
    }

    @Test("a trace buffer that fills up keeps the first records, counts the rest, and writes nothing past it")
    func overflow() throws {
        let device = try backendUnderTest().open(device: 0)
        defer { device.close() }
        let queue = try device.queue(core: 0)
        let data = try device.allocate(size: 4096)
        // One page: a header and (4096 - header) / record records.
        let trace = try device.allocate(size: 4096)
        let capacity = Int((4096 - NeuronJobTrace.headerSize) / NeuronJobTrace.recordSize)
        var program = NeuronProgram()
        for i in 0..<(capacity + 40) { program.fill(.contiguous(slot: 0, dims: [1], offset: UInt64(i % 1024)), value: 1) }
        let job = try queue.submit(image: program.image(), buffers: [data], trace: trace)
        #expect(try finish(queue, job).status == .ok)
        let t = try NeuronJobTrace(buffer: trace)
        #expect(t.capacity == capacity && t.records.count == capacity && t.dropped == 40)
        #expect(t.records.map(\.instruction) == Array(0..<capacity))
        #expect(trace.allocatedSize == 4096)
    }

    @Test("a job that never ran says so; an untraced job leaves the buffer alone; bad trace buffers are refused")
    func edges() throws {
        let backend = try backendUnderTest()
        let device = try backend.open(device: 0), other = try backend.open(device: 0)
        defer { device.close(); other.close() }
        let q0 = try device.queue(core: 0), q1 = try device.queue(core: 1)
        let data = try device.allocate(size: 4096)
        let trace = try device.allocate(size: 8192)
        try trace.fill(0)

        // A fault, and a job after it that ends aborted without running.
        try data.write([Int32(99)], at: 1024)
        var faulty = NeuronProgram()
        faulty.gather(.contiguous(slot: 0, dims: [1, 2], offset: 300), table: .contiguous(slot: 0, dims: [4, 2]),
                      indices: .contiguous(slot: 0, dims: [1], dtype: .int32, offset: 256))
        let failed = try q0.submit(faulty, buffers: [data])
        var copy = NeuronProgram()
        copy.copy(.contiguous(slot: 0, dims: [4], offset: 4), from: .contiguous(slot: 0, dims: [4]))
        let skipped = try q1.submit(image: copy.image(), buffers: [data], after: failed, trace: trace)
        #expect(try finish(q1, skipped).status == .aborted)
        let t = try NeuronJobTrace(buffer: trace)
        #expect(t.status == NEURON_JOB_ABORTED.rawValue && t.started == 0 && t.records.isEmpty)
        #expect(t.submitted <= t.dequeued && t.dequeued <= t.finished)

        // Without a trace the buffer is not touched.
        try trace.fill(0)
        #expect(try finish(q1, try q1.submit(copy, buffers: [data])).status == .ok)
        #expect(throws: NeuronError.self) { try NeuronJobTrace(buffer: trace) }
        #expect(try trace.read(UInt8.self, count: 8192).allSatisfy { $0 == 0 })

        // A large trace buffer: only what the program can fill is touched
        // (and so committed), and its capacity says how much that is.
        let large = try device.allocate(size: 64 << 20)
        #expect(try large.residentBytes() == 0)
        #expect(try finish(q1, try q1.submit(image: copy.image(), buffers: [data], trace: large)).status == .ok)
        let small = try NeuronJobTrace(buffer: large)
        #expect(small.records.count == 1 && small.capacity >= 1 && small.capacity < 4096)
        #expect(try large.residentBytes() <= 2 * 4096)

        // A trace buffer of another file, or freed, is refused.
        let theirs = try other.allocate(size: 4096)
        #expect(throws: NeuronError.self) { try q1.submit(image: copy.image(), buffers: [data], trace: theirs) }
        let gone = try device.allocate(size: 4096)
        gone.free()
        #expect(throws: NeuronError.bufferFreed) { try q1.submit(image: copy.image(), buffers: [data], trace: gone) }
    }

    @Test("garbage and truncated traces are refused with the reason, never read past")
    func parse() throws {
        func parse(_ bytes: [UInt8]) throws(NeuronError) -> NeuronJobTrace {
            let result: Result<NeuronJobTrace, NeuronError> = bytes.withUnsafeBytes { raw in
                do throws(NeuronError) { return .success(try NeuronJobTrace(bytes: raw)) } catch { return .failure(error) }
            }
            return try result.get()
        }
        var header = neuron_trace_header()
        header.magic = NEURON_TRACE_MAGIC
        header.version = UInt32(NEURON_TRACE_VERSION)
        header.header_size = UInt32(NeuronJobTrace.headerSize)
        header.record_size = UInt32(NeuronJobTrace.recordSize)
        header.capacity = 2
        header.count = 2
        var record = neuron_trace_record()
        record.kind = 1
        var bytes = withUnsafeBytes(of: header) { Array($0) } + withUnsafeBytes(of: record) { Array($0) }
        bytes += withUnsafeBytes(of: record) { Array($0) }
        #expect(try parse(bytes).records.count == 2)
        for cut in [0, 10, Int(NeuronJobTrace.headerSize), bytes.count - 1] {
            #expect(throws: NeuronError.self) { try parse(Array(bytes.prefix(cut))) }
        }
        var other = bytes
        other[4] = 9    // version 9
        #expect { try parse(other) } throws: { "\($0)".contains("version 9") }
        other = bytes
        other[Int(NeuronJobTrace.headerSize) + 46] = 77    // kind 77
        #expect { try parse(other) } throws: { "\($0)".contains("kind 77") }
        other = bytes
        other[20] = 3    // count past capacity
        #expect(throws: NeuronError.self) { try parse(other) }
    }
}
