import Foundation
import NeuronDevice
import NeuronNEFF
import NeuronCLI
import NeuronRuntime
import Testing
import TestSupport

@Suite("neuron-run and .npy files")
struct NeuronRunTests {
    /// The backend under test: the driver when it is loaded, else one simulated device.
    static var environment: [String: String] {
        driverLoaded ? ["NEURON_BACKEND": "kernel"] : ["NEURON_BACKEND": "sim", "NEURON_SIM_DEVICES": "1"]
    }

    @Test(".npy round trip, and bad files refused with the reason")
    func npy() throws {
        let values = sample(6, seed: 3)
        let array = NPY.Array(dtype: .float32, shape: [2, 3], bytes: values.withUnsafeBytes { Array($0) })
        let bytes = try NPY.encode(array)
        #expect((bytes.count - array.bytes.count) % 64 == 0)
        #expect(try NPY.decode(bytes) == array)
        // Header text replaced in place, byte for byte (the magic's 0x93
        // is no UTF-8, so offsets are found in the bytes).
        func replacing(_ old: String, with new: String) throws -> [UInt8] {
            let needle = Array(old.utf8)
            let at = try #require((0...(bytes.count - needle.count)).first { Array(bytes[$0..<($0 + needle.count)]) == needle })
            var changed = bytes
            changed.replaceSubrange(at..<(at + needle.count), with: Array(new.utf8))
            return changed
        }
        #expect(throws: NPYError("array is not a usable .npy file: Fortran order; save it in C order (np.ascontiguousarray)")) {
            try NPY.decode(try replacing("False", with: "True "))
        }
        #expect(throws: NPYError.self) { try NPY.decode(Array(bytes.dropLast(4))) }
        #expect(throws: NPYError.self) { try NPY.decode([1, 2, 3]) }
        // A valid file of a type the engine has not is named as such, with what to do.
        #expect(throws: NPYError("x.npy holds <c8 values; little-endian float16, float32, float64, int8 to int64, uint8 to uint64 and bool are taken: convert it, as np.save(path, x.astype(np.float32))")) {
            try NPY.decode(try replacing("<f4", with: "<c8"), name: "x.npy")
        }
        #expect(throws: NPYError("x.npy holds big-endian >f4 values; little-endian float16, float32, float64, int8 to int64, uint8 to uint64 and bool are taken: convert it, as np.save(path, x.astype(np.float32))")) {
            try NPY.decode(try replacing("<f4", with: ">f4"), name: "x.npy")
        }
        // ml_dtypes' float8 and int4 save as one-byte records: named, with what to save instead.
        #expect(throws: NPYError("x.npy holds <V1 values (one-byte records: ml_dtypes' float8, float4 and int4 save so; numpy cannot read them back as such): save float8 and float4 as float32, int4 and int2 as int8, uint4 and uint2 as uint8; little-endian float16, float32, float64, int8 to int64, uint8 to uint64 and bool are taken: convert it, as np.save(path, x.astype(np.float32))")) {
            try NPY.decode(try replacing("<f4", with: "<V1"), name: "x.npy")
        }
        #expect(throws: NPYError("numpy has no float8_e4m3fn; convert it to float32 first")) {
            try NPY.encode(NPY.Array(dtype: .float8E4M3FN, shape: [1], bytes: [0]))
        }
        // Every engine type numpy has round-trips, under numpy's own type string.
        for type in NeuronDType.allCases where type.npyCarrier == type {
            let typed = NPY.Array(dtype: type, shape: [3], bytes: type.bytes([1, 0, 2]))
            let file = try NPY.encode(typed)
            #expect(try NPY.decode(file) == typed, "\(type)")
        }
    }

    @Test("neuron-run runs a NEFF with an .npy input, writes the outputs, reports percentiles")
    func run() throws {
        let dir = "/tmp/neuron-run-test-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try tinyModel().write(to: "\(dir)/tiny.neff")
        let x = sample(16, seed: 44)
        let input = try NPY.encode(NPY.Array(dtype: .float32, shape: [2, 8], bytes: x.withUnsafeBytes { Array($0) }))
        try Data(input).write(to: URL(fileURLWithPath: "\(dir)/x.npy"))
        let environment = Self.environment
        let result = try runTool("neuron-run", ["\(dir)/tiny.neff", "--input", "x=\(dir)/x.npy", "--output-dir", dir,
                                                "--iterations", "50", "--cores", "2", "--concurrency", "4", "--json"],
                                 environment: environment)
        #expect(result.status == 0, "\(result.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let latency = report?["latency_ms"] as? [String: Double]
        #expect(latency?["p50"] != nil && latency?["p90"] != nil && latency?["p99"] != nil)
        #expect((report?["iterations"] as? Int) == 50 && (report?["replicas"] as? Int) == 2)
        #expect(((report?["throughput_per_s"] as? Double) ?? 0) > 0)
        let y = try NPY.decode(Array(try Data(contentsOf: URL(fileURLWithPath: "\(dir)/y.npy"))))
        #expect(y.shape == [2, 4])
        let got = y.bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        #expect(got.map(\.bitPattern) == tinyReference(x).map(\.bitPattern))

        let bad = try runTool("neuron-run", ["\(dir)/tiny.neff", "--input", "nope=\(dir)/x.npy"], environment: environment)
        #expect(bad.status != 0 && bad.stderr.contains("the model \"tiny\" has no input \"nope\"; its inputs: \"x\""), "\(bad.stderr)")
        try Data([0x4e, 0x45, 0x46, 0x46, 9, 9]).write(to: URL(fileURLWithPath: "\(dir)/junk.neff"))
        let junk = try runTool("neuron-run", ["\(dir)/junk.neff"], environment: environment)
        #expect(junk.status != 0 && junk.stderr.contains("invalid NEFF"), "\(junk.stderr)")
    }

    @Test("neuron-run takes and writes any tensor name: --input splits after the name, outputs are escaped file names inside --output-dir")
    func anyName() throws {
        let root = "/tmp/neuron-run-names-\(getpid())", dir = root + "/out"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        var model = tinyModel()
        let input = "gpu_0/data=0", output = "../prob 1"
        model.tensors[0].name = input
        model.tensors[3].name = output
        model.programs[0].slots = [input, "w", "b", output]
        try model.write(to: "\(root)/m.neff")
        let x = sample(16, seed: 45)
        try Data(try NPY.encode(NPY.Array(dtype: .float32, shape: [2, 8], bytes: x.withUnsafeBytes { Array($0) })))
            .write(to: URL(fileURLWithPath: "\(root)/x=1.npy"))
        let result = try runTool("neuron-run", ["\(root)/m.neff", "--input", "\(input)=\(root)/x=1.npy", "--output-dir", dir,
                                                "--iterations", "1"], environment: Self.environment)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("output \"../prob 1\": "), "\(result.stdout)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["%2E.%2Fprob%201.npy"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: root).sorted() == ["m.neff", "out", "x=1.npy"])
        let y = try NPY.decode(Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/%2E.%2Fprob%201.npy"))))
        #expect(y.bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }.map(\.bitPattern) == tinyReference(x).map(\.bitPattern))

        let twice = try runTool("neuron-run", ["\(root)/m.neff", "--input", "\(input)=\(root)/x=1.npy", "--input",
                                               "\(input)=\(root)/x=1.npy", "--iterations", "1"], environment: Self.environment)
        #expect(twice.status != 0 && twice.stderr.contains("twice"), "\(twice.stderr)")
        let missing = try runTool("neuron-run", ["\(root)/m.neff", "--input", "\(input)=\(root)/none.npy", "--iterations", "1"],
                                  environment: Self.environment)
        #expect(missing.status != 0 && missing.stderr.contains("cannot read \(root)/none.npy")
                && !missing.stderr.contains("NSCocoaErrorDomain"), "\(missing.stderr)")
    }

    @Test("tensor file names: plain names as they are, others escaped, all different, none a path")
    func tensorFileNames() {
        #expect(tensorFileName("y", index: 0) == "y.npy")
        #expect(tensorFileName("input_1.0-a", index: 0) == "input_1.0-a.npy")
        #expect(tensorFileName("gpu_0/softmax", index: 0) == "gpu_0%2Fsoftmax.npy")
        #expect(tensorFileName(".hidden", index: 0) == "%2Ehidden.npy")
        #expect(tensorFileName("é", index: 0) == "%C3%A9.npy")
        #expect(tensorFileName(String(repeating: "/", count: 100), index: 7) == "%tensor-7.npy")
        let names = ["a/b", "a%2Fb", "a_b", "..", ".", "%tensor-1", "a b", "a\u{0}b", "A", "a", "onnx::Conv_3", "input_1:0"]
        let files = names.enumerated().map { tensorFileName($0.element, index: $0.offset) }
        #expect(Set(files).count == names.count, "\(files)")
        for file in files {
            #expect(!file.contains("/") && !file.hasPrefix(".") && file.utf8.count <= 255, "\(file)")
        }
        #expect(displayName("gpu_0/data_0") == "gpu_0/data_0")
        #expect(displayName("a b") == "\"a b\"" && displayName("x\u{1b}[2J") == "\"x\\u{1B}[2J\"")
    }

    @Test("neuron-run --scaling measures one replica alone, then all, and reports the ratio")
    func scaling() throws {
        let dir = "/tmp/neuron-run-scaling-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let environment = Self.environment
        let result = try runTool("neuron-run", ["\(dir)/mlp.neff", "--example-mlp", "--example-batch", "2",
                                                "--example-width", "32", "--iterations", "40", "--cores", "2",
                                                "--concurrency", "4", "--scaling", "--scaling-rounds", "2", "--json"],
                                 environment: environment)
        #expect(result.status == 0, "\(result.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let baseline = report?["baseline"] as? [String: Any]
        #expect((baseline?["replicas"] as? Int) == 1 && (baseline?["concurrency"] as? Int) == 2)
        let alone = baseline?["throughput_per_s"] as? Double ?? 0, all = report?["throughput_per_s"] as? Double ?? 0
        let speedup = report?["speedup"] as? Double ?? 0
        #expect(alone > 0 && all > 0)
        #expect(abs(speedup - all / max(alone, 1e-9)) < 1e-6 * max(speedup, 1))
        #expect((report?["round_speedups"] as? [Double])?.count == 2)
        let model = try NEFFModel(contentsOf: "\(dir)/mlp.neff")
        #expect(model.inputs.first?.shape == [2, 32])

        let bad = try runTool("neuron-run", ["\(dir)/mlp.neff", "--example-mlp", "--example-width", "8"],
                              environment: environment)
        #expect(bad.status != 0 && bad.stderr.contains("--example-width"), "\(bad.stderr)")
    }

    @Test("neuron-run --baseline alternates with another NEFF of the same inputs and reports the ratio")
    func baseline() throws {
        let dir = "/tmp/neuron-run-baseline-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let environment = Self.environment
        try tinyModel().write(to: "\(dir)/tiny.neff")
        try tinyModel().write(to: "\(dir)/other.neff")
        let result = try runTool("neuron-run", ["\(dir)/tiny.neff", "--baseline", "\(dir)/other.neff", "--iterations", "20",
                                                "--concurrency", "2", "--scaling-rounds", "2", "--json"],
                                 environment: environment)
        #expect(result.status == 0, "\(result.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let baseline = report?["baseline"] as? [String: Any]
        #expect((baseline?["model"] as? String) == "tiny" && (baseline?["concurrency"] as? Int) == 2)
        let other = baseline?["throughput_per_s"] as? Double ?? 0, mine = report?["throughput_per_s"] as? Double ?? 0
        #expect(other > 0 && mine > 0)
        #expect(abs((report?["speedup"] as? Double ?? 0) - mine / max(other, 1e-9)) < 1e-6 * max(mine / max(other, 1e-9), 1))

        // A baseline that takes other inputs, and --baseline with --scaling, are refused.
        try NEFFExamples.mlp(batch: 2, width: 32).write(to: "\(dir)/mlp.neff")
        let wrong = try runTool("neuron-run", ["\(dir)/tiny.neff", "--baseline", "\(dir)/mlp.neff"], environment: environment)
        #expect(wrong.status != 0 && wrong.stderr.contains("same inputs"), "\(wrong.stderr)")
        let both = try runTool("neuron-run", ["\(dir)/tiny.neff", "--baseline", "\(dir)/other.neff", "--scaling"],
                               environment: environment)
        #expect(both.status != 0 && both.stderr.contains("one at a time"), "\(both.stderr)")
    }

    @Test("neuron-run carries int4 as int8 and float8 as float32 in .npy files, checks their range, and takes and writes empty tensors")
    func smallAndEmptyTypes() throws {
        let root = "/tmp/neuron-run-small-\(getpid())", dir = root + "/out"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        var program = NeuronProgram()
        program.cast(.contiguous(slot: 2, dims: [4], dtype: .int32), .contiguous(slot: 0, dims: [4], dtype: .int4))
        program.cast(.contiguous(slot: 3, dims: [4], dtype: .float8E4M3FN), .contiguous(slot: 1, dims: [4], dtype: .float32))
        let model = NEFFModel(
            name: "small", coreCount: 1,
            tensors: [NEFFTensor(name: "q", kind: .input, dtype: .int4, shape: [4]),
                      NEFFTensor(name: "f", kind: .input, dtype: .float32, shape: [4]),
                      NEFFTensor(name: "none", kind: .input, dtype: .float32, shape: [0]),
                      NEFFTensor(name: "w", kind: .output, dtype: .int32, shape: [4]),
                      NEFFTensor(name: "e", kind: .output, dtype: .float8E4M3FN, shape: [4]),
                      NEFFTensor(name: "void", kind: .output, dtype: .float32, shape: [2, 0])],
            programs: [NEFFProgram(core: 0, image: program.image(), slots: ["q", "f", "w", "e"])], weights: [:])
        try model.write(to: "\(root)/m.neff")
        func save(_ name: String, _ type: NeuronDType, _ shape: [Int], _ values: [Double]) throws {
            try Data(try NPY.encode(NPY.Array(dtype: type, shape: shape, bytes: type.bytes(values))))
                .write(to: URL(fileURLWithPath: "\(root)/\(name).npy"))
        }
        try save("q", .int8, [4], [-8, 7, -1, 3])
        try save("f", .float32, [4], [0.3, 500, -1e6, 2])
        try save("none", .float32, [0], [])
        try save("wide", .int8, [4], [-8, 9, 0, 0])
        try save("qf", .float32, [4], [1, 2, 3, 4])
        func run(_ q: String) throws -> ToolResult {
            try runTool("neuron-run", ["\(root)/m.neff", "--input", "q=\(root)/\(q).npy", "--input", "f=\(root)/f.npy",
                                       "--input", "none=\(root)/none.npy", "--output-dir", dir, "--iterations", "1"],
                        environment: Self.environment)
        }
        let result = try run("q")
        #expect(result.status == 0, "\(result.stderr)")
        func load(_ name: String) throws -> NPY.Array {
            try NPY.decode(Array(try Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(name).npy"))))
        }
        let w = try load("w"), e = try load("e"), void = try load("void")
        #expect(w.dtype == .int32 && NeuronDType.int32.values(w.bytes) == [-8, 7, -1, 3])
        #expect(e.dtype == .float32 && NeuronDType.float32.values(e.bytes) == [0.3125, 448, -448, 2])
        #expect(void.dtype == .float32 && void.shape == [2, 0] && void.bytes.isEmpty)
        let wide = try run("wide")
        #expect(wide.status != 0 && wide.stderr.contains("holds 9, which int4 (input q) cannot hold"), "\(wide.stderr)")
        let floats = try run("qf")
        #expect(floats.status != 0 && floats.stderr.contains("x.astype(np.int8)"), "\(floats.stderr)")
    }
}
