import Foundation
@testable import NeuronCompiler
import NeuronDevice
import NeuronNEFF
@testable import NeuronProfile
import NeuronRuntime
import Testing
import TestSupport

/// Profiles from the compiler's layer names to the views: the NEFF's debug
/// section, captures on the backend under test (the driver in the VM),
/// the summary and the Perfetto trace.
@Suite("neuron-profile: layer names, captures, summaries, traces")
struct ProfileTests {
    /// conv → batchnorm → relu (fused into one layer), a max pool, a
    /// flatten and a matmul + add (fused), a softmax.
    static func cnn() throws -> Graph {
        var graph = Onnx_GraphProto()
        graph.name = "small_cnn"
        graph.input = [ONNXBuilder.value("x", .float, [1, 3, 16, 16])]
        graph.output = [ONNXBuilder.value("y", .float, [1, 10])]
        func constant(_ name: String, _ values: [Float], _ dims: [Int64]) -> Onnx_TensorProto {
            var t = ONNXBuilder.tensor(name, .float, dims)
            t.floatData = values
            return t
        }
        graph.initializer = [constant("w", sample(8 * 3 * 9, seed: 1), [8, 3, 3, 3]), constant("g", sample(8, seed: 2), [8]),
                             constant("b", sample(8, seed: 3), [8]), constant("mu", sample(8, seed: 4), [8]),
                             constant("var", sample(8, seed: 5).map { abs($0) + 0.5 }, [8]),
                             constant("fc", sample(8 * 8 * 8 * 10, seed: 6), [8 * 8 * 8, 10]),
                             constant("fcb", sample(10, seed: 7), [10])]
        graph.node = [
            ONNXBuilder.node("Conv", ["x", "w"], ["c"], name: "conv1", [ONNXBuilder.attribute("pads", ints: [1, 1, 1, 1])]),
            ONNXBuilder.node("BatchNormalization", ["c", "g", "b", "mu", "var"], ["bn"], name: "bn1"),
            ONNXBuilder.node("Relu", ["bn"], ["r"], name: "relu1"),
            ONNXBuilder.node("MaxPool", ["r"], ["p"], name: "pool1",
                             [ONNXBuilder.attribute("kernel_shape", ints: [2, 2]), ONNXBuilder.attribute("strides", ints: [2, 2])]),
            ONNXBuilder.node("Flatten", ["p"], ["f"], name: "flatten"),
            ONNXBuilder.node("MatMul", ["f", "fc"], ["m"], name: "fc"),
            ONNXBuilder.node("Add", ["m", "fcb"], ["logits"], name: "fc_bias"),
            ONNXBuilder.node("Softmax", ["logits"], ["y"], name: "softmax"),
        ]
        return try ONNXImporter.load(try ONNXBuilder.bytes(ONNXBuilder.model(graph)))
    }

    /// Run `model` `count` times with a recorder (on `backend`, else the
    /// backend under test); the capture.
    static func capture(_ model: NEFFModel, count: Int, backend: (any NeuronBackend)? = nil) throws -> NeuronProfile {
        let runtime = try NeuronRuntime(backend: try backend ?? backendUnderTest(), environment: [:])
        defer { runtime.close() }
        let recorder = NeuronProfileRecorder()
        var options = NeuronLoadOptions()
        options.profiler = recorder
        let loaded = try runtime.load(model, options: options)
        defer { loaded.unload() }
        let inputs = try loaded.allocateInputs(), outputs = try loaded.allocateOutputs()
        for (name, tensor) in inputs {
            try tensor.write(sample((model.tensor(named: name)?.elementCount) ?? 0, seed: 9))
        }
        for _ in 0..<count { try loaded.execute(inputs: inputs, outputs: outputs) }
        let (executions, notKept) = recorder.executions
        return NeuronProfile(tool: "test", host: .current(backend: runtime.backend.name, api: "1.8"),
                             model: try NeuronProfile.Model(model), executions: executions, executionsNotKept: notKept)
    }

    @Test("the debug section names each instruction's layer and fused nodes; --no-debug-info leaves it out; both load")
    func debugSection() throws {
        let (model, report) = try NeuronCompiler.compile(try Self.cnn())
        let debug = try #require(model.debug)
        let program = try #require(model.programs.first)
        #expect(debug.programs.count == 1 && debug.programs[0].layers.count == program.instructionCount)
        #expect(debug.programs[0].estimates.count == program.instructionCount && report.instructions == program.instructionCount)
        let layers = (0..<program.instructionCount).compactMap { debug.layer(program: 0, instruction: $0) }
        #expect(layers.count == program.instructionCount)
        let conv = try #require(layers.first { $0.op == "Conv" })
        #expect(conv.nodes.map(\.name) == ["conv1", "bn1", "relu1"] && conv.opGroup == "Conv+BatchNormalization+Relu")
        #expect(layers.contains { $0.nodes.map(\.name) == ["pool1"] })
        #expect(layers.contains { $0.nodes.map(\.name) == ["fc", "fc_bias"] && $0.opGroup == "MatMul+Add" })
        #expect(layers.contains { $0.nodes.map(\.name) == ["softmax"] })

        // Through the file and back; without it; with a broken one.
        let reread = try NEFFModel(bytes: try model.serialized())
        #expect(reread.debug == model.debug)
        let (bare, _) = try NeuronCompiler.compile(try Self.cnn(), options: CompileOptions(debugInfo: false))
        let bareRead = try NEFFModel(bytes: try bare.serialized())
        #expect(bare.debug == nil && bareRead.debug == nil)
        #expect(bare.programs.map(\.image) == model.programs.map(\.image))
        var broken = model
        broken.debug?.programs[0].layers.removeLast()
        #expect(throws: NEFFError.self) { try broken.serialized() }
        broken = model
        broken.debug?.programs[0].layers[0] = 999
        #expect { try broken.validate() } throws: { "\($0)".contains("layer 999") }
    }

    @Test("a capture holds every instruction of every execution with its layer; the summary adds up and keeps time order")
    func captureAndSummary() throws {
        let (model, _) = try NeuronCompiler.compile(try Self.cnn())
        let profile = try Self.capture(model, count: 5)
        #expect(profile.executions.count == 5 && profile.executionsNotKept == 0)
        let count = model.programs[0].instructionCount
        for execution in profile.executions {
            let job = try #require(execution.jobs.first)
            #expect(execution.jobs.count == 1 && job.trace.status == 1 && job.trace.dropped == 0)
            // Each instruction once, in order (none is large enough to be sliced).
            #expect(job.trace.records.map(\.instruction) == Array(0..<count))
            #expect(execution.requested <= job.trace.submitted && job.trace.finished <= execution.returned)
        }
        let summary = NeuronProfileSummary(profile)
        #expect(summary.executions == 5 && summary.hasLayerNames && summary.droppedRecords == 0)
        #expect(abs(summary.layers.reduce(0) { $0 + $1.share } - 1) < 1e-9)
        #expect(abs(summary.layers.reduce(0) { $0 + $1.timeUs } - summary.busyUs) < 1e-6 * max(1, summary.busyUs))
        #expect(abs((summary.layers.compactMap(\.estimateShare).reduce(0, +)) - 1) < 1e-9)
        #expect(summary.layers.map(\.startUs) == summary.layers.map(\.startUs).sorted())
        #expect(summary.layers.first?.name == "conv1+bn1+relu1" && summary.layers.first?.op == "Conv+BatchNormalization+Relu")
        #expect(summary.layers.map(\.name).contains("fc+fc_bias"))
        let conv = try #require(summary.layers.first)
        #expect(conv.flops == 2 * 8 * 16 * 16 * 27 && conv.gflops > 0)
        // Each execution's latency covers its own busy time, so the means
        // compare; the median latency need not exceed the mean busy time (one
        // slow execution in a noisy guest lifts the mean alone).
        #expect(summary.latencyMeanUs >= summary.busyUs && summary.stages.count == 1)
        #expect(summary.latencyP50Us >= summary.latencyMinUs && summary.latencyMinUs > 0)
        let text = summary.text()
        #expect(text.contains("conv1+bn1+relu1") && text.contains("CONV2D") && text.contains("layers, in the order they ran"))

        // The file round-trips; a newer version or garbage is refused by name.
        let data = try profile.encoded()
        #expect(try NeuronProfile(data: data) == profile)
        var object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        object["version"] = 7
        #expect { try NeuronProfile(data: try JSONSerialization.data(withJSONObject: object)) } throws: {
            "\($0)".contains("capture version 7") && "\($0)".contains("1 to 1")
        }
        #expect(throws: NeuronProfileError.self) { try NeuronProfile(data: Data(data.prefix(data.count / 2))) }
        #expect(throws: NeuronProfileError.self) { try NeuronProfile(data: Data("{\"format\":\"other\",\"version\":1}".utf8)) }
        #expect(throws: NeuronProfileError.self) { try NeuronProfile(data: Data([0xff, 0x00, 0x12])) }
    }

    @Test("the Perfetto trace is valid trace-event JSON: required fields, nested slices per track, monotonic times, layer names")
    func perfetto() throws {
        let (model, _) = try NeuronCompiler.compile(try Self.cnn())
        let profile = try Self.capture(model, count: 3)
        try Self.validateTrace(NeuronPerfetto.json(profile), profile: profile, layerNames: true)
        // A pipeline on two NeuronCores: a track each, the hand-off shown as a wait.
        let (piped, _) = try NeuronCompiler.compile(try Self.cnn(), options: CompileOptions(pipelineCores: 2))
        let pipedProfile = try Self.capture(piped, count: 3)
        try Self.validateTrace(NeuronPerfetto.json(pipedProfile), profile: pipedProfile, layerNames: true)
        let summary = NeuronProfileSummary(pipedProfile)
        #expect(summary.stages.count == 2 && summary.stages[1].after == 0)
        #expect(Set(summary.stages.map(\.core)).count == 2 && summary.stages.allSatisfy { $0.busyUs > 0 })
        #expect(summary.text().contains("waited"))
        // Without layer names, instruction names instead.
        let (bare, _) = try NeuronCompiler.compile(try Self.cnn(), options: CompileOptions(debugInfo: false))
        let bareProfile = try Self.capture(bare, count: 1)
        try Self.validateTrace(NeuronPerfetto.json(bareProfile), profile: bareProfile, layerNames: false)
        #expect(NeuronProfileSummary(bareProfile).text().contains("no debug section"))
    }

    @Test("the driver and the simulator profile the same instructions in the same order, with the same layer names",
          .enabled(if: driverLoaded))
    func driverMatchesSimulator() throws {
        let (model, _) = try NeuronCompiler.compile(try Self.cnn(), options: CompileOptions(pipelineCores: 2))
        let driver = try Self.capture(model, count: 2)
        let simulator = try Self.capture(model, count: 2, backend: SimulatorBackend(configuration: try .init(devices: 1)))
        #expect(driver.host.backend != simulator.host.backend)
        // Per program: the instructions as they ran (a sliced one's records
        // merged: the driver's sections are smaller), with their layers.
        func sequence(_ profile: NeuronProfile) -> [[String]] {
            profile.executions[1].jobs.map { job in
                var seen: [String] = []
                var last = -1
                for record in job.trace.records where record.instruction != last {
                    last = record.instruction
                    let layer = profile.model.layer(program: job.program, instruction: record.instruction)?.name ?? "?"
                    seen.append("\(record.instruction) \(profile.model.instructionName(program: job.program, instruction: record.instruction)) \(layer)")
                }
                return seen
            }
        }
        #expect(sequence(driver) == sequence(simulator))
        #expect(sequence(driver).joined().count > 0)
    }

    @Test("TensorBoard's records: CRC-32C and its mask as TensorFlow computes them; the graph has every ONNX node and its edges")
    func tensorBoardRecords() throws {
        #expect(TFRecord.crc32c(Array("123456789".utf8)) == 0xe306_9283)
        #expect(TFRecord.crc32c([]) == 0)
        let framed = TFRecord.frame([1, 2, 3])
        #expect(framed.count == 8 + 4 + 3 + 4 && framed[0] == 3 && Array(framed[12..<15]) == [1, 2, 3])
        let (model, _) = try NeuronCompiler.compile(try Self.cnn())
        let profile = try Self.capture(model, count: 2)
        let (graph, stats) = NeuronTensorBoard.graphAndStats(profile)
        let names = Set(graph.node.map(\.name))
        #expect(names.isSuperset(of: ["conv1+bn1+relu1/conv1", "conv1+bn1+relu1/relu1", "pool1", "fc+fc_bias/fc", "softmax"]))
        #expect(graph.node.first { $0.name == "pool1" }?.input == ["conv1+bn1+relu1/relu1"])
        #expect(graph.node.first { $0.name == "conv1+bn1+relu1/bn1" }?.input == ["conv1+bn1+relu1/conv1"])
        #expect(graph.node.allSatisfy { $0.device == "/device:NeuronCore:0" })
        #expect(stats.devStats.count == 1 && stats.devStats[0].nodeStats.count >= 6)
        let space = NeuronTensorBoard.xspace(profile, host: "test")
        #expect(space.planes.count == 1 && space.planes[0].lines.map(\.name) == ["instructions", "jobs"])
        let records = profile.executions.reduce(0) { $0 + $1.jobs.reduce(0) { $0 + $1.trace.records.count } }
        #expect(space.planes[0].lines[0].events.count == records)
    }

    /// Checks what ui.perfetto.dev's importer needs of a trace.
    static func validateTrace(_ text: String, profile: NeuronProfile, layerNames: Bool) throws {
        let root = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let events = try #require(root["traceEvents"] as? [[String: Any]])
        var slices: [String: [(start: Int64, end: Int64, name: String)]] = [:]
        var counters = 0, instructions = 0
        var open: [String: Int] = [:]
        let layerNamesKnown = Set(profile.model.debug?.layers.map(\.name) ?? [])
        for event in events {
            let ph = try #require(event["ph"] as? String, "\(event)")
            #expect(event["name"] is String && event["pid"] is Int, "\(event)")
            guard ph != "M" else { continue }
            let ts = try #require(event["ts"] as? Double, "\(event)")
            #expect(ts >= 0)
            let ns = Int64((ts * 1000).rounded())
            switch ph {
            case "X":
                let dur = try #require(event["dur"] as? Double, "\(event)")
                #expect(dur >= 0 && event["tid"] is Int)
                let key = "\(event["pid"] ?? 0)/\(event["tid"] ?? 0)"
                slices[key, default: []].append((ns, ns + Int64((dur * 1000).rounded()), event["name"] as? String ?? ""))
                if (event["tid"] as? Int) == NeuronPerfetto.instructionThread {
                    instructions += 1
                    let args = try #require(event["args"] as? [String: Any])
                    #expect(args["work"] is Int && args["bytes_read"] is Int && args["op"] is String)
                    if layerNames {
                        #expect(layerNamesKnown.contains(event["name"] as? String ?? "") && args["nodes"] is [Any], "\(event)")
                    }
                }
            case "C":
                counters += 1
                let args = try #require(event["args"] as? [String: Any])
                #expect(!args.isEmpty && args.values.allSatisfy { $0 is Int })
            case "b", "e":
                let key = "\(event["cat"] ?? "")/\(event["id"] ?? "")"
                open[key, default: 0] += ph == "b" ? 1 : -1
                #expect((open[key] ?? 0) >= 0)
            default:
                Issue.record("unexpected phase \(ph)")
            }
        }
        #expect(open.values.allSatisfy { $0 == 0 })
        let records = profile.executions.reduce(0) { $0 + $1.jobs.reduce(0) { $0 + $1.trace.records.count } }
        #expect(instructions == records && counters == records && records > 0)
        // On each track, slices nest: sorted by start, each ends before the
        // enclosing one does, and none straddles another.
        for (track, list) in slices {
            var stack: [Int64] = []
            var last: Int64 = -1
            for slice in list.sorted(by: { ($0.start, -$0.end) < ($1.start, -$1.end) }) {
                #expect(slice.start >= last, "\(track): times go backwards")
                last = slice.start
                while let top = stack.last, top <= slice.start { stack.removeLast() }
                if let top = stack.last { #expect(slice.end <= top, "\(track): \(slice.name) straddles its parent") }
                stack.append(slice.end)
            }
        }
    }

    @Test("neuron-profile capture and view, neuron-run --profile and NEURON_RT_PROFILE write captures the views read")
    func tools() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("profile-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (model, _) = try NeuronCompiler.compile(try Self.cnn())
        try model.write(to: "\(dir)/cnn.neff")
        let env = driverLoaded ? ["NEURON_BACKEND": "kernel"] : ["NEURON_BACKEND": "sim", "NEURON_SIM_DEVICES": "1"]

        let capture = try runTool("neuron-profile", ["capture", "\(dir)/cnn.neff", "--iterations", "4", "-o", "\(dir)/p.json"],
                                  environment: env)
        #expect(capture.status == 0 && capture.stdout.contains("4 inference(s)"), "\(capture.stderr)")
        let text = try runTool("neuron-profile", ["view", "\(dir)/p.json"])
        #expect(text.status == 0 && text.stdout.contains("conv1+bn1+relu1") && text.stdout.contains("4 execution(s)"), "\(text.stderr)")
        let json = try runTool("neuron-profile", ["view", "\(dir)/p.json", "--output-format", "summary-json"])
        let summary = try JSONDecoder().decode(NeuronProfileSummary.self, from: Data(json.stdout.utf8))
        #expect(summary.executions == 4 && summary.layers.first?.name == "conv1+bn1+relu1")
        let trace = try runTool("neuron-profile", ["view", "\(dir)/p.json", "--output-format", "perfetto", "-o", "\(dir)/t.json"])
        #expect(trace.status == 0)
        let captured = try NeuronProfile(contentsOf: "\(dir)/p.json")
        try Self.validateTrace(try String(contentsOfFile: "\(dir)/t.json", encoding: .utf8), profile: captured, layerNames: true)

        let run = try runTool("neuron-run", ["\(dir)/cnn.neff", "--iterations", "3", "--profile", "\(dir)/r.json"], environment: env)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try NeuronProfile(contentsOf: "\(dir)/r.json").executions.count == 3)

        try FileManager.default.createDirectory(atPath: "\(dir)/env", withIntermediateDirectories: true)
        let viaEnv = try runTool("neuron-run", ["\(dir)/cnn.neff", "--iterations", "2"],
                                 environment: env.merging(["NEURON_RT_PROFILE": "\(dir)/env"]) { $1 })
        let written = try FileManager.default.contentsOfDirectory(atPath: "\(dir)/env")
        #expect(viaEnv.status == 0 && written.count == 1 && viaEnv.stderr.contains("written to"), "\(viaEnv.stderr)")
        // The warm-up request too: the runtime captures every execution.
        #expect(try NeuronProfile(contentsOf: "\(dir)/env/\(written.first ?? "")").executions.count == 3)
        let notDir = try runTool("neuron-run", ["\(dir)/cnn.neff", "--iterations", "1"],
                                 environment: env.merging(["NEURON_RT_PROFILE": "\(dir)/missing"]) { $1 })
        #expect(notDir.status != 0 && notDir.stderr.contains("not a writable directory"), "\(notDir.stderr)")

        // Bad captures: the reason, never a crash.
        try Data("not json".utf8).write(to: URL(fileURLWithPath: "\(dir)/bad.json"))
        let bad = try runTool("neuron-profile", ["view", "\(dir)/bad.json"])
        #expect(bad.status != 0 && bad.stderr.contains("not a neuron-profile capture"), "\(bad.stderr)")
        let missing = try runTool("neuron-profile", ["view", "\(dir)/none.json"])
        #expect(missing.status != 0 && missing.stderr.contains("cannot read"), "\(missing.stderr)")
    }
}
