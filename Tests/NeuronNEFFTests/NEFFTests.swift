import Foundation
import NeuronDevice
@testable import NeuronNEFF
import Testing
import TestSupport

/// `bytes` with the payload's hash recomputed, as a forger would.
func rehashed(_ bytes: [UInt8]) -> [UInt8] {
    var out = bytes
    out.replaceSubrange(24..<56, with: NEFFModel.sha256(bytes[256...]))
    return out
}

func expectRefused(_ bytes: [UInt8], _ kind: NEFFError.Kind, mentioning text: String,
                   sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        _ = try NEFFModel(bytes: bytes)
        Issue.record("accepted", sourceLocation: sourceLocation)
    } catch {
        #expect(error.kind == kind, "\(error)", sourceLocation: sourceLocation)
        #expect(error.message.contains(text), "\(error)", sourceLocation: sourceLocation)
    }
}

@Suite("NEFF: the model file")
struct NEFFTests {
    @Test("a model written and read back is the same model")
    func roundTrip() throws {
        let model = tinyModel()
        let bytes = try model.serialized()
        #expect(Array(bytes[0..<4]) == Array("NEFF".utf8))
        let read = try NEFFModel(bytes: bytes)
        #expect(read == model)
        #expect(read.inputs.map(\.name) == ["x"] && read.outputs.map(\.name) == ["y"])
        #expect(read.weightBytes == 36 * 4)
        // Through a file, and files that cannot be read.
        let path = "/tmp/neff-roundtrip-\(getpid()).neff"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try model.write(to: path)
        #expect(try NEFFModel(contentsOf: path) == model)
        for (bad, reason) in [("/nonexistent/m.neff", "No such file"), ("/tmp", "not a regular file")] {
            do {
                _ = try NEFFModel(contentsOf: bad)
                Issue.record("\(bad) was read")
            } catch let error as NEFFError {
                #expect(error.description.contains("cannot read \(bad)") && error.description.contains(reason), "\(error)")
            }
        }
    }

    @Test("the payload is a tar that tar lists")
    func tarLists() throws {
        let bytes = try tinyModel().serialized()
        let path = "/tmp/neff-payload-\(getpid()).tar"
        try Data(bytes[256...]).write(to: URL(fileURLWithPath: path))
        defer { unlink(path) }
        let tar = ["/bin/tar", "/usr/bin/tar"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let tar else { return }
        let result = try runTool(tar, ["tf", path])
        #expect(result.status == 0, "\(result.stderr)")
        let listing = result.stdout
        #expect(listing.split(separator: "\n") == ["neff.json", "programs/0-core0.isa", "weights/1.bin", "weights/2.bin"])
    }

    @Test("bad magic, versions, sizes and flags are refused at the header")
    func header() throws {
        let good = try tinyModel().serialized()
        var bad = good
        bad[0] = UInt8(ascii: "X")
        expectRefused(bad, .header, mentioning: "magic")
        bad = good
        bad[4] = 2
        expectRefused(bad, .version, mentioning: "format version 2")
        bad = good
        bad[6] = 9
        expectRefused(bad, .version, mentioning: "ISA version 9")
        bad = good
        bad[140] = 1
        expectRefused(bad, .header, mentioning: "reserved")
        bad = good
        bad[12] = 0
        expectRefused(bad, .header, mentioning: "NeuronCores")
        expectRefused(Array(good.prefix(100)), .header, mentioning: "header")
        expectRefused(Array(good.dropLast(700)), .header, mentioning: "truncated")
        expectRefused(good + [0], .header, mentioning: "payload")
    }

    @Test("the header's digest is SHA-256: the standard's test vectors, from slices and any collection")
    func sha256Vectors() {
        func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
        // FIPS 180-2, appendix B: "abc", 448 bits, a million "a"; and the empty message.
        #expect(hex(NEFFModel.sha256(Array("abc".utf8)))
                == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(hex(NEFFModel.sha256([UInt8]()))
                == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let message = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        let expected = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        #expect(hex(NEFFModel.sha256(message)) == expected)
        #expect(hex(NEFFModel.sha256(([0, 1] + message + [2])[2..<(message.count + 2)])) == expected)
        #expect(hex(NEFFModel.sha256(message.lazy.map { $0 })) == expected)
        #expect(hex(NEFFModel.sha256([UInt8](repeating: 0x61, count: 1_000_000)))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test("a changed payload byte fails the hash; a forged hash meets the archive's checks")
    func corruption() throws {
        let good = try tinyModel().serialized()
        var bad = good
        bad[256 + 700] ^= 0x40
        expectRefused(bad, .hash, mentioning: "SHA-256")
        bad = good
        bad[256 + 10] ^= 0x01            // inside the first tar header's name
        expectRefused(rehashed(bad), .payload, mentioning: "checksum")
        // Random corruption anywhere, even with a forged hash: refused, never a crash.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            var bytes = good
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                let at = Int.random(in: 256..<bytes.count, using: &generator)
                bytes[at] = UInt8.random(in: 0...255, using: &generator)
            }
            _ = try? NEFFModel(bytes: rehashed(bytes))
        }
    }

    @Test("tensors, weights and programs are checked, with the culprit named")
    func contents() throws {
        var model = tinyModel()
        model.weights["w"] = Array(repeating: 0, count: 12)
        #expect(throws: NEFFError(.tensor, "weight tensor w is float32 [8, 4], 128 bytes, but its data has 12")) {
            try model.serialized()
        }
        model = tinyModel()
        model.programs[0].slots[2] = "nothing"
        #expect(throws: NEFFError(.program, "program 0 binds slot 2 to nothing, which is no tensor of the model")) {
            try model.serialized()
        }
        model = tinyModel()
        model.tensors[3].shape = [2, 3]          // the matmul writes [2, 4]
        #expect(throws: NEFFError.self) { try model.serialized() }
        model = tinyModel()
        model.programs[0].core = 1
        #expect(throws: NEFFError(.program, "program 0 runs on NeuronCore 1; the model has 1")) {
            try model.serialized()
        }
        model = tinyModel()
        var image = model.programs[0].image
        image[image.count - 8] = 0xff            // the last instruction's opcode
        model.programs[0].image = image
        do {
            _ = try model.serialized()
            Issue.record("an unknown opcode was accepted")
        } catch {
            #expect(error.kind == .program && error.message.contains("Instruction 1"), "\(error)")
        }
        model = tinyModel()
        model.tensors.append(NEFFTensor(name: "x", kind: .scratch, dtype: .float32, shape: [1]))
        #expect(throws: NEFFError(.tensor, "tensor \"x\" is defined twice")) { try model.serialized() }
    }

    /// tinyModel() with its tensors renamed (x, w, b, y in that order).
    static func renamed(_ names: [String]) -> NEFFModel {
        var model = tinyModel()
        let old = model.tensors.map(\.name)
        for index in model.tensors.indices { model.tensors[index].name = names[index] }
        model.weights = Dictionary(uniqueKeysWithValues: model.weights.map { (names[old.firstIndex(of: $0.key) ?? 0], $0.value) })
        model.programs[0].slots = model.programs[0].slots.map { slot in slot.map { names[old.firstIndex(of: $0) ?? 0] } }
        return model
    }

    @Test("tensors keep the names exporters write, any UTF-8 of 1 to 255 bytes; no archive path is made of them")
    func anyName() throws {
        let exported = ["gpu_0/data_0", "/layer1/layer1.0/conv1/Conv_output_0", "onnx::Conv_3", "input_1:0"]
        let hostile = ["../../etc/passwd", "a b\tc\u{1b}[2J", String(repeating: "é", count: 127) + "x", "weights/1.bin",
                       "/", "=", "neff.json", "%2F", "\u{202e}gnp.exe"]
        for names in [exported, Array(hostile[0..<4]), Array(hostile[4..<8]), [hostile[8], "w", "b", "y"]] {
            let model = Self.renamed(names)
            let bytes = try model.serialized()
            let read = try NEFFModel(bytes: bytes)
            #expect(read == model, "\(names)")
            #expect(read.tensors.map(\.name) == names)
            // The archive's members stay neff.json, programs/ and weights/<index>.bin.
            let members = try Tar.read(bytes[256...]).map(\.name)
            #expect(members == ["neff.json", "programs/0-core0.isa", "weights/1.bin", "weights/2.bin"], "\(members)")
        }
        #expect(String(repeating: "é", count: 127).utf8.count + 1 == 255)
        for (bad, reason) in [("", "is empty"), (String(repeating: "n", count: 256), "has 256 bytes"), ("a\u{0}b", "NUL")] {
            #expect(NEFFModel.tensorNameProblem(bad)?.contains(reason) == true, "\(bad.debugDescription)")
            do {
                _ = try Self.renamed([bad, "w", "b", "y"]).serialized()
                Issue.record("\(bad.debugDescription) was written")
            } catch {
                #expect(error.kind == .tensor && error.message.contains(reason), "\(error)")
            }
        }
    }

    @Test("a NEFF's program runs on a NeuronCore and computes its definition")
    func runs() throws {
        let model = try NEFFModel(bytes: try tinyModel().serialized())
        let device = try backendUnderTest().open(device: 0)
        defer { device.close() }
        let queue = try device.queue(core: 0)
        var buffers: [String: NeuronBuffer] = [:]
        for tensor in model.tensors {
            buffers[tensor.name] = try device.allocate(size: UInt64(tensor.byteCount ?? 0))
        }
        for (name, bytes) in model.weights { try buffers[name]?.write(bytes) }
        let x = sample(16, seed: 9)
        try buffers["x"]?.write(x)
        let program = model.programs[0]
        let job = try queue.submit(image: program.image, buffers: program.slots.map { $0.flatMap { buffers[$0] } })
        #expect(try finish(queue, job).status == .ok)
        let want = tinyReference(x)
        #expect(try buffers["y"]?.read(Float.self, count: 8).map(\.bitPattern) == want.map(\.bitPattern))
    }
}
