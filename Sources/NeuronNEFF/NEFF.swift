import CLibcrypto
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NeuronISA

/// Why a NEFF was refused: what is wrong, and where.
public struct NEFFError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// The fixed header: magic, sizes, flags, reserved bytes.
        case header
        /// A format or ISA version this library does not run.
        case version
        /// The payload's SHA-256 differs from the header's.
        case hash
        /// The payload archive: truncated, corrupt, unsafe names.
        case payload
        /// neff.json: missing, not JSON, or not the schema.
        case metadata
        /// A tensor: name, dtype, shape, or its weights' size.
        case tensor
        /// A program: its core, its slots, or the engine refused it.
        case program
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { "invalid NEFF (\(kind.rawValue)): \(message)" }
}

/// A named tensor of a model.
public struct NEFFTensor: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        /// Fed by the application for each inference.
        case input
        /// Produced for the application by each inference.
        case output
        /// Constant, stored in the NEFF, uploaded once per load.
        case weight
        /// Working memory of each loaded copy (activations).
        case scratch
    }

    public var name: String
    public var kind: Kind
    public var dtype: NeuronDType
    public var shape: [Int]

    public init(name: String, kind: Kind, dtype: NeuronDType, shape: [Int]) {
        self.name = name
        self.kind = kind
        self.dtype = dtype
        self.shape = shape
    }

    /// Bytes, or nil when a dimension is negative or the product overflows.
    public var byteCount: Int? {
        guard let count = Self.elementCount(of: shape) else { return nil }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.size)
        return overflow ? nil : bytes
    }

    /// Elements of a tensor of `shape`, or nil when a dimension is negative
    /// or the product overflows (shapes read from files are anyone's).
    public static func elementCount(of shape: [Int]) -> Int? {
        var count = 1
        for dim in shape {
            guard dim >= 0 else { return nil }
            let (product, overflow) = count.multipliedReportingOverflow(by: dim)
            guard !overflow else { return nil }
            count = product
        }
        return count
    }

    /// Elements.
    public var elementCount: Int { shape.reduce(1, *) }
}

/// One NeuronCore's program: its instruction stream and the tensor bound
/// to each of its slots (nil for an unused slot). It may wait for an
/// earlier program (by index), on another NeuronCore of the model.
public struct NEFFProgram: Sendable, Equatable {
    public var core: Int
    public var image: [UInt64]
    public var slots: [String?]
    public var after: Int?

    /// Instructions in the image, as its header counts them (0 for an
    /// image too short to have a header).
    public var instructionCount: Int { image.count >= 2 ? Int(UInt64(littleEndian: image[1]) >> 32) : 0 }

    public init(core: Int, image: [UInt64], slots: [String?], after: Int? = nil) {
        self.core = core
        self.image = image
        self.slots = slots
        self.after = after
    }
}

/// A compiled model: NEFF version 1 (docs/neff.md).
public struct NEFFModel: Sendable, Equatable {
    public static let magic: [UInt8] = Array("NEFF".utf8)
    public static let formatVersion: UInt16 = 1
    public static let isaVersion: UInt16 = 1
    public static let headerSize = 256
    public static let nameLength = 64
    /// Most NeuronCores one model spans (the NeuronCores of one device).
    public static let maxCores = 8

    public var name: String
    public var uuid: [UInt8]
    public var coreCount: Int
    public var tensors: [NEFFTensor]
    public var programs: [NEFFProgram]
    /// The bytes of each weight tensor, by name.
    public var weights: [String: [UInt8]]
    /// Layer names and the compiler's estimates per instruction (`debug.json`), if kept.
    public var debug: NEFFDebugInfo?

    public init(name: String, uuid: [UInt8]? = nil, coreCount: Int, tensors: [NEFFTensor],
                programs: [NEFFProgram], weights: [String: [UInt8]], debug: NEFFDebugInfo? = nil) {
        self.name = name
        self.uuid = uuid ?? (0..<16).map { _ in UInt8.random(in: 0...255) }
        self.coreCount = coreCount
        self.tensors = tensors
        self.programs = programs
        self.weights = weights
        self.debug = debug
    }

    public func tensor(named name: String) -> NEFFTensor? {
        tensors.first { $0.name == name }
    }

    /// The byte size of the tensor bound to each slot of `program` (0 for none).
    public func slotSizes(of program: NEFFProgram) -> [UInt64] {
        program.slots.map { name in UInt64(name.flatMap { tensor(named: $0)?.byteCount } ?? 0) }
    }

    public var inputs: [NEFFTensor] { tensors.filter { $0.kind == .input } }
    public var outputs: [NEFFTensor] { tensors.filter { $0.kind == .output } }
    /// Bytes of constant weights.
    public var weightBytes: Int { weights.values.reduce(0) { $0 + $1.count } }

    // MARK: The payload's metadata (neff.json)

    struct Metadata: Codable {
        struct Program: Codable {
            var core: Int
            var file: String
            var slots: [String?]
            var after: Int?
        }
        struct Tensor: Codable {
            var name: String
            var kind: NEFFTensor.Kind
            var dtype: NeuronDType
            var shape: [Int]
            var file: String?
        }
        var format: Int
        var name: String
        var cores: Int
        var tensors: [Tensor]
        var programs: [Program]
    }

    // MARK: Writing

    /// The file's bytes: the header, then the payload archive.
    public func serialized() throws(NEFFError) -> [UInt8] {
        try validate()
        var files: [(name: String, bytes: [UInt8])] = []
        var metadata = Metadata(format: Int(Self.formatVersion), name: name, cores: coreCount, tensors: [], programs: [])
        // Weights are stored by their index among the tensors, never by
        // name: names are the model's own text (any UTF-8, slashes too).
        for (index, tensor) in tensors.enumerated() {
            let file = tensor.kind == .weight ? Self.weightFile(index) : nil
            metadata.tensors.append(.init(name: tensor.name, kind: tensor.kind, dtype: tensor.dtype,
                                          shape: tensor.shape, file: file))
        }
        for (index, program) in programs.enumerated() {
            let file = "programs/\(index)-core\(program.core).isa"
            metadata.programs.append(.init(core: program.core, file: file, slots: program.slots, after: program.after))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard let json = try? encoder.encode(metadata) else {
            throw NEFFError(.metadata, "the metadata cannot be encoded")
        }
        files.append(("neff.json", Array(json)))
        for (index, program) in programs.enumerated() {
            let bytes = program.image.withUnsafeBytes { Array($0) }
            files.append(("programs/\(index)-core\(program.core).isa", bytes))
        }
        for (index, tensor) in tensors.enumerated() where tensor.kind == .weight {
            files.append((Self.weightFile(index), weights[tensor.name] ?? []))
        }
        if let debug {
            guard let json = try? encoder.encode(debug) else {
                throw NEFFError(.metadata, "the debug section cannot be encoded")
            }
            files.append((Self.debugFile, Array(json)))
        }
        let payload = Tar.write(files)
        var header = [UInt8](repeating: 0, count: Self.headerSize)
        func store<T: FixedWidthInteger>(_ value: T, at offset: Int) {
            withUnsafeBytes(of: value.littleEndian) { header.replaceSubrange(offset..<(offset + $0.count), with: $0) }
        }
        header.replaceSubrange(0..<4, with: Self.magic)
        store(Self.formatVersion, at: 4)
        store(Self.isaVersion, at: 6)
        store(UInt32(Self.headerSize), at: 8)
        store(UInt32(coreCount), at: 12)
        store(UInt64(payload.count), at: 16)
        header.replaceSubrange(24..<56, with: Self.sha256(payload))
        header.replaceSubrange(56..<72, with: uuid)
        let nameBytes = Array(name.utf8.prefix(Self.nameLength - 1))
        header.replaceSubrange(72..<(72 + nameBytes.count), with: nameBytes)
        return header + payload
    }

    public func write(to path: String) throws {
        try Data(serialized()).write(to: URL(fileURLWithPath: path))
    }

    // MARK: Reading

    public init(contentsOf path: String) throws {
        try self.init(bytes: try Self.readFile(path))
    }

    /// The file's bytes, read straight into the array (a large model's
    /// weights are copied once here, not through Data first).
    static func readFile(_ path: String) throws(NEFFError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw NEFFError(.header, "cannot read \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw NEFFError(.header, "cannot read \(path): not a regular file")
        }
        let size = Int(info.st_size)
        var failure: Int32 = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            count = 0
            guard let base = buffer.baseAddress else { return }
            while count < size {
                let got = read(fd, base + count, size - count)
                if got < 0 && errno == EINTR { continue }
                guard got > 0 else {
                    failure = got < 0 ? errno : EIO
                    break
                }
                count += got
            }
        }
        guard failure == 0, bytes.count == size else {
            throw NEFFError(.header, "cannot read \(path): \(String(cString: strerror(failure == 0 ? EIO : failure)))")
        }
        return bytes
    }

    /// Parse and check everything: header, versions, hash, archive,
    /// metadata, tensors, weights and every program (through the engine's
    /// validator). A refused file throws a `NEFFError` saying what and where.
    public init(bytes: [UInt8]) throws(NEFFError) {
        guard bytes.count >= Self.headerSize else {
            throw NEFFError(.header, "the file has \(bytes.count) bytes, fewer than the \(Self.headerSize)-byte header (truncated)")
        }
        guard Array(bytes[0..<4]) == Self.magic else {
            throw NEFFError(.header, "bytes 0-3 are not the magic \"NEFF\": this is not a NEFF file")
        }
        func load<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
            var value: T = 0
            withUnsafeMutableBytes(of: &value) { $0.copyBytes(from: bytes[offset..<(offset + MemoryLayout<T>.size)]) }
            return T(littleEndian: value)
        }
        let format = load(UInt16.self, at: 4), isa = load(UInt16.self, at: 6)
        guard format == Self.formatVersion else {
            throw NEFFError(.version, "format version \(format); this runtime reads version \(Self.formatVersion). Recompile the model with this release's neuron-cc.")
        }
        guard isa == Self.isaVersion else {
            throw NEFFError(.version, "ISA version \(isa); these NeuronCores run version \(Self.isaVersion). Recompile the model with this release's neuron-cc.")
        }
        let headerSize = Int(load(UInt32.self, at: 8))
        guard headerSize == Self.headerSize else {
            throw NEFFError(.header, "header size \(headerSize) (byte 8); version 1 has \(Self.headerSize)")
        }
        guard bytes[136..<Self.headerSize].allSatisfy({ $0 == 0 }) else {
            throw NEFFError(.header, "flags or reserved bytes 136-255 are not zero")
        }
        let cores = Int(load(UInt32.self, at: 12))
        guard (1...Int(Self.maxCores)).contains(cores) else {
            throw NEFFError(.header, "the model asks for \(cores) NeuronCores (byte 12); 1 to \(Self.maxCores) are possible")
        }
        let payloadSize = load(UInt64.self, at: 16)
        guard payloadSize == UInt64(bytes.count - Self.headerSize) else {
            throw NEFFError(.header, "the header announces a payload of \(payloadSize) bytes; the file has \(bytes.count - Self.headerSize) after the header (truncated or padded)")
        }
        let payload = bytes[Self.headerSize...]
        let digest = Self.sha256(payload)
        guard digest == Array(bytes[24..<56]) else {
            throw NEFFError(.hash, "the payload's SHA-256 does not match the header's: the file is corrupt")
        }
        let nameField = bytes[72..<(72 + Self.nameLength)]
        let name = String(decoding: nameField.prefix { $0 != 0 }, as: UTF8.self)

        let files = try Tar.read(payload)
        func file(_ path: String) throws(NEFFError) -> ArraySlice<UInt8> {
            guard let found = files.first(where: { $0.name == path }) else {
                throw NEFFError(.payload, "the archive has no \(path)")
            }
            return found.bytes
        }
        let metadata: Metadata
        do {
            metadata = try JSONDecoder().decode(Metadata.self, from: Data(try file("neff.json")))
        } catch let error as NEFFError {
            throw error
        } catch {
            throw NEFFError(.metadata, "neff.json does not follow the schema: \(error)")
        }
        guard metadata.format == Int(format), metadata.cores == cores, metadata.name == name else {
            throw NEFFError(.metadata, "neff.json's format, cores or name disagree with the header")
        }
        var tensors: [NEFFTensor] = []
        var weights: [String: [UInt8]] = [:]
        for entry in metadata.tensors {
            let tensor = NEFFTensor(name: entry.name, kind: entry.kind, dtype: entry.dtype, shape: entry.shape)
            if entry.kind == .weight {
                guard let path = entry.file else {
                    throw NEFFError(.tensor, "weight tensor \(entry.name) names no file")
                }
                weights[entry.name] = Array(try file(path))
            } else if entry.file != nil {
                throw NEFFError(.tensor, "\(entry.kind.rawValue) tensor \(entry.name) has a file; only weights do")
            }
            tensors.append(tensor)
        }
        var programs: [NEFFProgram] = []
        for (index, entry) in metadata.programs.enumerated() {
            let bytes = try file(entry.file)
            guard bytes.count % 8 == 0 else {
                throw NEFFError(.program, "program \(index) (\(entry.file)) has \(bytes.count) bytes, not a whole number of 8-byte words")
            }
            var image = [UInt64](repeating: 0, count: bytes.count / 8)
            image.withUnsafeMutableBytes { $0.copyBytes(from: bytes) }
            programs.append(NEFFProgram(core: entry.core, image: image, slots: entry.slots, after: entry.after))
        }
        var debug: NEFFDebugInfo?
        if let found = files.first(where: { $0.name == Self.debugFile }) {
            do {
                debug = try JSONDecoder().decode(NEFFDebugInfo.self, from: Data(found.bytes))
            } catch {
                throw NEFFError(.metadata, "\(Self.debugFile) does not follow the schema: \(error)")
            }
        }
        self.init(name: name, uuid: Array(bytes[56..<72]), coreCount: cores, tensors: tensors,
                  programs: programs, weights: weights, debug: debug)
        try validate()
    }

    /// `text` (a graph's name, say) as a name the header holds whole:
    /// without NUL and other control characters, cut at a character
    /// boundary to at most `nameLength - 1` bytes; "model" if nothing is left.
    public static func modelName(fitting text: String) -> String {
        var name = ""
        for character in text {
            if character.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) { continue }
            if name.utf8.count + character.utf8.count >= nameLength { break }
            name.append(character)
        }
        return name.isEmpty ? "model" : name
    }

    /// The archive member of the optional debug section.
    static let debugFile = "debug.json"

    /// The archive member of the weight tensor at `index` among the tensors.
    static func weightFile(_ index: Int) -> String { "weights/\(index).bin" }

    /// The longest tensor name, in UTF-8 bytes: what the C API's
    /// `nrt_tensor_info_t.name` holds with its NUL.
    public static let maxTensorNameBytes = 255

    /// Why `name` cannot name a tensor, or nil when it can: any UTF-8 text
    /// of 1 to `maxTensorNameBytes` bytes without NUL (the model's own
    /// names, as exporters write them: `gpu_0/data_0`, `onnx::Conv_3`,
    /// `input_1:0`).
    public static func tensorNameProblem(_ name: String) -> String? {
        if name.isEmpty { return "is empty" }
        if name.utf8.count > maxTensorNameBytes { return "has \(name.utf8.count) bytes; at most \(maxTensorNameBytes) are possible" }
        if name.utf8.contains(0) { return "contains a NUL byte" }
        return nil
    }

    /// Checks a model in memory, as the reader does a file.
    public func validate() throws(NEFFError) {
        guard (1...Int(Self.maxCores)).contains(coreCount) else {
            throw NEFFError(.header, "\(coreCount) NeuronCores; 1 to \(Self.maxCores) are possible")
        }
        guard uuid.count == 16 else { throw NEFFError(.header, "the UUID has \(uuid.count) bytes, not 16") }
        guard name.utf8.count < Self.nameLength, !name.isEmpty, !name.utf8.contains(0) else {
            throw NEFFError(.header, "the model name must have 1 to \(Self.nameLength - 1) bytes, none of them NUL")
        }
        var seen = Set<String>()
        var sizes: [String: Int] = [:]
        for tensor in tensors {
            if let problem = Self.tensorNameProblem(tensor.name) {
                throw NEFFError(.tensor, "tensor name \(tensor.name.debugDescription) \(problem)")
            }
            guard seen.insert(tensor.name).inserted else {
                throw NEFFError(.tensor, "tensor \(tensor.name.debugDescription) is defined twice")
            }
            // Inputs and outputs may be empty (a dimension of 0; bound to no slot).
            let mayBeEmpty = tensor.kind == .input || tensor.kind == .output
            guard tensor.shape.count <= 6, let bytes = tensor.byteCount, bytes > 0 || mayBeEmpty, bytes <= 1 << 40 else {
                throw NEFFError(.tensor, "tensor \(tensor.name) has shape \(tensor.shape): at most 6 dimensions, each at least 1, under 1 TiB")
            }
            guard tensor.shape.allSatisfy({ $0 >= (mayBeEmpty ? 0 : 1) }) else {
                throw NEFFError(.tensor, "tensor \(tensor.name) has shape \(tensor.shape): every dimension must be at least 1")
            }
            if tensor.kind == .weight {
                guard let data = weights[tensor.name] else {
                    throw NEFFError(.tensor, "weight tensor \(tensor.name) has no data")
                }
                guard data.count == bytes else {
                    throw NEFFError(.tensor, "weight tensor \(tensor.name) is \(tensor.dtype.name) \(tensor.shape), \(bytes) bytes, but its data has \(data.count)")
                }
            }
            sizes[tensor.name] = bytes
        }
        for key in weights.keys where tensor(named: key)?.kind != .weight {
            throw NEFFError(.tensor, "weights \(key) belong to no weight tensor")
        }
        guard !programs.isEmpty else { throw NEFFError(.program, "the model has no program") }
        for (index, program) in programs.enumerated() {
            guard (0..<coreCount).contains(program.core) else {
                throw NEFFError(.program, "program \(index) runs on NeuronCore \(program.core); the model has \(coreCount)")
            }
            if let after = program.after, !(0..<index).contains(after) {
                throw NEFFError(.program, "program \(index) waits for program \(after), which does not come before it")
            }
            guard program.slots.count <= NeuronProgram.maxSlots else {
                throw NEFFError(.program, "program \(index) binds \(program.slots.count) slots; at most \(NeuronProgram.maxSlots)")
            }
            var slotSizes: [UInt64] = []
            for (slot, bound) in program.slots.enumerated() {
                guard let bound else {
                    slotSizes.append(0)
                    continue
                }
                guard let size = sizes[bound] else {
                    throw NEFFError(.program, "program \(index) binds slot \(slot) to \(bound), which is no tensor of the model")
                }
                guard size > 0 else {
                    throw NEFFError(.program, "program \(index) binds slot \(slot) to \(bound), which is empty; an empty tensor binds no slot")
                }
                slotSizes.append(UInt64(size))
            }
            do {
                try NeuronEngine.validate(program.image, slotSizes: slotSizes)
            } catch {
                throw NEFFError(.program, "program \(index) (NeuronCore \(program.core)): \(error.description)")
            }
        }
        try debug?.validate(instructionCounts: programs.map(\.instructionCount))
    }
}

extension NEFFModel {
    /// The SHA-256 of `bytes`, as the header's bytes 24-55 hold the
    /// payload's (docs/neff.md). OpenSSL's libcrypto computes it.
    public static func sha256<Bytes: Collection>(_ bytes: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
        var digest = [UInt8](repeating: 0, count: 32)
        let done = bytes.withContiguousStorageIfAvailable { digestOf($0, into: &digest) }
            ?? Array(bytes).withUnsafeBufferPointer { digestOf($0, into: &digest) }
        // EVP_Digest fails only when OpenSSL cannot allocate its context.
        precondition(done, "OpenSSL's EVP_Digest(SHA-256) failed: out of memory?")
        return digest
    }

    private static func digestOf(_ data: UnsafeBufferPointer<UInt8>, into digest: inout [UInt8]) -> Bool {
        var length: UInt32 = 0
        let ok = digest.withUnsafeMutableBufferPointer { out in
            // A zero-length buffer may have no address; OpenSSL reads none.
            withUnsafeBytes(of: 0) { empty in
                EVP_Digest(data.baseAddress.map(UnsafeRawPointer.init) ?? empty.baseAddress, data.count,
                           out.baseAddress, &length, EVP_sha256(), nil)
            }
        }
        return ok == 1 && length == 32
    }
}
