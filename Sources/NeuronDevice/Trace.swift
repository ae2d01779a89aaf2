import CNeuronUAPI

/// A job's trace, as the engine's job runner wrote it into the job's trace
/// buffer (uapi/neuron.h, `struct neuron_trace_header` and its records;
/// API 1.8): the same bytes from the driver and from the simulator.
public struct NeuronJobTrace: Sendable, Equatable, Codable {
    /// Bytes of the header at the start of a trace buffer.
    public static let headerSize = UInt64(MemoryLayout<neuron_trace_header>.size)
    /// Bytes of each record after it.
    public static let recordSize = UInt64(MemoryLayout<neuron_trace_record>.size)

    /// Now, on the clock traces use (CLOCK_MONOTONIC), in nanoseconds.
    public static func now() -> UInt64 { UInt64(monotonicNanoseconds()) }

    /// A trace buffer's size for `records` records.
    public static func bufferSize(records: Int) -> UInt64 {
        headerSize + UInt64(max(0, records)) * recordSize
    }

    /// What a record stands for (enum neuron_trace_kind).
    public enum Kind: UInt8, Sendable, Codable {
        /// A compute instruction, or a run of parts of a sliced one.
        case compute = 1
        /// SEM_SIGNAL, SEM_WAIT or BARRIER, its wait included.
        case sync = 2
        /// An instruction with nothing to do.
        case nop = 3
    }

    /// One instruction's run, or a run of its parts.
    public struct Record: Sendable, Equatable, Codable {
        /// When it began and ended (CLOCK_MONOTONIC, nanoseconds).
        public var start: UInt64
        public var end: UInt64
        /// The engine's work estimate (element operations; a MATMUL's is
        /// M·N·K), the parts' share for a sliced instruction.
        public var work: UInt64
        public var bytesRead: UInt64
        public var bytesWritten: UInt64
        /// The instruction's index in the program, and its opcode.
        public var instruction: Int
        public var opcode: UInt16
        public var kind: Kind
        /// The first part run, the parts run, and the parts the
        /// instruction divides into when sliced: a record of the whole
        /// instruction has part 0 and partCount == parts.
        public var part: UInt32
        public var partCount: UInt32
        public var parts: UInt32

        public var duration: UInt64 { end >= start ? end - start : 0 }
    }

    public var core: Int
    public var sequence: UInt64
    /// How the job ended (enum neuron_job_status).
    public var status: UInt32
    /// When it was queued, taken from the queue, began to run (0: never),
    /// and ended; CLOCK_MONOTONIC nanoseconds.
    public var submitted: UInt64
    public var dequeued: UInt64
    public var started: UInt64
    public var finished: UInt64
    /// Instructions of the program.
    public var instructionCount: Int
    /// Records the buffer had room for, and records that did not fit.
    public var capacity: Int
    public var dropped: UInt64
    public var records: [Record]

    /// Parse a trace buffer's bytes. Checks the magic, the version and
    /// the sizes; never reads past `bytes`.
    public init(bytes: UnsafeRawBufferPointer) throws(NeuronError) {
        guard bytes.count >= Int(Self.headerSize) else {
            throw .invalidTrace("\(bytes.count) bytes are less than a trace header (\(Self.headerSize)).")
        }
        let header = bytes.loadUnaligned(as: neuron_trace_header.self)
        guard header.magic == NEURON_TRACE_MAGIC else {
            throw .invalidTrace("no trace header (magic 0x\(String(header.magic, radix: 16))): the job has not ended, or was not submitted with a trace.")
        }
        guard header.version == NEURON_TRACE_VERSION else {
            throw .invalidTrace("trace version \(header.version); this library reads version \(NEURON_TRACE_VERSION). Use tools of the driver's release.")
        }
        guard UInt64(header.header_size) == Self.headerSize, UInt64(header.record_size) == Self.recordSize,
              header.count <= header.capacity else {
            throw .invalidTrace("header of \(header.header_size) bytes, records of \(header.record_size) bytes, \(header.count) of \(header.capacity) records: not a layout of this version.")
        }
        let end = Self.headerSize + UInt64(header.count) * Self.recordSize
        guard end <= UInt64(bytes.count) else {
            throw .invalidTrace("\(header.count) records need \(end) bytes; the buffer has \(bytes.count).")
        }
        core = Int(header.core)
        sequence = header.seq
        status = header.status
        submitted = header.submitted_ns
        dequeued = header.dequeued_ns
        started = header.started_ns
        finished = header.finished_ns
        instructionCount = Int(header.insn_count)
        capacity = Int(header.capacity)
        dropped = header.dropped
        var records: [Record] = []
        records.reserveCapacity(Int(header.count))
        for i in 0..<Int(header.count) {
            let raw = bytes.loadUnaligned(fromByteOffset: Int(Self.headerSize) + i * Int(Self.recordSize),
                                          as: neuron_trace_record.self)
            guard let kind = Kind(rawValue: raw.kind) else {
                throw .invalidTrace("record \(i) has kind \(raw.kind), which this library does not know.")
            }
            records.append(Record(start: raw.start_ns, end: raw.end_ns, work: raw.work,
                                  bytesRead: raw.bytes_read, bytesWritten: raw.bytes_written,
                                  instruction: Int(raw.index), opcode: raw.opcode, kind: kind,
                                  part: raw.part, partCount: raw.part_count, parts: raw.parts))
        }
        self.records = records
    }

    /// Read the trace a job wrote into `buffer` (once the job ended).
    public init(buffer: NeuronBuffer) throws(NeuronError) {
        let head = try buffer.read(UInt8.self, count: Int(Self.headerSize))
        let count = head.withUnsafeBytes { $0.loadUnaligned(as: neuron_trace_header.self) }.count
        let length = min(buffer.allocatedSize, Self.bufferSize(records: Int(count)))
        let bytes = try buffer.read(UInt8.self, count: Int(max(length, Self.headerSize)))
        let parsed: Result<NeuronJobTrace, NeuronError> = bytes.withUnsafeBytes { raw in
            do throws(NeuronError) { return .success(try NeuronJobTrace(bytes: raw)) } catch { return .failure(error) }
        }
        self = try parsed.get()
    }
}
