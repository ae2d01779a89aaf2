import CNeuronEngine
import Foundation
import NeuronDevice
import Testing

/// Host memory bound to slots for a run of the engine.
final class Slots {
    var buffers: [UnsafeMutableRawBufferPointer]

    init(_ sizes: [Int]) {
        buffers = sizes.map {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: $0, alignment: 64)
            buffer.initializeMemory(as: UInt8.self, repeating: 0)
            return buffer
        }
    }

    deinit { buffers.forEach { $0.deallocate() } }

    func set(_ slot: Int, _ values: [Float]) {
        values.withUnsafeBytes { buffers[slot].copyMemory(from: $0) }
    }

    func floats(_ slot: Int, count: Int? = nil) -> [Float] {
        Array(buffers[slot].bindMemory(to: Float.self).prefix(count ?? buffers[slot].count / 4))
    }

    func run(_ program: NeuronProgram) throws(NeuronProgramError) {
        try NeuronEngine.run(program.image(), slots: buffers)
    }
}

/// Deterministic inputs: a linear congruential sequence in [-2, 2).
func sample(_ count: Int, seed: UInt32) -> [Float] {
    var state = seed
    return (0..<count).map { _ in
        state = state &* 1_664_525 &+ 1_013_904_223
        return Float(state >> 8) / Float(1 << 24) * 4 - 2
    }
}

@Suite("Engine: results")
struct EngineResultTests {
    /// The ISA's definition of matmul: k in order, multiply then add, each
    /// rounded to Float; the bias last.
    func referenceMatmul(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int, bias: [Float]?,
                         bTransposed: Bool = false) -> [Float] {
        var out = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var acc: Float = 0
                for p in 0..<k {
                    let product = a[i * k + p] * (bTransposed ? b[j * k + p] : b[p * n + j])
                    acc = acc + product
                }
                if let bias { acc = acc + bias[j] }
                out[i * n + j] = acc
            }
        }
        return out
    }

    @Test("matmul with bias equals the ISA's definition bit for bit")
    func matmul() throws {
        let (m, k, n) = (37, 53, 29)
        let a = sample(m * k, seed: 1), b = sample(k * n, seed: 2), bias = sample(n, seed: 3)
        let slots = Slots([m * k * 4, k * n * 4, n * 4, m * n * 4])
        slots.set(0, a); slots.set(1, b); slots.set(2, bias)
        var program = NeuronProgram()
        program.matmul(.contiguous(slot: 3, dims: [UInt32(m), UInt32(n)]),
                       .contiguous(slot: 0, dims: [UInt32(m), UInt32(k)]),
                       .contiguous(slot: 1, dims: [UInt32(k), UInt32(n)]),
                       bias: .contiguous(slot: 2, dims: [UInt32(n)]))
        try slots.run(program)
        let got = slots.floats(3)
        let want = referenceMatmul(a, b, m: m, k: k, n: n, bias: bias)
        #expect(got.map(\.bitPattern) == want.map(\.bitPattern))
    }

    @Test("batched matmul against a transposed view, no copy")
    func batchedTransposed() throws {
        let (batch, m, k, n) = (3, 4, 6, 5)
        let a = sample(batch * m * k, seed: 7), bt = sample(batch * n * k, seed: 8)
        let slots = Slots([a.count * 4, bt.count * 4, batch * m * n * 4])
        slots.set(0, a); slots.set(1, bt)
        var program = NeuronProgram()
        let bView = NeuronTensorView.contiguous(slot: 1, dims: [UInt32(batch), UInt32(n), UInt32(k)]).swapping(1, 2)
        program.matmul(.contiguous(slot: 2, dims: [UInt32(batch), UInt32(m), UInt32(n)]),
                       .contiguous(slot: 0, dims: [UInt32(batch), UInt32(m), UInt32(k)]), bView)
        try slots.run(program)
        let got = slots.floats(2)
        for index in 0..<batch {
            let want = referenceMatmul(Array(a[(index * m * k)..<((index + 1) * m * k)]),
                                       Array(bt[(index * n * k)..<((index + 1) * n * k)]),
                                       m: m, k: k, n: n, bias: nil, bTransposed: true)
            #expect(Array(got[(index * m * n)..<((index + 1) * m * n)]) == want)
        }
    }

    @Test("binary ops broadcast a row over a matrix", arguments: NeuronBinaryOp.allCases)
    func binary(_ op: NeuronBinaryOp) throws {
        let a = sample(20, seed: 11).map { op == .pow ? abs($0) + 0.5 : $0 }
        let row = sample(5, seed: 12).map { op == .div ? $0 + 3 : $0 }
        let slots = Slots([80, 20, 80])
        slots.set(0, a); slots.set(1, row)
        var program = NeuronProgram()
        program.binary(op, .contiguous(slot: 2, dims: [4, 5]), .contiguous(slot: 0, dims: [4, 5]),
                       NeuronTensorView(slot: 1, dims: [4, 5], strides: [0, 1]))
        try slots.run(program)
        let got = slots.floats(2)
        for index in 0..<20 {
            let (x, y) = (a[index], row[index % 5])
            let want: Float = switch op {
            case .add: x + y
            case .sub: x - y
            case .mul: x * y
            case .div: x / y
            case .max: Swift.max(x, y)
            case .min: Swift.min(x, y)
            case .pow: Foundation.pow(x, y)
            }
            if op == .pow {
                #expect(abs(got[index] - want) <= 4e-6 * abs(want), "\(x)^\(y)")
            } else {
                #expect(got[index] == want)
            }
        }
    }

    @Test("unary ops within a few ulp of libm", arguments: NeuronUnaryOp.allCases)
    func unary(_ op: NeuronUnaryOp) throws {
        var inputs = sample(200, seed: 21).map { $0 * 3 }
        if [.log, .sqrt, .rsqrt].contains(op) { inputs = inputs.map { abs($0) + 0.01 } }
        let slots = Slots([800, 800])
        slots.set(0, inputs)
        var program = NeuronProgram()
        program.unary(op, .contiguous(slot: 1, dims: [200]), .contiguous(slot: 0, dims: [200]), alpha: 0.1)
        try slots.run(program)
        for (x, got) in zip(inputs, slots.floats(1)) {
            let d = Double(x)
            let want: Double = switch op {
            case .relu: Swift.max(d, 0)
            case .leakyRelu: d > 0 ? d : d * Double(Float(0.1))
            case .geluErf: 0.5 * d * (1 + Foundation.erf(d / 2.0.squareRoot()))
            case .geluTanh: 0.5 * d * (1 + Foundation.tanh(0.7978845608028654 * (d + 0.044715 * d * d * d)))
            case .sigmoid: 1 / (1 + Foundation.exp(-d))
            case .tanh: Foundation.tanh(d)
            case .exp: Foundation.exp(d)
            case .log: Foundation.log(d)
            case .sqrt: d.squareRoot()
            case .rsqrt: 1 / d.squareRoot()
            case .erf: Foundation.erf(d)
            case .neg: -d
            case .abs: Swift.abs(d)
            case .reciprocal: 1 / d
            }
            // Relative 2e-6; near zero (the gelu tails) 4e-7 absolute.
            #expect(abs(Double(got) - want) <= 2e-6 * Swift.max(abs(want), 0.2), "\(op)(\(x)) = \(got), want \(want)")
        }
    }

    @Test("reductions over the last axis, in order", arguments: NeuronReduceOp.allCases)
    func reduce(_ op: NeuronReduceOp) throws {
        let a = sample(3 * 7, seed: 31)
        let slots = Slots([84, 12])
        slots.set(0, a)
        var program = NeuronProgram()
        program.reduce(op, .contiguous(slot: 1, dims: [3, 1]), .contiguous(slot: 0, dims: [3, 7]))
        try slots.run(program)
        for row in 0..<3 {
            let values = Array(a[(row * 7)..<(row * 7 + 7)])
            let sum = values.dropFirst().reduce(values[0]) { $0 + $1 }
            let want: Float = switch op {
            case .sum: sum
            case .mean: sum / 7
            case .max: values.max() ?? 0
            case .min: values.min() ?? 0
            }
            #expect(slots.floats(1)[row] == want)
        }
    }

    @Test("softmax rows sum to one and match the definition")
    func softmax() throws {
        let a = sample(4 * 9, seed: 41).map { $0 * 5 }
        let slots = Slots([144, 144])
        slots.set(0, a)
        var program = NeuronProgram()
        program.softmax(.contiguous(slot: 1, dims: [4, 9]), .contiguous(slot: 0, dims: [4, 9]))
        try slots.run(program)
        let got = slots.floats(1)
        for row in 0..<4 {
            let values = a[(row * 9)..<(row * 9 + 9)].map(Double.init)
            let top = values.max() ?? 0
            let total = values.map { Foundation.exp($0 - top) }.reduce(0, +)
            for j in 0..<9 {
                #expect(abs(Double(got[row * 9 + j]) - Foundation.exp(values[j] - top) / total) < 1e-6)
            }
            #expect(abs(got[(row * 9)..<(row * 9 + 9)].reduce(0, +) - 1) < 1e-5)
        }
    }

    @Test("fill in every dtype, and a transposing copy")
    func fillAndCopy() throws {
        let slots = Slots([64, 64, 64, 24, 24])
        var program = NeuronProgram()
        program.fill(.contiguous(slot: 0, dims: [4]), value: 1.5)
        program.fill(.contiguous(slot: 1, dims: [4], dtype: .bfloat16), value: 3.14159)
        program.fill(.contiguous(slot: 2, dims: [2], dtype: .int64), value: -7)
        slots.set(3, [1, 2, 3, 4, 5, 6])
        program.copy(.contiguous(slot: 4, dims: [3, 2]), from: NeuronTensorView.contiguous(slot: 3, dims: [2, 3]).swapping(0, 1))
        try slots.run(program)
        #expect(slots.floats(0, count: 4) == [1.5, 1.5, 1.5, 1.5])
        #expect(Array(slots.buffers[1].bindMemory(to: UInt16.self).prefix(2)) == [0x4049, 0x4049])
        #expect(Array(slots.buffers[2].bindMemory(to: Int64.self).prefix(2)) == [-7, -7])
        #expect(slots.floats(4, count: 6) == [1, 4, 2, 5, 3, 6])
    }
}

@Suite("Engine: hostile programs are refused where they go wrong")
struct EngineValidationTests {
    func program(_ build: (inout NeuronProgram) -> Void) -> NeuronProgram {
        var program = NeuronProgram()
        build(&program)
        return program
    }

    func refusal(_ image: [UInt64], slots: [Int] = [64, 64]) -> NeuronProgramError? {
        let bound = Slots(slots)
        do {
            try NeuronEngine.run(image, slots: bound.buffers)
            return nil
        } catch {
            return error
        }
    }

    var valid: NeuronProgram {
        program { p in
            p.fill(.contiguous(slot: 0, dims: [16]), value: 1)
            p.unary(.relu, .contiguous(slot: 1, dims: [16]), .contiguous(slot: 0, dims: [16]))
        }
    }

    @Test("a valid program runs")
    func validRuns() {
        #expect(refusal(valid.image()) == nil)
    }

    @Test("truncated, padded, or with a bad header")
    func headers() {
        let image = valid.image()
        #expect(refusal(Array(image.dropLast()))?.kind == .header)
        #expect(refusal(image + [0])?.kind == .header)
        #expect(refusal([])?.kind == .header)
        var badMagic = image
        badMagic[0] ^= 1
        #expect(refusal(badMagic)?.kind == .header)
        var badVersion = image
        badVersion[0] ^= 1 << 33
        #expect(refusal(badVersion)?.kind == .header)
        #expect(refusal(program { _ in }.image())?.kind == .header)
    }

    @Test("out of range, unbound slots and overflowing strides")
    func ranges() {
        #expect(refusal(program { $0.fill(.contiguous(slot: 0, dims: [17]), value: 0) }.image())
                == NeuronProgramError(kind: .range, index: 0))
        #expect(refusal(program { $0.fill(.contiguous(slot: 0, dims: [1], offset: 16), value: 0) }.image())?.kind == .range)
        #expect(refusal(program { $0.fill(.contiguous(slot: 5, dims: [1]), value: 0) }.image())?.kind == .slot)
        #expect(refusal(program { $0.fill(.contiguous(slot: 16, dims: [1]), value: 0) }.image())?.kind == .slot)
        #expect(refusal(program {
            $0.fill(NeuronTensorView(slot: 0, dims: [2, 2], strides: [UInt64.max / 2, 1]), value: 0)
        }.image())?.kind == .range)
        #expect(refusal(program {
            $0.fill(NeuronTensorView(slot: 0, dims: [UInt32.max, UInt32.max, 4], strides: [0, 0, 1]), value: 0)
        }.image())?.kind == .descriptor)
        #expect(refusal(program { $0.fill(.contiguous(slot: 0, dims: [0]), value: 0) }.image())?.kind == .descriptor)
        #expect(refusal(program { $0.fill(.contiguous(slot: 0, dims: [1, 1, 1, 1, 1, 1, 1]), value: 0) }.image())?.kind == .descriptor)
    }

    @Test("the first bad instruction is named")
    func instructions() {
        var bad = valid
        var insn = neuron_insn()
        insn.opcode = 99
        bad.append(insn)
        #expect(refusal(bad.image()) == NeuronProgramError(kind: .opcode, index: 2))

        var badSub = valid
        var unary = neuron_insn()
        unary.opcode = UInt8(NEURON_OP_UNARY.rawValue)
        unary.sub = 200
        badSub.append(unary)
        #expect(refusal(badSub.image()) == NeuronProgramError(kind: .opcode, index: 2))

        var badOperand = valid
        var copy = neuron_insn()
        copy.opcode = UInt8(NEURON_OP_COPY.rawValue)
        copy.operand = (0, 77, 0, 0)
        badOperand.append(copy)
        #expect(refusal(badOperand.image()) == NeuronProgramError(kind: .operand, index: 2))

        var flagged = valid
        var nop = neuron_insn()
        nop.flags = 1
        flagged.append(nop)
        #expect(refusal(flagged.image()) == NeuronProgramError(kind: .opcode, index: 2))

        var reserved = valid
        var nop2 = neuron_insn()
        nop2.reserved.1 = 1
        reserved.append(nop2)
        #expect(refusal(reserved.image()) == NeuronProgramError(kind: .opcode, index: 2))

        #expect(refusal(program {
            $0.binary(.add, .contiguous(slot: 0, dims: [4]), .contiguous(slot: 0, dims: [4]), .contiguous(slot: 1, dims: [5]))
        }.image()) == NeuronProgramError(kind: .operand, index: 0))
        #expect(refusal(program {
            $0.matmul(.contiguous(slot: 0, dims: [2, 2]), .contiguous(slot: 1, dims: [2, 3]), .contiguous(slot: 1, dims: [2, 2]))
        }.image())?.kind == .operand)
        #expect(refusal(program {
            $0.unary(.exp, .contiguous(slot: 0, dims: [4], dtype: .int32), .contiguous(slot: 1, dims: [4]))
        }.image())?.kind == .operand)
    }

    @Test("random corruption of a valid program never crashes the engine")
    func mutations() {
        let base = program { p in
            p.matmul(.contiguous(slot: 0, dims: [2, 2]), .contiguous(slot: 1, dims: [2, 2]),
                     .contiguous(slot: 1, dims: [2, 2]), bias: .contiguous(slot: 1, dims: [2]))
            p.softmax(.contiguous(slot: 0, dims: [2, 2]), .contiguous(slot: 0, dims: [2, 2]))
            p.reduce(.mean, .contiguous(slot: 1, dims: [2, 1]), .contiguous(slot: 0, dims: [2, 2]))
        }.image()
        var state: UInt64 = 12345
        var accepted = 0
        for _ in 0..<3000 {
            var image = base
            for _ in 0..<3 {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                let word = Int(state >> 33) % image.count
                image[word] ^= 1 << (state & 63)
            }
            if refusal(image) == nil { accepted += 1 }
        }
        #expect(accepted < 3000)
    }
}

@Suite("Engine: edge values")
struct EngineEdgeTests {
    @Test("fill of NaN and out-of-range values into integers saturates (found by the fuzzer)")
    func fillSaturates() throws {
        let slots = Slots([16, 16, 16])
        var program = NeuronProgram()
        program.fill(.contiguous(slot: 0, dims: [2], dtype: .int32), value: .nan)
        program.fill(.contiguous(slot: 0, dims: [1], dtype: .int32, offset: 2), value: 1e20)
        program.fill(.contiguous(slot: 0, dims: [1], dtype: .int32, offset: 3), value: -1e20)
        program.fill(.contiguous(slot: 1, dims: [1], dtype: .int64), value: -.infinity)
        program.fill(.contiguous(slot: 1, dims: [1], dtype: .int64, offset: 1), value: -2.75)
        try slots.run(program)
        #expect(Array(slots.buffers[0].bindMemory(to: Int32.self).prefix(4)) == [0, 0, .max, .min])
        #expect(Array(slots.buffers[1].bindMemory(to: Int64.self).prefix(2)) == [.min, -2])
    }
}
