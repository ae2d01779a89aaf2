import Foundation
import NeuronDevice
import NeuronNEFF
import NeuronRuntime
import Testing
import TestSupport

@Suite("Runtime: visible NeuronCores")
struct VisibilityTests {
    @Test("NEURON_RT_VISIBLE_CORES and NEURON_RT_NUM_CORES, as AWS reads them")
    func parse() throws {
        #expect(try NeuronCoreVisibility.visibleCores(total: 8, environment: [:]) == Array(0..<8))
        #expect(try NeuronCoreVisibility.visibleCores(total: 8, environment: ["NEURON_RT_VISIBLE_CORES": "3"]) == [3])
        #expect(try NeuronCoreVisibility.visibleCores(total: 8, environment: ["NEURON_RT_VISIBLE_CORES": "0-2"]) == [0, 1, 2])
        #expect(try NeuronCoreVisibility.visibleCores(total: 8, environment: ["NEURON_RT_VISIBLE_CORES": "1,4-5"]) == [1, 4, 5])
        #expect(try NeuronCoreVisibility.visibleCores(total: 8, environment: ["NEURON_RT_NUM_CORES": "2"]) == [0, 1])
        #expect(try NeuronCoreVisibility.visibleCores(
            total: 8, environment: ["NEURON_RT_VISIBLE_CORES": "4-7", "NEURON_RT_NUM_CORES": "3"]) == [4, 5, 6])
        for bad in ["x", "3-1", "-1", "0-8", "1,1", "2-", ""] where !bad.isEmpty {
            #expect(throws: NeuronRuntimeError.self) {
                try NeuronCoreVisibility.visibleCores(total: 8, environment: ["NEURON_RT_VISIBLE_CORES": bad])
            }
        }
        #expect(throws: NeuronRuntimeError.self) {
            try NeuronCoreVisibility.visibleCores(total: 8, environment: ["NEURON_RT_NUM_CORES": "9"])
        }
        #expect(throws: NeuronRuntimeError.self) {
            try NeuronCoreVisibility.visibleCores(total: 8, environment: ["NEURON_RT_NUM_CORES": "0"])
        }
    }
}

@Suite("Runtime: load and execute")
struct RuntimeTests {
    func runtime(_ backend: any NeuronBackend, visible: String? = nil) throws -> NeuronRuntime {
        var environment: [String: String] = [:]
        environment["NEURON_RT_VISIBLE_CORES"] = visible
        return try NeuronRuntime(backend: backend, environment: environment)
    }

    @Test("a loaded NEFF runs and computes its definition; unload gives the cores back")
    func loadExecute() throws {
        let backend = try backendUnderTest()
        let rt = try runtime(backend)
        defer { rt.close() }
        let model = try NEFFModel(bytes: try tinyModel().serialized())
        let loaded = try rt.load(model)
        let inputs = try loaded.allocateInputs(), outputs = try loaded.allocateOutputs()
        let x = sample(16, seed: 21)
        try inputs["x"]?.write(x)
        try loaded.execute(inputs: inputs, outputs: outputs)
        #expect(try outputs["y"]?.read(Float.self).map(\.bitPattern) == tinyReference(x).map(\.bitPattern))
        let core = loaded.cores[0]
        loaded.unload()
        #expect(throws: NeuronRuntimeError.self) { try loaded.execute(inputs: inputs, outputs: outputs) }
        let again = try rt.load(model, startCore: core)
        #expect(again.cores == [core])
    }

    @Test("the example MLP (weights, scratch, output) gives the engine's bits")
    func exampleMLP() throws {
        let model = NEFFExamples.mlp(batch: 4, width: 64, layers: 2)
        let rt = try runtime(try backendUnderTest())
        defer { rt.close() }
        let loaded = try rt.load(model)
        let inputs = try loaded.allocateInputs(), outputs = try loaded.allocateOutputs()
        let x = sample(4 * 64, seed: 77)
        try inputs["x"]?.write(x)
        try loaded.execute(inputs: inputs, outputs: outputs)

        // The same program in this process, over host copies of every tensor.
        let program = model.programs[0]
        let sizes = program.slots.map { model.tensor(named: $0 ?? "")?.byteCount ?? 0 }
        let host = Slots(sizes)
        host.set(0, x)
        for (slot, name) in program.slots.enumerated() {
            guard let name, let bytes = model.weights[name] else { continue }
            bytes.withUnsafeBytes { host.buffers[slot].copyMemory(from: $0) }
        }
        try NeuronEngine.run(program.image, slots: host.buffers)
        let want = host.floats(3)
        #expect(try outputs["probs"]?.read(Float.self).map(\.bitPattern) == want.map(\.bitPattern))
        #expect(abs(want.prefix(10).reduce(0, +) - 1) < 1e-5)
    }

    @Test("replicas share the weights: a second load costs no weight memory")
    func sharedWeights() throws {
        let backend = try backendUnderTest()
        let rt = try runtime(backend)
        defer { rt.close() }
        let probe = try backend.open(device: 0)
        defer { probe.close() }
        let model = tinyModel()
        let before = try probe.info().memoryUsed
        let first = try rt.load(model)
        let afterOne = try probe.info().memoryUsed
        let second = try rt.load(model)
        let afterTwo = try probe.info().memoryUsed
        #expect(first.cores != second.cores)
        #expect(afterOne > before)
        #expect(afterTwo == afterOne)
        first.unload()
        #expect(try probe.info().memoryUsed == afterOne)    // the replica still uses them
        second.unload()
        #expect(try probe.info().memoryUsed == before)
    }

    @Test("a load costs at most 1.1x its weights in device memory and keeps no host copy")
    func loadCost() throws {
        let backend = try backendUnderTest()
        let rt = try runtime(backend)
        defer { rt.close() }
        let probe = try backend.open(device: 0)
        defer { probe.close() }
        let path = "/tmp/neuron-load-cost-\(getpid()).neff"
        let model = NEFFExamples.mlp(batch: 8, width: 256, layers: 3)
        try model.write(to: path)
        defer { unlink(path) }
        let weightBytes = model.weightBytes
        let scratchBytes = model.tensors.filter { $0.kind == .scratch }.reduce(0) { $0 + ($1.byteCount ?? 0) }
        let before = try probe.info().memoryUsed
        let loaded = try rt.load(contentsOf: path)
        let cost = try probe.info().memoryUsed - before
        #expect(Double(cost) <= 1.1 * Double(weightBytes + scratchBytes), "\(cost) bytes for \(weightBytes) of weights")
        #expect(loaded.model.weights.isEmpty)
        #expect(loaded.model.programs == model.programs)
    }

    @Test("another runtime holding the cores: the load says who")
    func contention() throws {
        let backend = try backendUnderTest()
        let holder = try runtime(backend, visible: "1")
        defer { holder.close() }
        let loser = try runtime(backend, visible: "1")
        defer { loser.close() }
        let held = try holder.load(tinyModel())
        do {
            _ = try loser.load(tinyModel())
            Issue.record("loaded on a held core")
        } catch {
            #expect(error.status == .loadNotEnoughCores)
            #expect(error.message.contains("process \(getpid())"), "\(error)")
        }
        held.unload()
        #expect(try loser.load(tinyModel()).cores == [1])
    }

    @Test("missing, unknown, mis-shaped tensors are bad input")
    func badInput() throws {
        let rt = try runtime(try backendUnderTest())
        defer { rt.close() }
        let loaded = try rt.load(tinyModel())
        let inputs = try loaded.allocateInputs(), outputs = try loaded.allocateOutputs()
        #expect(throws: NeuronRuntimeError.self) { try loaded.execute(inputs: [:], outputs: outputs) }
        #expect(throws: NeuronRuntimeError.self) { try loaded.allocateTensor(named: "w") }
        do {
            try loaded.execute(inputs: ["x": outputs["y"]!], outputs: outputs)
            Issue.record("a [2, 4] tensor was taken for x [2, 8]")
        } catch {
            #expect(error.status == .execBadInput && error.message.contains("x"), "\(error)")
        }
        do {
            try loaded.execute(inputs: inputs.merging(["extra": inputs["x"]!]) { a, _ in a }, outputs: outputs)
            Issue.record("an unknown input was accepted")
        } catch {
            #expect(error.status == .execBadInput)
        }
    }

    @Test("an asynchronous burst of 1000 requests completes with the right outputs")
    func burst() async throws {
        let rt = try runtime(try backendUnderTest())
        defer { rt.close() }
        let loaded = try rt.load(tinyModel())
        let count = 1000
        var requests: [(x: [Float], inputs: [String: NeuronTensor], outputs: [String: NeuronTensor])] = []
        for i in 0..<count {
            let x = sample(16, seed: UInt32(1000 + i))
            let inputs = try loaded.allocateInputs()
            try inputs["x"]?.write(x)
            requests.append((x, inputs, try loaded.allocateOutputs()))
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for request in requests {
                group.addTask { try await loaded.execute(inputs: request.inputs, outputs: request.outputs) }
            }
            try await group.waitForAll()
        }
        var wrong = 0
        for request in requests where try request.outputs["y"]?.read(Float.self) != tinyReference(request.x) {
            wrong += 1
        }
        #expect(wrong == 0)
    }

    @Test("1000 requests queued one after another complete in that order, with the right outputs")
    func enqueueInOrder() async throws {
        let rt = try runtime(try backendUnderTest())
        defer { rt.close() }
        let loaded = try rt.load(tinyModel(), options: NeuronLoadOptions(maxInFlight: 8))
        var requests: [(x: [Float], outputs: [String: NeuronTensor], inference: NeuronInference)] = []
        for i in 0..<1000 {
            let x = sample(16, seed: UInt32(9000 + i))
            let inputs = try loaded.allocateInputs(), outputs = try loaded.allocateOutputs()
            try inputs["x"]?.write(x)
            requests.append((x, outputs, try await loaded.enqueue(inputs: inputs, outputs: outputs)))
        }
        let sequences = requests.map { $0.inference.jobs[0].sequence }
        #expect(zip(sequences, sequences.dropFirst()).allSatisfy { $0 < $1 })
        // The last one ended: so did every one queued before it.
        try await requests[requests.count - 1].inference.result()
        #expect(requests.allSatisfy { $0.inference.hasEnded })
        var wrong = 0
        for request in requests.reversed() {
            try await request.inference.result()
            if try request.outputs["y"]?.read(Float.self) != tinyReference(request.x) { wrong += 1 }
        }
        #expect(wrong == 0)
        // A failed request reports like execute; the slot comes back.
        let bad = try loaded.allocateInputs()
        await #expect(throws: NeuronRuntimeError.self) {
            _ = try await loaded.enqueue(inputs: bad, outputs: [:])
        }
        loaded.unload()
        await #expect(throws: NeuronRuntimeError.self) {
            _ = try await loaded.enqueue(inputs: bad, outputs: requests[0].outputs)
        }
    }

    /// y = 2 relu(x · w + b) on two NeuronCores: core 0 writes the scratch
    /// tensor h, core 1 (after it) reads h and writes y.
    func pipelineModel() -> NEFFModel {
        var tiny = tinyModel()
        var first = NeuronProgram()
        first.matmul(.contiguous(slot: 3, dims: [2, 4]), .contiguous(slot: 0, dims: [2, 8]),
                     .contiguous(slot: 1, dims: [8, 4]), bias: .contiguous(slot: 2, dims: [4]))
        first.unary(.relu, .contiguous(slot: 3, dims: [2, 4]), .contiguous(slot: 3, dims: [2, 4]))
        var second = NeuronProgram()
        second.binary(.add, .contiguous(slot: 1, dims: [2, 4]), .contiguous(slot: 0, dims: [2, 4]),
                      .contiguous(slot: 0, dims: [2, 4]))
        tiny.name = "pipeline"
        tiny.coreCount = 2
        tiny.tensors.append(NEFFTensor(name: "h", kind: .scratch, dtype: .float32, shape: [2, 4]))
        tiny.programs = [NEFFProgram(core: 0, image: first.image(), slots: ["x", "w", "b", "h"]),
                         NEFFProgram(core: 1, image: second.image(), slots: ["h", "y"], after: 0)]
        return tiny
    }

    @Test("requests in flight: NEURON_RT_ASYNC_EXEC_MAX_INFLIGHT_REQUESTS, 1 to 1024")
    func inFlightOption() throws {
        #expect(try NeuronLoadOptions(environment: [:]).maxInFlight == NeuronLoadOptions.defaultMaxInFlight)
        #expect(try NeuronLoadOptions(environment: ["NEURON_RT_ASYNC_EXEC_MAX_INFLIGHT_REQUESTS": "3"]).maxInFlight == 3)
        for bad in ["0", "-2", "x", "1025"] {
            #expect(throws: NeuronRuntimeError.self) {
                try NeuronLoadOptions(environment: ["NEURON_RT_ASYNC_EXEC_MAX_INFLIGHT_REQUESTS": bad])
            }
        }
        let rt = try runtime(try backendUnderTest())
        defer { rt.close() }
        #expect(throws: NeuronRuntimeError.self) { try rt.load(tinyModel(), options: NeuronLoadOptions(maxInFlight: 0)) }
    }

    @Test("a two-core model pipelines requests, each in flight with its own scratch", arguments: [1, 3])
    func pipeline(maxInFlight: Int) async throws {
        let backend = try backendUnderTest()
        let rt = try runtime(backend)
        defer { rt.close() }
        let probe = try backend.open(device: 0)
        defer { probe.close() }
        let loaded = try rt.load(pipelineModel(), options: NeuronLoadOptions(maxInFlight: maxInFlight))
        #expect(loaded.options.maxInFlight == maxInFlight)
        var requests: [(x: [Float], inputs: [String: NeuronTensor], outputs: [String: NeuronTensor])] = []
        for i in 0..<64 {
            let x = sample(16, seed: UInt32(5000 + i))
            let inputs = try loaded.allocateInputs()
            try inputs["x"]?.write(x)
            requests.append((x, inputs, try loaded.allocateOutputs()))
        }
        let tensors = try probe.info().memoryUsed
        try await withThrowingTaskGroup(of: Void.self) { group in
            for request in requests {
                group.addTask { try await loaded.execute(inputs: request.inputs, outputs: request.outputs) }
            }
            try await group.waitForAll()
        }
        var wrong = 0
        for request in requests where try request.outputs["y"]?.read(Float.self) != tinyReference(request.x).map({ $0 + $0 }) {
            wrong += 1
        }
        #expect(wrong == 0)
        // At most one scratch set per request in flight, the first at load.
        let grown = try probe.info().memoryUsed - tensors
        if maxInFlight == 1 {
            #expect(grown == 0)
        } else {
            #expect(grown <= UInt64(maxInFlight - 1) * 65536, "\(grown) bytes of scratch for \(maxInFlight) in flight")
        }
        // Synchronous callers from several threads share the same slots.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for request in requests.prefix(8) {
                group.addTask { try loaded.execute(inputs: request.inputs, outputs: request.outputs) }
            }
            try await group.waitForAll()
        }
        #expect(try requests[0].outputs["y"]?.read(Float.self) == tinyReference(requests[0].x).map { $0 + $0 })
        loaded.unload()
        await #expect(throws: NeuronRuntimeError.self) {
            try await loaded.execute(inputs: requests[0].inputs, outputs: requests[0].outputs)
        }
    }
}
