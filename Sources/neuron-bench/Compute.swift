import NeuronCompiler
import ArgumentParser
import NeuronCLI
import NeuronDevice

import Foundation

/// The backend a compute benchmark runs on: `sim` is the simulator
/// backend (the engine on a NeuronCore thread of this process; one
/// device, and NEURON_SIM_SIMD honoured), `kernel` the driver's fake or
/// real NeuronCores.
func computeBackend(_ name: String) throws -> any NeuronBackend {
    switch name {
    case "sim":
        var configuration = try SimulatorBackend.Configuration.fromEnvironment(NeuronBackendSelection.processEnvironment())
        configuration.devices = 1
        return SimulatorBackend(configuration: configuration)
    case "kernel": return KernelBackend()
    default: throw ValidationError("--backend takes sim or kernel, not \(name)")
    }
}

/// A NeuronCore reserved for a benchmark, with its buffers.
struct BenchCore {
    let device: any NeuronDeviceHandle
    let queue: NeuronQueue

    init(backend: String, device index: Int = 0, core: Int = 0) throws {
        device = try computeBackend(backend).open(device: index)
        queue = try device.queue(core: core)
    }

    /// Best wall-clock time from submission to completion: at least
    /// `repetitions` runs, more until a second has passed (at most 200).
    func best(_ program: NeuronProgram, buffers: [NeuronBuffer], repetitions: Int) throws -> Double {
        let image = program.image()
        let clock = ContinuousClock()
        var best = Double.infinity
        let start = clock.now
        var count = 0
        while count < repetitions || (clock.now - start < .seconds(1) && count < 200) {
            count += 1
            var status = NeuronJobStatus.ok
            let elapsed = try clock.measure {
                let job = try queue.submit(image: image, buffers: buffers)
                guard let result = try queue.wait(job, timeout: .seconds(3600)) else {
                    throw NeuronError.invalidArgument("\(job) did not end")
                }
                status = result.status
            }
            guard status == .ok else { throw NeuronError.invalidArgument("the benchmark job ended \(status)") }
            best = min(best, seconds(elapsed))
        }
        return best
    }
}

/// Deterministic values in [-0.5, 0.5), as fp32 or bf16 bytes.
func benchValues(_ count: Int, scale: Float, half: Bool) -> [UInt8] {
    var bytes = [UInt8]()
    bytes.reserveCapacity(count * (half ? 2 : 4))
    for index in 0..<count {
        let value = (Float((index * 7919) % 1000) / 1000 - 0.5) * scale
        if half {
            withUnsafeBytes(of: BFloat16.bits(value)) { bytes.append(contentsOf: $0) }
        } else {
            withUnsafeBytes(of: value.bitPattern) { bytes.append(contentsOf: $0) }
        }
    }
    return bytes
}

struct Gemm: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Matmul GFLOP/s on a NeuronCore next to numpy's single-threaded OpenBLAS sgemm.",
        discussion: """
            Times each job from submission to completion, best of the repetitions. The baseline \
            runs numpy in the same command with OPENBLAS_NUM_THREADS=1 and OPENBLAS_CORETYPE and \
            OPENBLAS_L2_SIZE unset; --no-baseline skips it.
            """)

    @Option(help: "Square sizes, comma-separated.")
    var size = "256,512,1024,2048"

    @Option(help: "fp32, bf16 (bf16 inputs widened, fp32 accumulation), bf16-pairs (bf16 inputs in pairs, as AVX512_BF16 computes; ISA 1.9) or bf16-pair-panels (the same with B as pairs in panels, as neuron-cc lays out weights; ISA 1.14). NEURON_SIM_BF16=amx runs the pairs on AMX.")
    var dtype = "fp32"

    @Option(help: "sim (the simulator backend, in this process) or kernel (the driver).")
    var backend = "sim"

    @Flag(help: "Skip the numpy baseline.")
    var noBaseline = false

    @Flag(help: "Print JSON.")
    var json = false

    struct Record: Codable {
        var size: Int
        var dtype: String
        var backend: String
        var repetitions: Int
        var gflops: Double
        var numpy_gflops: Double?
        var vs_numpy: Double?
    }

    func numpyGFLOPS(_ n: Int) -> Double? {
        let script = """
            import time, numpy as np
            n = \(n)
            a = np.random.rand(n, n).astype(np.float32); b = np.random.rand(n, n).astype(np.float32)
            a @ b
            best = min((lambda t0: (a @ b, time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range(max(3, int(2e9 / (2 * n ** 3)))))
            print(2 * n ** 3 / best / 1e9)
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script]
        var environment = ProcessInfo.processInfo.environment
        environment["OPENBLAS_NUM_THREADS"] = "1"
        environment["OPENBLAS_CORETYPE"] = nil
        environment["OPENBLAS_L2_SIZE"] = nil
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        return Double(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    func run() throws {
        guard ["fp32", "bf16", "bf16-pairs", "bf16-pair-panels"].contains(dtype) else {
            throw ValidationError("--dtype takes fp32, bf16, bf16-pairs or bf16-pair-panels")
        }
        let panels = dtype == "bf16-pair-panels"
        let sizes = size.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !sizes.isEmpty, sizes.allSatisfy({ $0 > 0 && $0 <= 8192 }) else {
            throw ValidationError("--size takes sizes from 1 to 8192, comma-separated")
        }
        // An odd K's last pair is never read in place: the reference chain would run.
        guard !panels || sizes.allSatisfy({ $0 % 2 == 0 }) else {
            throw ValidationError("--dtype bf16-pair-panels takes even sizes (an odd K runs the reference chain, not the kernels)")
        }
        let half = dtype != "fp32"
        let core = try BenchCore(backend: backend)
        defer { core.device.close() }
        var records: [Record] = []
        for n in sizes {
            let elementBytes = half ? 2 : 4
            let a = try core.device.allocate(size: UInt64(n * n * elementBytes))
            let panelCount = (n + NeuronProgram.matmulPanel - 1) / NeuronProgram.matmulPanel, pairCount = (n + 1) / 2
            let b = try core.device.allocate(size: UInt64(panels ? panelCount * pairCount * 2 * NeuronProgram.matmulPanel * 2
                                                                 : n * n * elementBytes))
            let c = try core.device.allocate(size: UInt64(n * n * 4))
            defer { a.free(); b.free(); c.free() }
            try a.write(benchValues(n * n, scale: 1, half: half))
            let bValues = benchValues(n * n, scale: 0.5, half: half)
            if panels {
                let halves = bValues.withUnsafeBytes { Array($0.bindMemory(to: UInt16.self)) }
                let laid = NeuronProgram.pairPanelMatmulWeights(halves, k: n, n: n) ?? []
                try b.write(laid.withUnsafeBytes { Array($0) })
            } else {
                try b.write(bValues)
            }
            let type: NeuronDType = half ? .bfloat16 : .float32
            var program = NeuronProgram()
            program.matmul(.contiguous(slot: 2, dims: [UInt32(n), UInt32(n)]),
                           .contiguous(slot: 0, dims: [UInt32(n), UInt32(n)], dtype: type),
                           panels ? .contiguous(slot: 1, dims: [UInt32(panelCount), UInt32(pairCount), 64], dtype: .bfloat16)
                                  : .contiguous(slot: 1, dims: [UInt32(n), UInt32(n)], dtype: type),
                           bf16Pairs: dtype.hasPrefix("bf16-pair"), bPanels: panels)
            let flops = 2.0 * Double(n) * Double(n) * Double(n)
            let repetitions = max(3, min(50, Int(4e9 / flops)))
            let best = try core.best(program, buffers: [a, b, c], repetitions: repetitions)
            let gflops = flops / best / 1e9
            let baseline = noBaseline ? nil : numpyGFLOPS(n)
            records.append(Record(size: n, dtype: dtype, backend: backend, repetitions: repetitions, gflops: gflops,
                                  numpy_gflops: baseline, vs_numpy: baseline.map { gflops / $0 }))
        }
        if json { return try printJSON(records) }
        print("neuron-bench gemm: \(dtype), backend \(backend); GFLOP/s, best of the repetitions")
        for r in records {
            let baseline = r.numpy_gflops.map { String(format: "   numpy %.1f   (%.2fx)", $0, r.gflops / $0) } ?? ""
            print(String(format: "n=%5d  %8.1f", r.size, r.gflops) + baseline)
        }
    }
}

struct Conv: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "GFLOP/s of ResNet-50's convolution layers (batch 1, fp32) on a NeuronCore.")

    @Option(help: "sim (the simulator backend, in this process) or kernel (the driver).")
    var backend = "sim"

    @Option(help: "Layers to run, comma-separated (default: all): \(Conv.layers.map(\.name).joined(separator: ","))")
    var layers = ""

    @Option(help: "Batch size.")
    var batch = 1

    @Option(help: "Weight layout: compiler (what neuron-cc chooses: Winograd for 3x3 of stride 1, else packed), given, packed, winograd (3x3 of stride 1 only), or bf16-pairs (given, stored bf16, the convolution in bf16 pairs: ISA 1.10).")
    var weights = "compiler"

    @Flag(help: "Print JSON.")
    var json = false

    struct Layer {
        var name: String
        var cin: Int, h: Int, w: Int, cout: Int, k: Int, stride: Int, pad: Int
        /// Layers of this shape in ResNet-50.
        var count: Int
        var ho: Int { (h + 2 * pad - k) / stride + 1 }
        var wo: Int { (w + 2 * pad - k) / stride + 1 }
    }

    /// ResNet-50's distinct convolution shapes, each with the number of
    /// layers of that shape (53 in all; stride 2 in the first 3x3 of a
    /// stage and in its projection shortcut, as in ResNet-50 v1.5).
    static let layers: [Layer] = [
        Layer(name: "conv1", cin: 3, h: 224, w: 224, cout: 64, k: 7, stride: 2, pad: 3, count: 1),
        Layer(name: "res2_1x1", cin: 64, h: 56, w: 56, cout: 64, k: 1, stride: 1, pad: 0, count: 1),
        Layer(name: "res2_reduce", cin: 256, h: 56, w: 56, cout: 64, k: 1, stride: 1, pad: 0, count: 2),
        Layer(name: "res2_3x3", cin: 64, h: 56, w: 56, cout: 64, k: 3, stride: 1, pad: 1, count: 3),
        Layer(name: "res2_expand", cin: 64, h: 56, w: 56, cout: 256, k: 1, stride: 1, pad: 0, count: 4),
        Layer(name: "res3_reduce1", cin: 256, h: 56, w: 56, cout: 128, k: 1, stride: 1, pad: 0, count: 1),
        Layer(name: "res3_3x3s2", cin: 128, h: 56, w: 56, cout: 128, k: 3, stride: 2, pad: 1, count: 1),
        Layer(name: "res3_proj", cin: 256, h: 56, w: 56, cout: 512, k: 1, stride: 2, pad: 0, count: 1),
        Layer(name: "res3_expand", cin: 128, h: 28, w: 28, cout: 512, k: 1, stride: 1, pad: 0, count: 4),
        Layer(name: "res3_reduce", cin: 512, h: 28, w: 28, cout: 128, k: 1, stride: 1, pad: 0, count: 3),
        Layer(name: "res3_3x3", cin: 128, h: 28, w: 28, cout: 128, k: 3, stride: 1, pad: 1, count: 3),
        Layer(name: "res4_reduce1", cin: 512, h: 28, w: 28, cout: 256, k: 1, stride: 1, pad: 0, count: 1),
        Layer(name: "res4_3x3s2", cin: 256, h: 28, w: 28, cout: 256, k: 3, stride: 2, pad: 1, count: 1),
        Layer(name: "res4_proj", cin: 512, h: 28, w: 28, cout: 1024, k: 1, stride: 2, pad: 0, count: 1),
        Layer(name: "res4_expand", cin: 256, h: 14, w: 14, cout: 1024, k: 1, stride: 1, pad: 0, count: 6),
        Layer(name: "res4_reduce", cin: 1024, h: 14, w: 14, cout: 256, k: 1, stride: 1, pad: 0, count: 5),
        Layer(name: "res4_3x3", cin: 256, h: 14, w: 14, cout: 256, k: 3, stride: 1, pad: 1, count: 5),
        Layer(name: "res5_reduce1", cin: 1024, h: 14, w: 14, cout: 512, k: 1, stride: 1, pad: 0, count: 1),
        Layer(name: "res5_3x3s2", cin: 512, h: 14, w: 14, cout: 512, k: 3, stride: 2, pad: 1, count: 1),
        Layer(name: "res5_proj", cin: 1024, h: 14, w: 14, cout: 2048, k: 1, stride: 2, pad: 0, count: 1),
        Layer(name: "res5_expand", cin: 512, h: 7, w: 7, cout: 2048, k: 1, stride: 1, pad: 0, count: 3),
        Layer(name: "res5_reduce", cin: 2048, h: 7, w: 7, cout: 512, k: 1, stride: 1, pad: 0, count: 2),
        Layer(name: "res5_3x3", cin: 512, h: 7, w: 7, cout: 512, k: 3, stride: 1, pad: 1, count: 2),
    ]

    struct Record: Codable {
        var layer: String
        var shape: String
        var weights: String
        var backend: String
        var repetitions: Int
        var gflops: Double
        var milliseconds: Double
        var count: Int
    }

    struct Report: Codable {
        var layers: [Record]
        /// The layers run, each times its count in ResNet-50 (all of
        /// ResNet-50's convolutions when every layer ran).
        var weighted_milliseconds: Double
        var weighted_gflops: Double
    }

    func run() throws {
        let wanted = layers.split(separator: ",").map { String($0) }
        let chosen = wanted.isEmpty ? Self.layers : Self.layers.filter { wanted.contains($0.name) }
        guard !chosen.isEmpty, wanted.allSatisfy({ name in Self.layers.contains { $0.name == name } }) else {
            throw ValidationError("--layers takes names among \(Self.layers.map(\.name).joined(separator: ","))")
        }
        guard (1...64).contains(batch) else { throw ValidationError("--batch takes 1 to 64") }
        guard ["compiler", "given", "packed", "winograd", "winograd4", "bf16-pairs"].contains(weights) else {
            throw ValidationError("--weights takes compiler, given, packed, winograd, winograd4 or bf16-pairs")
        }
        let core = try BenchCore(backend: backend)
        defer { core.device.close() }
        var records: [Record] = []
        for layer in chosen {
            let n = batch
            let x = try core.device.allocate(size: UInt64(n * layer.cin * layer.h * layer.w * 4))
            let tile = ConvolutionPolicy.winogradTile(kernel: (layer.k, layer.k), stride: (layer.stride, layer.stride),
                                                  dilation: (1, 1), inputChannels: layer.cin,
                                                  outputChannels: layer.cout, output: (layer.ho, layer.wo))
            let layout = weights == "compiler" ? (tile == 4 ? "winograd4" : tile == 2 ? "winograd" : "packed")
                : weights.hasPrefix("winograd") && tile == nil ? "packed" : weights
            let given = (0..<(layer.cout * layer.cin * layer.k * layer.k)).map { (Float(($0 * 7919) % 1000) / 1000 - 0.5) * 0.1 }
            let dimsOfWeights = [layer.cout, layer.cin, layer.k, layer.k]
            let laid: [Float]
            switch layout {
            case "winograd": laid = NeuronProgram.winogradConvWeights(given, dims: dimsOfWeights) ?? given
            case "winograd4": laid = NeuronProgram.winogradConvWeights(given, dims: dimsOfWeights, tile: 4) ?? given
            case "packed": laid = NeuronProgram.packConvWeights(given, dims: dimsOfWeights) ?? given
            default: laid = given
            }
            let pairs = layout == "bf16-pairs"
            let weight = try core.device.allocate(size: UInt64(laid.count * (pairs ? 2 : 4)))
            let bias = try core.device.allocate(size: UInt64(layer.cout * 4))
            let out = try core.device.allocate(size: UInt64(n * layer.cout * layer.ho * layer.wo * 4))
            defer { x.free(); weight.free(); bias.free(); out.free() }
            try x.write(benchValues(n * layer.cin * layer.h * layer.w, scale: 1, half: false))
            try weight.write(pairs ? laid.map(BFloat16.bits).withUnsafeBufferPointer { Array(UnsafeRawBufferPointer($0)) }
                                   : laid.withUnsafeBufferPointer { Array(UnsafeRawBufferPointer($0)) })
            var program = NeuronProgram()
            let dims = { (values: [Int]) in values.map(UInt32.init) }
            let window = NeuronWindow(stride: (UInt32(layer.stride), UInt32(layer.stride)),
                                      padding: (UInt32(layer.pad), UInt32(layer.pad), UInt32(layer.pad), UInt32(layer.pad)))
            let blocks = (layer.cout + NeuronProgram.convPackRows - 1) / NeuronProgram.convPackRows
            let weightDims = layout == "winograd" ? [16, blocks, layer.cin, NeuronProgram.convPackRows]
                : layout == "winograd4" ? [36, blocks, layer.cin, NeuronProgram.convPackRows]
                : layout == "packed" ? [blocks, layer.cin, layer.k, layer.k, NeuronProgram.convPackRows] : dimsOfWeights
            program.conv2d(.contiguous(slot: 3, dims: dims([n, layer.cout, layer.ho, layer.wo])),
                           .contiguous(slot: 0, dims: dims([n, layer.cin, layer.h, layer.w])),
                           weight: .contiguous(slot: 1, dims: dims(weightDims), dtype: pairs ? .bfloat16 : .float32),
                           bias: .contiguous(slot: 2, dims: [UInt32(layer.cout)]), window: window, relu: true,
                           packedWeights: layout == "packed", winograd: layout.hasPrefix("winograd"), bf16Pairs: pairs)
            let flops = 2.0 * Double(n * layer.cout * layer.ho * layer.wo) * Double(layer.cin * layer.k * layer.k)
            let repetitions = max(3, min(20, Int(2e9 / flops)))
            let best = try core.best(program, buffers: [x, weight, bias, out], repetitions: repetitions)
            records.append(Record(layer: layer.name,
                                  shape: "\(n)x\(layer.cin)x\(layer.h)x\(layer.w) k\(layer.k) s\(layer.stride) -> \(layer.cout)",
                                  weights: layout, backend: backend, repetitions: repetitions, gflops: flops / best / 1e9,
                                  milliseconds: best * 1e3, count: layer.count))
        }
        let weighted = records.reduce(0) { $0 + $1.milliseconds * Double($1.count) }
        let weightedFlops = records.reduce(0) { $0 + $1.gflops * $1.milliseconds * 1e6 * Double($1.count) }
        let report = Report(layers: records, weighted_milliseconds: weighted,
                            weighted_gflops: weighted > 0 ? weightedFlops / (weighted * 1e6) : 0)
        if json { return try printJSON(report) }
        print("neuron-bench conv: ResNet-50 layers, fp32, batch \(batch), backend \(backend); best of the repetitions; GFLOP/s of the direct convolution's multiply-adds")
        for r in records {
            print(String(format: "%-12@ x%-2d %-34@ %-9@ %8.2f GFLOP/s %9.2f ms", r.layer as NSString, r.count,
                         r.shape as NSString, r.weights as NSString, r.gflops, r.milliseconds))
        }
        let scope = records.count == Self.layers.count ? "all of ResNet-50's 53 convolutions" : "these layers times their counts"
        print(String(format: "%@: %.2f ms, %.2f GFLOP/s", scope as NSString, report.weighted_milliseconds,
                     report.weighted_gflops))
    }
}

struct Submit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Submit-to-completion round trip of an empty job, and the jobs per second a queue sustains.",
        discussion: "With --backend sim,kernel both run in this command and the JSON carries kernel_vs_sim.")

    @Option(help: "Backends, comma-separated: sim, kernel.")
    var backend = "sim"

    @Option(help: "Jobs per measurement.")
    var jobs = 2000

    @Flag(help: "Print JSON.")
    var json = false

    struct Record: Codable {
        var backend: String
        var jobs: Int
        var round_trip_us: Double
        var jobs_per_s: Double
    }

    struct Report: Codable {
        var results: [Record]
        var kernel_vs_sim: Double?
    }

    func measure(_ name: String) throws -> Record {
        let core = try BenchCore(backend: name)
        defer { core.device.close() }
        var program = NeuronProgram()
        program.nop()
        let image = program.image()
        let clock = ContinuousClock()
        // Warm up: threads, caches.
        for _ in 0..<50 { _ = try core.queue.wait(try core.queue.submit(image: image, buffers: []), timeout: .seconds(60)) }
        let roundTrip = try clock.measure {
            for _ in 0..<jobs {
                let job = try core.queue.submit(image: image, buffers: [])
                guard try core.queue.wait(job, timeout: .seconds(60)) != nil else {
                    throw NeuronError.invalidArgument("\(job) did not end")
                }
            }
        }
        // Sustained: keep the queue full, wait for the oldest when it is.
        var pending: [NeuronJob] = []
        pending.reserveCapacity(NeuronQueueLimits.depth)
        let sustained = try clock.measure {
            var submitted = 0
            while submitted < jobs {
                do {
                    pending.append(try core.queue.submit(image: image, buffers: []))
                    submitted += 1
                } catch let error as NeuronError {
                    guard case .queueFull = error else { throw error }
                    // The oldest job still queued.
                    _ = try core.queue.wait(pending[pending.count - NeuronQueueLimits.depth], timeout: .seconds(60))
                }
            }
            if let last = pending.last { _ = try core.queue.wait(last, timeout: .seconds(60)) }
        }
        return Record(backend: name, jobs: jobs, round_trip_us: seconds(roundTrip) / Double(jobs) * 1e6,
                      jobs_per_s: Double(jobs) / seconds(sustained))
    }

    func run() throws {
        let names = backend.split(separator: ",").map { String($0) }
        guard !names.isEmpty, jobs > 0 else { throw ValidationError("--backend names sim and/or kernel; --jobs > 0") }
        let records = try names.map(measure)
        let sim = records.first { $0.backend == "sim" }, kernel = records.first { $0.backend == "kernel" }
        let ratio = sim.flatMap { s in kernel.map { $0.round_trip_us / s.round_trip_us } }
        if json { return try printJSON(Report(results: records, kernel_vs_sim: ratio)) }
        print("neuron-bench submit: an empty job, \(jobs) jobs per measurement")
        for r in records {
            print(String(format: "%-7@ round trip %8.1f us   sustained %10.0f jobs/s", r.backend as NSString,
                         r.round_trip_us, r.jobs_per_s))
        }
        if let ratio { print(String(format: "kernel / sim round trip: %.2fx", ratio)) }
    }
}
