import Foundation
import NeuronDevice
import NeuronNEFF

// Fixtures the test targets share: host memory for the engine, inputs,
// the tiny one-core model and its reference, and waiting on a job.

/// Host memory bound to slots for a run of the engine. Each buffer ends
/// where an inaccessible page begins (its size rounded up to 8 bytes), and
/// another precedes its first page, as the driver's kernel mappings lie
/// between vmalloc guard pages: a kernel that reads or writes one element
/// past a tensor at the end of its buffer crashes the test.
public final class Slots {
    public var buffers: [UnsafeMutableRawBufferPointer]
    private var mappings: [(base: UnsafeMutableRawPointer, length: Int)] = []

    public init(_ sizes: [Int]) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        buffers = []
        for size in sizes {
            let bytes = (size + 7) & ~7
            let pages = (bytes + page - 1) / page
            let length = (pages + 2) * page
            guard let base = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
                  base != MAP_FAILED else { fatalError("mmap of \(length) bytes failed") }
            mprotect(base, page, PROT_NONE)
            mprotect(base + (pages + 1) * page, page, PROT_NONE)
            mappings.append((base, length))
            buffers.append(UnsafeMutableRawBufferPointer(start: base + (pages + 1) * page - bytes, count: size))
        }
    }

    deinit { mappings.forEach { munmap($0.base, $0.length) } }

    public func set(_ slot: Int, _ values: [Float]) {
        values.withUnsafeBytes { buffers[slot].copyMemory(from: $0) }
    }

    public func floats(_ slot: Int, count: Int? = nil) -> [Float] {
        Array(buffers[slot].bindMemory(to: Float.self).prefix(count ?? buffers[slot].count / 4))
    }

    public func run(_ program: NeuronProgram) throws(NeuronProgramError) {
        try NeuronEngine.run(program.image(), slots: buffers)
    }
}

/// Deterministic inputs: a linear congruential sequence in [-2, 2).
public func sample(_ count: Int, seed: UInt32) -> [Float] {
    var state = seed
    return (0..<count).map { _ in
        state = state &* 1_664_525 &+ 1_013_904_223
        return Float(state >> 8) / Float(1 << 24) * 4 - 2
    }
}

/// y = relu(x · w + b): a model of one NeuronCore, x [2, 8], w [8, 4].
public func tinyModel() -> NEFFModel {
    var program = NeuronProgram()
    program.matmul(.contiguous(slot: 3, dims: [2, 4]), .contiguous(slot: 0, dims: [2, 8]),
                   .contiguous(slot: 1, dims: [8, 4]), bias: .contiguous(slot: 2, dims: [4]))
    program.unary(.relu, .contiguous(slot: 3, dims: [2, 4]), .contiguous(slot: 3, dims: [2, 4]))
    let w = sample(32, seed: 7), b = sample(4, seed: 8)
    return NEFFModel(
        name: "tiny", coreCount: 1,
        tensors: [NEFFTensor(name: "x", kind: .input, dtype: .float32, shape: [2, 8]),
                  NEFFTensor(name: "w", kind: .weight, dtype: .float32, shape: [8, 4]),
                  NEFFTensor(name: "b", kind: .weight, dtype: .float32, shape: [4]),
                  NEFFTensor(name: "y", kind: .output, dtype: .float32, shape: [2, 4])],
        programs: [NEFFProgram(core: 0, image: program.image(), slots: ["x", "w", "b", "y"])],
        weights: ["w": w.withUnsafeBytes { Array($0) }, "b": b.withUnsafeBytes { Array($0) }])
}

/// The reference output of tinyModel() for input `x`.
public func tinyReference(_ x: [Float]) -> [Float] {
    let w = sample(32, seed: 7), b = sample(4, seed: 8)
    var out = [Float]()
    for i in 0..<2 { for j in 0..<4 {
        var acc: Float = 0
        for k in 0..<8 { acc = acc.addingProduct(x[i * 8 + k], w[k * 4 + j]) }
        acc = acc + b[j]
        out.append(acc > 0 ? acc : 0)
    } }
    return out
}

/// Wait for `job` or fail the test after `seconds`.
public func finish(_ queue: NeuronQueue, _ job: NeuronJob, seconds: Int64 = 60) throws -> NeuronJobResult {
    guard let result = try queue.wait(job, timeout: .seconds(seconds)) else {
        throw NeuronError.invalidArgument("\(job) did not end within \(seconds) s")
    }
    return result
}


/// SplitMix64: a small seeded generator, so that a test's random cases are
/// the same on every run.
public struct SplitMix: RandomNumberGenerator {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
