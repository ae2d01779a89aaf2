import CNeuronEngine
import Foundation
import NeuronDevice
import Testing
import TestSupport

@Suite("Engine: results")
struct EngineResultTests {
    /// The ISA's definition of matmul: k in order, a fused multiply-add
    /// (one rounding) per step; the bias last.
    func referenceMatmul(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int, bias: [Float]?,
                         bTransposed: Bool = false) -> [Float] {
        var out = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var acc: Float = 0
                for p in 0..<k {
                    acc = acc.addingProduct(a[i * k + p], bTransposed ? b[j * k + p] : b[p * n + j])
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

    /// (m, k, n): blocks of rows and their leftovers, taps past one block of
    /// k, columns past the vectors; a few rows (B streamed row by row) with
    /// columns past one block of 1024; one to four rows over tiles of eight (one or two rows), four
    /// and two vectors of columns; tails of 17 to 31 columns past
    /// AVX-512's panels of 32, run 16 at a time; the rows past the blocks of
    /// 12 in one last block of 5 to 14 (14, 27: 12, 8 and 7; 10; 5).
    @Test("the vector kernel and the scalar tails give the definition's bits",
          arguments: [(13, 40, 71), (8, 3, 64), (33, 17, 129), (5, 4100, 20), (11, 300, 16), (4, 257, 10),
                      (1, 300, 2100), (3, 70, 100), (2, 33, 96), (4, 320, 1280), (4, 9, 48),
                      (16, 528, 88), (7, 50, 59), (40, 600, 96), (128, 300, 64), (2, 70, 300), (1, 9, 128),
                      (14, 70, 64), (27, 33, 96), (10, 20, 40), (5, 100, 64)])
    func matmulVectorPath(_ shape: (Int, Int, Int)) throws {
        let (m, k, n) = shape
        let a = sample(m * k, seed: 4), b = sample(k * n, seed: 5), bias = sample(n, seed: 6)
        let slots = Slots([m * k * 4, k * n * 4, n * 4, m * n * 4])
        slots.set(0, a); slots.set(1, b); slots.set(2, bias)
        var program = NeuronProgram()
        program.matmul(.contiguous(slot: 3, dims: [UInt32(m), UInt32(n)]),
                       .contiguous(slot: 0, dims: [UInt32(m), UInt32(k)]),
                       .contiguous(slot: 1, dims: [UInt32(k), UInt32(n)]),
                       bias: .contiguous(slot: 2, dims: [UInt32(n)]))
        let want = referenceMatmul(a, b, m: m, k: k, n: n, bias: bias).map(\.bitPattern)
        // Each width this CPU runs (the kernel's own choice is the widest).
        for level in [NEURON_SIMD_AVX2, NEURON_SIMD_AVX512, NEURON_SIMD_CPU] {
            guard neuron_simd_set_thread(UInt32(level.rawValue)) == 0 else { continue }
            defer { _ = neuron_simd_set_thread(UInt32(NEURON_SIMD_CPU.rawValue)) }
            slots.set(3, [Float](repeating: .nan, count: m * n))
            try slots.run(program)
            #expect(slots.floats(3).map(\.bitPattern) == want, "at simd level \(level.rawValue)")
        }
    }

    /// A read in place by the vector kernel (only bf16 A is packed): rows
    /// and k at any strides, here A stored [k, m] and viewed transposed,
    /// over blocks of rows with B packed (m >= 24) and without.
    @Test("matmul with A as a transposed view gives the definition's bits",
          arguments: [(30, 300, 70), (13, 40, 64), (25, 3, 33), (48, 520, 96)])
    func transposedA(_ shape: (Int, Int, Int)) throws {
        let (m, k, n) = shape
        let at = sample(k * m, seed: 14), b = sample(k * n, seed: 15)
        let a = (0..<(m * k)).map { at[($0 % k) * m + $0 / k] }
        let slots = Slots([k * m * 4, k * n * 4, m * n * 4])
        slots.set(0, at); slots.set(1, b)
        var program = NeuronProgram()
        program.matmul(.contiguous(slot: 2, dims: [UInt32(m), UInt32(n)]),
                       NeuronTensorView.contiguous(slot: 0, dims: [UInt32(k), UInt32(m)]).swapping(0, 1),
                       .contiguous(slot: 1, dims: [UInt32(k), UInt32(n)]))
        try slots.run(program)
        #expect(slots.floats(2).map(\.bitPattern) == referenceMatmul(a, b, m: m, k: k, n: n, bias: nil).map(\.bitPattern))
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

    /// B as a transposed view (x · W^T, Q · K^T): copied into rows for
    /// the vector kernel, the same chains; bigger than the scratch's half:
    /// the reference loop.
    @Test("matmul against a transposed B gives the definition's bits, copied into rows or not",
          arguments: [(1, 24, 96), (13, 64, 70), (5, 300, 40), (2, 2100, 70)])
    func transposedB(_ shape: (Int, Int, Int)) throws {
        let (m, k, n) = shape
        let a = sample(m * k, seed: 91), bt = sample(n * k, seed: 92)
        let slots = Slots([a.count * 4, bt.count * 4, m * n * 4])
        slots.set(0, a); slots.set(1, bt)
        var program = NeuronProgram()
        let bView = NeuronTensorView.contiguous(slot: 1, dims: [UInt32(n), UInt32(k)]).swapping(0, 1)
        program.matmul(.contiguous(slot: 2, dims: [UInt32(m), UInt32(n)]), .contiguous(slot: 0, dims: [UInt32(m), UInt32(k)]), bView)
        try slots.run(program)
        let want = referenceMatmul(a, bt, m: m, k: k, n: n, bias: nil, bTransposed: true)
        #expect(slots.floats(2).map(\.bitPattern) == want.map(\.bitPattern))
    }

    @Test("binary ops broadcast a row over a matrix", arguments: NeuronBinaryOp.allCases.filter { ![.and, .or, .xor, .shl, .shr].contains($0) })
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
            case .fmod: Foundation.fmod(x, y)
            case .mod: { let r = Foundation.fmod(x, y); return r != 0 && (r < 0) != (y < 0) ? r + y : r }()
            case .and, .or, .xor, .shl, .shr: .nan   // integers and bool only (TypedEngineTests)
            }
            if op == .pow {
                #expect(abs(got[index] - want) <= 4e-6 * abs(want), "\(x)^\(y)")
            } else {
                #expect(got[index] == want)
            }
        }
    }

    @Test("unary ops within a few ulp of libm", arguments: NeuronUnaryOp.allCases.filter { $0 != .not && !trigonometric.contains($0) })
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
            case .silu: d / (1 + Foundation.exp(-d))
            case .tanh: Foundation.tanh(d)
            case .exp: Foundation.exp(d)
            case .log: Foundation.log(d)
            case .sqrt: d.squareRoot()
            case .rsqrt: 1 / d.squareRoot()
            case .erf: Foundation.erf(d)
            case .neg: -d
            case .abs: Swift.abs(d)
            case .reciprocal: 1 / d
            case .floor: Foundation.floor(d)
            case .ceil: Foundation.ceil(d)
            case .round: d.rounded(.toNearestOrEven)
            case .not: .nan   // integers and bool only (TypedEngineTests)
            default: .nan     // trigonometric (below)
            }
            // Relative 2e-6; near zero (the gelu tails) 4e-7 absolute.
            #expect(abs(Double(got) - want) <= 2e-6 * Swift.max(abs(want), 0.2), "\(op)(\(x)) = \(got), want \(want)")
        }
    }

    static let trigonometric: [NeuronUnaryOp] = [.sin, .cos, .tan, .asin, .acos, .atan, .sinh, .cosh, .asinh, .acosh, .atanh]

    /// ISA 1.5: computed in double and rounded once, so within one ulp of
    /// glibc's double result rounded to float (in practice equal), over
    /// each function's domain, tiny and huge arguments (sin, cos and tan
    /// reduce 3e38 exactly), edges, zeros of both signs, infinities and NaN.
    @Test("trigonometric and hyperbolic ops within one ulp of glibc's double", arguments: trigonometric)
    func trigonometricOp(_ op: NeuronUnaryOp) throws {
        var state = 0x9e37_79b9_7f4a_7c15 &+ UInt64(op.rawValue)
        func next() -> UInt64 {   // splitmix64
            state &+= 0x9e37_79b9_7f4a_7c15
            var z = state
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            return z ^ (z >> 31)
        }
        var inputs: [Float] = [0, -0.0, 1, -1, .infinity, -.infinity, .nan, .leastNonzeroMagnitude, .greatestFiniteMagnitude,
                               1.5707964, 3.1415927, -4.712389, 1e-4, 0.5, 0.99999994, 1.0000001, 88, 89.5]
        for index in 0..<4000 {
            let unit = Double(next() >> 11) / Double(1 << 53)
            let sign: Double = next() & 1 == 0 ? 1 : -1
            let x: Double = switch index % 3 {
            case 0: sign * unit * 10                      // the everyday range
            case 1: sign * Foundation.pow(10, unit * 76 - 38)   // 1e-38 to 1e38
            default: sign * unit                          // inside [-1, 1]
            }
            inputs.append(Float(x))
        }
        let count = inputs.count
        let slots = Slots([count * 4, count * 4])
        slots.set(0, inputs)
        var program = NeuronProgram()
        program.unary(op, .contiguous(slot: 1, dims: [UInt32(count)]), .contiguous(slot: 0, dims: [UInt32(count)]))
        try slots.run(program)
        for (x, got) in zip(inputs, slots.floats(1)) {
            let d = Double(x)
            let exact: Double = switch op {
            case .sin: Foundation.sin(d)
            case .cos: Foundation.cos(d)
            case .tan: Foundation.tan(d)
            case .asin: Foundation.asin(d)
            case .acos: Foundation.acos(d)
            case .atan: Foundation.atan(d)
            case .sinh: Foundation.sinh(d)
            case .cosh: Foundation.cosh(d)
            case .asinh: Foundation.asinh(d)
            case .acosh: Foundation.acosh(d)
            default: Foundation.atanh(d)
            }
            let want = Float(exact)
            if want.isNaN {
                #expect(got.isNaN, "\(op)(\(x)) = \(got), want NaN")
            } else if want == 0 || want.isInfinite {
                #expect(got == want && got.sign == want.sign, "\(op)(\(x)) = \(got), want \(want)")
            } else {
                #expect(got == want || got == want.nextUp || got == want.nextDown, "\(op)(\(x)) = \(got), want \(want)")
            }
        }
    }

    @Test("reductions over the last axis, in order", arguments: NeuronReduceOp.allCases.filter { $0 != .argmax && $0 != .argmin })
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
            case .prod: values.dropFirst().reduce(values[0]) { $0 * $1 }
            case .argmax, .argmin: .nan   // into int64 (TypedEngineTests)
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

    /// A random view of up to six axes inside `elements`: dims 1 to 5,
    /// each axis's stride a multiple of the one inside it (some with
    /// gaps, some zero), axes shuffled, a random offset.
    static func randomView(_ rng: inout SplitMix, slot: Int, dtype: NeuronDType, elements: Int) -> NeuronTensorView {
        while true {
            let view = candidateView(&rng, slot: slot, dtype: dtype)
            let span = zip(view.dims, view.strides).reduce(UInt64(1)) { $0 + UInt64($1.0 - 1) * $1.1 }
            if span <= UInt64(elements) {
                var placed = view
                placed.offset = rng.next() % (UInt64(elements) - span + 1)
                return placed
            }
        }
    }

    static func candidateView(_ rng: inout SplitMix, slot: Int, dtype: NeuronDType) -> NeuronTensorView {
        let rank = Int(rng.next() % 6) + 1
        var dims = (0..<rank).map { _ in UInt32(rng.next() % 5) + 1 }
        if rng.next() % 3 == 0 { dims[rank - 1] = UInt32(rng.next() % 40) + 1 }   // a long row
        var strides = [UInt64](repeating: 0, count: rank)
        var extent: UInt64 = 1
        for axis in (0..<rank).reversed() {
            strides[axis] = rng.next() % 7 == 0 ? 0 : extent * (rng.next() % 3 == 0 ? 2 : 1)
            extent = max(extent, strides[axis] * UInt64(dims[axis]))
        }
        var order = Array(0..<rank)
        for i in stride(from: rank - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        return NeuronTensorView(slot: slot, dtype: dtype, dims: order.map { dims[$0] },
                                strides: order.map { strides[$0] })
    }

    /// Element offsets of `view` in the walk's (row-major) order.
    static func walk(_ view: NeuronTensorView) -> [Int] {
        var offsets: [Int] = []
        var index = [Int](repeating: 0, count: view.dims.count)
        repeat {
            offsets.append(Int(view.offset) + zip(index, view.strides).reduce(0) { $0 + $1.0 * Int($1.1) })
            var axis = view.dims.count - 1
            while axis >= 0 {
                index[axis] += 1
                if index[axis] < Int(view.dims[axis]) { break }
                index[axis] = 0
                axis -= 1
            }
            if axis < 0 { break }
        } while true
        return offsets
    }

    @Test("copy and fill visit any view's elements in the walk's order: short rows, gaps, broadcasts, overlaps within a buffer",
          arguments: [NeuronDType.float32, .float16, .int8, .int64])
    func copyAnyView(_ dtype: NeuronDType) throws {
        let size = dtype.size, elements = 2048
        var rng = SplitMix(seed: 0xC0FFEE &+ UInt64(size))
        for round in 0..<120 {
            let slots = Slots([elements * size, elements * size])
            for slot in 0..<2 {
                for byte in 0..<(elements * size) { slots.buffers[slot][byte] = UInt8(truncatingIfNeeded: rng.next()) }
            }
            var out = Self.randomView(&rng, slot: 1, dtype: dtype, elements: elements)
            // A third of the rounds copy within one buffer.
            let inSlot = round % 3 == 0 ? 1 : 0
            var input = NeuronTensorView(slot: inSlot, dtype: dtype, dims: out.dims,
                                         strides: out.strides.indices.map { _ in 0 })
            var inner: UInt64 = 1
            for axis in (0..<out.dims.count).reversed() {
                input.strides[axis] = inner * (rng.next() % 4 == 0 ? 3 : 1)
                inner = input.strides[axis] * UInt64(out.dims[axis])
            }
            let inSpan = Int(inner)
            guard inSpan <= elements else { continue }
            input.offset = rng.next() % UInt64(elements - inSpan + 1)
            if round % 2 == 1 { out = out.swapping(0, out.dims.count - 1); input = input.swapping(0, input.dims.count - 1) }
            // The model: element by element in the walk's order, on the live bytes.
            var want = [[UInt8]](repeating: [], count: 2)
            for slot in 0..<2 { want[slot] = Array(slots.buffers[slot]) }
            for (o, a) in zip(Self.walk(out), Self.walk(input)) {
                for byte in 0..<size { want[1][o * size + byte] = want[inSlot][a * size + byte] }
            }
            var program = NeuronProgram()
            program.copy(out, from: input)
            try slots.run(program)
            let wrong = zip(Array(slots.buffers[1]), want[1]).filter { $0 != $1 }.count
            #expect(wrong == 0, "round \(round): \(wrong) bytes differ copying \(input) to \(out)")
            #expect(Array(slots.buffers[0]) == want[0], "round \(round): the source buffer changed")
        }
        // Fill: every element of the view, nothing else.
        for round in 0..<60 where dtype == .float32 {
            let slots = Slots([elements * 4])
            slots.set(0, [Float](repeating: -1, count: elements))
            let view = Self.randomView(&rng, slot: 0, dtype: .float32, elements: elements)
            var want = [Float](repeating: -1, count: elements)
            for o in Self.walk(view) { want[o] = 2.5 }
            var program = NeuronProgram()
            program.fill(view, value: 2.5)
            try slots.run(program)
            let wrong = zip(slots.floats(0), want).filter { $0 != $1 }.count
            #expect(wrong == 0, "round \(round): \(wrong) elements differ filling \(view)")
        }
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

        var unusedParam = valid
        var nop2 = neuron_insn()
        nop2.iparam.1 = 1
        unusedParam.append(nop2)
        #expect(refusal(unusedParam.image()) == NeuronProgramError(kind: .parameter, index: 2))

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

/// bf16 as the stack defines it (BFloat16, tested by value below).
func bf16(_ value: Float) -> UInt16 { BFloat16.bits(value) }

func f32(fromBF16 half: UInt16) -> Float { BFloat16.float(half) }

@Test("BFloat16: round to nearest, ties to even, every NaN quiet, exact widening")
func bfloat16Conversion() {
    // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even 1.
    #expect(BFloat16.bits(1 + 0x1p-8) == 0x3f80)
    // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6: up.
    #expect(BFloat16.bits(1 + 3 * 0x1p-8) == 0x3f82)
    #expect(BFloat16.bits(1 + 0x1p-8 + 0x1p-20) == 0x3f81)
    #expect(BFloat16.bits(-3.5) == 0xc060)
    #expect(BFloat16.bits(.infinity) == 0x7f80 && BFloat16.bits(-.infinity) == 0xff80)
    // The largest float rounds up to infinity, as nearest-even says.
    #expect(BFloat16.bits(.greatestFiniteMagnitude) == 0x7f80)
    #expect(BFloat16.bits(.nan) == 0x7fc0 && BFloat16.bits(-.nan) == 0x7fc0)
    #expect(BFloat16.bits(Float(bitPattern: 0xffff_ffff)) == 0x7fc0)
    #expect(BFloat16.bits(Float(bitPattern: 0x7f80_0001)) == 0x7fc0)
    #expect(BFloat16.bits(-0.0) == 0x8000)
    for bits in [UInt16(0x3f80), 0xc060, 0x0001, 0x7f7f, 0x8000] {
        #expect(BFloat16.bits(BFloat16.float(bits)) == bits)
    }
}

@Suite("Engine: CNN and encoder ops")
struct EngineNetworkOpTests {
    @Test("conv2d with groups, stride, padding, dilation, bias and relu equals its definition")
    func conv2d() throws {
        let (n, ci, h, w, co, groups, kh, kw) = (2, 4, 7, 6, 6, 2, 3, 2)
        let window = NeuronWindow(stride: (2, 1), padding: (1, 0, 2, 1), dilation: (1, 2))
        let ho = (h + 1 + 2 - (1 * (kh - 1) + 1)) / 2 + 1
        let wo = (w + 0 + 1 - (2 * (kw - 1) + 1)) / 1 + 1
        let x = sample(n * ci * h * w, seed: 51), weight = sample(co * (ci / groups) * kh * kw, seed: 52)
        let bias = sample(co, seed: 53)
        let slots = Slots([x.count * 4, weight.count * 4, bias.count * 4, n * co * ho * wo * 4])
        slots.set(0, x); slots.set(1, weight); slots.set(2, bias)
        var program = NeuronProgram()
        program.conv2d(.contiguous(slot: 3, dims: [n, co, ho, wo].map(UInt32.init)),
                       .contiguous(slot: 0, dims: [n, ci, h, w].map(UInt32.init)),
                       weight: .contiguous(slot: 1, dims: [co, ci / groups, kh, kw].map(UInt32.init)),
                       bias: .contiguous(slot: 2, dims: [UInt32(co)]), window: window, relu: true)
        try slots.run(program)
        let got = slots.floats(3)
        var want = [Float]()
        let cig = ci / groups, perGroup = co / groups
        for b in 0..<n { for o in 0..<co { for y in 0..<ho { for z in 0..<wo {
            var acc: Float = 0
            for c in 0..<cig { for i in 0..<kh {
                let ih = y * 2 - 1 + i
                guard ih >= 0, ih < h else { continue }
                for j in 0..<kw {
                    let iw = z - 0 + j * 2
                    guard iw >= 0, iw < w else { continue }
                    acc = acc.addingProduct(x[((b * ci + (o / perGroup) * cig + c) * h + ih) * w + iw],
                                            weight[((o * cig + c) * kh + i) * kw + j])
                }
            } }
            acc = acc + bias[o]
            want.append(acc > 0 ? acc : 0)
        } } } }
        #expect(got.map(\.bitPattern) == want.map(\.bitPattern))
    }

    /// One convolution's shape: the gemm path's blocks, tails and gathers.
    struct ConvCase: Sendable, CustomTestStringConvertible {
        var ci, co, h, w, k, stride, pad, dilation, groups: Int
        var weightSpecial: Float? = nil
        /// Padding after the input, when it differs from `pad` (before it).
        var padBottom: Int? = nil, padRight: Int? = nil
        var padEnd: (bottom: Int, right: Int) { (padBottom ?? pad, padRight ?? pad) }
        var testDescription: String {
            "\(ci)->\(co) \(h)x\(w) k\(k) s\(stride) p\(pad) d\(dilation) g\(groups)" +
                (padBottom != nil || padRight != nil ? " pad after \(padEnd.bottom),\(padEnd.right)" : "") +
                (weightSpecial.map { " weight \($0)" } ?? "")
        }
    }

    static let convCases: [ConvCase] = [
        // 1x1 of stride 1 over whole rows (whole panels read in place), positions past a panel.
        .init(ci: 20, co: 13, h: 9, w: 9, k: 1, stride: 1, pad: 0, dilation: 1, groups: 1),
        // 1x1 of stride 1 with padding only after the input (found by fuzzing the driver):
        // whole panels of output positions past the input's last, which must not be
        // read in place (the input ends at its buffer's end, before a guard page).
        .init(ci: 20, co: 13, h: 4, w: 16, k: 1, stride: 1, pad: 0, dilation: 1, groups: 1, padBottom: 1, padRight: 0),
        .init(ci: 20, co: 13, h: 9, w: 9, k: 1, stride: 1, pad: 0, dilation: 1, groups: 1, padBottom: 2, padRight: 0),
        .init(ci: 9, co: 30, h: 1, w: 30, k: 1, stride: 1, pad: 0, dilation: 1, groups: 1, padBottom: 0, padRight: 2),
        .init(ci: 9, co: 30, h: 8, w: 8, k: 1, stride: 1, pad: 0, dilation: 1, groups: 1, padBottom: 2, padRight: 1),
        // Taps past one block of k (256), positions past one block (64), rows past one block (192).
        .init(ci: 40, co: 200, h: 11, w: 10, k: 3, stride: 1, pad: 1, dilation: 1, groups: 1),
        // Stride, padding, a row narrower than a panel, dilation.
        .init(ci: 5, co: 7, h: 13, w: 6, k: 3, stride: 2, pad: 2, dilation: 2, groups: 1),
        .init(ci: 3, co: 16, h: 23, w: 23, k: 7, stride: 2, pad: 3, dilation: 1, groups: 1),
        // Stride 2 over wide rows (every other column by vector), positions past
        // one block (256) with rows past one block (192); a projection shortcut.
        .init(ci: 6, co: 200, h: 17, w: 70, k: 3, stride: 2, pad: 1, dilation: 1, groups: 1),
        .init(ci: 16, co: 30, h: 10, w: 40, k: 1, stride: 2, pad: 0, dilation: 1, groups: 1),
        // A 7x7 image: 49 positions, the last alone in its panel, with taps past one
        // block of k.
        .init(ci: 30, co: 20, h: 7, w: 7, k: 3, stride: 1, pad: 1, dilation: 1, groups: 1),
        // A panel's last one or two positions as matrix-vector products: four blocks
        // of rows at once and the rest one by one, taps past one block of k, rows
        // past one block (192).
        .init(ci: 300, co: 50, h: 7, w: 7, k: 1, stride: 1, pad: 0, dilation: 1, groups: 1),
        .init(ci: 10, co: 200, h: 3, w: 6, k: 3, stride: 1, pad: 1, dilation: 1, groups: 1),
        // 1x1 of stride 1 with rows past one block (192): whole panels read in place,
        // the last copied.
        .init(ci: 20, co: 200, h: 5, w: 8, k: 1, stride: 1, pad: 0, dilation: 1, groups: 1),
        // Groups, and output channels in blocks of the split.
        .init(ci: 12, co: 390, h: 5, w: 5, k: 3, stride: 1, pad: 1, dilation: 1, groups: 3),
        .init(ci: 8, co: 400, h: 4, w: 4, k: 1, stride: 1, pad: 0, dilation: 1, groups: 1),
        // One output row: split in blocks of 6 channels.
        .init(ci: 20, co: 50, h: 1, w: 30, k: 3, stride: 1, pad: 1, dilation: 1, groups: 1),
        // Weights the gemm path refuses: padding skips them, a multiplication by zero would not.
        .init(ci: 4, co: 8, h: 6, w: 6, k: 3, stride: 1, pad: 1, dilation: 1, groups: 1, weightSpecial: .infinity),
        .init(ci: 4, co: 8, h: 6, w: 6, k: 3, stride: 1, pad: 1, dilation: 1, groups: 1, weightSpecial: .nan),
        // Depthwise and grouped (engine_grouped.c, at every vector width): rows wide
        // enough for several whole vectors at once, with edges; stride 2 with padding
        // only after ("same" of TensorFlow); a 5x5 kernel over rows narrower than a
        // vector; a channel multiplier of 2 with dilation; groups of 3 input and 4
        // output channels; an infinite and a NaN weight in the padding; stride 2 over
        // rows of several whole vectors, and stride 3 (read element by element).
        .init(ci: 5, co: 5, h: 13, w: 45, k: 3, stride: 1, pad: 1, dilation: 1, groups: 5, weightSpecial: .infinity),
        .init(ci: 6, co: 6, h: 14, w: 29, k: 3, stride: 2, pad: 0, dilation: 1, groups: 6, padBottom: 1, padRight: 1),
        .init(ci: 4, co: 4, h: 7, w: 7, k: 5, stride: 1, pad: 2, dilation: 1, groups: 4),
        .init(ci: 3, co: 6, h: 9, w: 20, k: 3, stride: 1, pad: 2, dilation: 2, groups: 3),
        .init(ci: 12, co: 16, h: 8, w: 33, k: 3, stride: 1, pad: 1, dilation: 1, groups: 4),
        .init(ci: 5, co: 5, h: 6, w: 19, k: 3, stride: 1, pad: 1, dilation: 1, groups: 5, weightSpecial: .nan),
        .init(ci: 4, co: 8, h: 11, w: 70, k: 3, stride: 2, pad: 1, dilation: 1, groups: 4),
        .init(ci: 3, co: 3, h: 10, w: 31, k: 3, stride: 3, pad: 1, dilation: 1, groups: 3),
        // A kernel wider than the vector rows take (16): the reference's loop.
        .init(ci: 2, co: 2, h: 18, w: 19, k: 17, stride: 1, pad: 1, dilation: 1, groups: 2),
        // Every row one vector with both edges in it (MobileNet's small maps), stride 1 and 2.
        .init(ci: 7, co: 7, h: 12, w: 12, k: 3, stride: 1, pad: 1, dilation: 1, groups: 7, weightSpecial: .infinity),
        .init(ci: 6, co: 6, h: 25, w: 25, k: 3, stride: 2, pad: 0, dilation: 1, groups: 6),
        // Edge vectors past the first four of a row (whose lanes each channel keeps
        // for all its rows): the right edge worked out row by row.
        .init(ci: 3, co: 3, h: 5, w: 100, k: 3, stride: 1, pad: 1, dilation: 1, groups: 3, padRight: 2),
        // Rows in blocks of four (every kernel row inside) and one by one at the top and
        // bottom, edge vectors read across the neighbouring rows (8 lanes: inside the
        // plane, element by element at its first and last), wide enough for the rows
        // at every width: stride 1, and stride 2 with padding only after, rows left over.
        .init(ci: 3, co: 3, h: 11, w: 130, k: 3, stride: 1, pad: 1, dilation: 1, groups: 3, weightSpecial: .nan),
        .init(ci: 4, co: 4, h: 19, w: 140, k: 3, stride: 2, pad: 0, dilation: 1, groups: 4, padBottom: 1, padRight: 1),
        .init(ci: 2, co: 2, h: 14, w: 70, k: 5, stride: 1, pad: 2, dilation: 1, groups: 2),
        // Channels in lanes with most of a large kernel in the padding (EfficientNet's
        // 5x5 on a 2x2 map; a 7x7 of stride 2 on 3x3), an infinite weight on a tap no
        // output reads: whole blocks of channels have all their taps laid out (by a
        // transpose and part of one: 25 taps) and the map too (4 positions, part of
        // one); the channels left over only the taps some output reads.
        .init(ci: 40, co: 40, h: 2, w: 2, k: 5, stride: 1, pad: 2, dilation: 1, groups: 40, weightSpecial: .infinity),
        .init(ci: 19, co: 19, h: 3, w: 3, k: 7, stride: 2, pad: 3, dilation: 1, groups: 19, weightSpecial: .nan),
        // Channels in lanes over whole blocks of channels and of positions (laid
        // out and written back by transposes, the positions left over by part of
        // one) with channels left over: 36 channels of 9x9, and 20 of 13x13 at stride 2.
        .init(ci: 36, co: 36, h: 9, w: 9, k: 3, stride: 1, pad: 1, dilation: 1, groups: 36),
        .init(ci: 20, co: 20, h: 13, w: 13, k: 3, stride: 2, pad: 0, dilation: 1, groups: 20, padBottom: 1, padRight: 1),
        // Channels in lanes for padded rows of stride 1 up to 64 wide (16 lanes, whole
        // blocks of channels): runs of eight and four positions with no tap outside,
        // the edges tap by tap.
        .init(ci: 32, co: 32, h: 7, w: 40, k: 3, stride: 1, pad: 1, dilation: 1, groups: 32),
        // Channels in lanes with dilation: a padding wider than a dilated tap's
        // step, a kernel whose taps pass both edges of a row at once, an infinite
        // and a NaN weight in the padding.
        .init(ci: 10, co: 10, h: 9, w: 13, k: 3, stride: 2, pad: 2, dilation: 2, groups: 10),
        .init(ci: 16, co: 16, h: 11, w: 20, k: 5, stride: 1, pad: 3, dilation: 3, groups: 16,
              weightSpecial: .infinity),
        .init(ci: 8, co: 8, h: 6, w: 5, k: 7, stride: 1, pad: 4, dilation: 1, groups: 8, weightSpecial: .nan),
        // Few input channels (engine_narrow.c, output channels in lanes, rows
        // back through transposes): ResNet's 7x7 stem of stride 2 (four vectors of
        // channels by six columns); MobileNet's 3x3 of stride 2 padded after
        // (one vector); two vectors by twelve columns; 70 channels (a block of
        // four vectors, one more, a partial one written lane by lane) with
        // dilation; stride 3 with an infinite weight (packed: declined, as the
        // padding's zero times it is NaN); two groups of three input channels; 1x1.
        .init(ci: 3, co: 64, h: 20, w: 37, k: 7, stride: 2, pad: 3, dilation: 1, groups: 1),
        .init(ci: 3, co: 16, h: 17, w: 33, k: 3, stride: 2, pad: 0, dilation: 1, groups: 1, padBottom: 1, padRight: 1),
        .init(ci: 3, co: 32, h: 9, w: 40, k: 3, stride: 1, pad: 1, dilation: 1, groups: 1),
        .init(ci: 1, co: 70, h: 6, w: 30, k: 5, stride: 1, pad: 2, dilation: 2, groups: 1),
        .init(ci: 4, co: 20, h: 8, w: 40, k: 3, stride: 3, pad: 1, dilation: 1, groups: 1, weightSpecial: .infinity),
        .init(ci: 6, co: 16, h: 7, w: 21, k: 3, stride: 1, pad: 1, dilation: 1, groups: 2, weightSpecial: .nan),
        .init(ci: 2, co: 24, h: 5, w: 19, k: 1, stride: 1, pad: 0, dilation: 1, groups: 1),
    ]

    /// How a conv2d's weights are given: as they are, packed, or packed
    /// with the sums starting from the output.
    enum ConvLayout: String, Sendable, CaseIterable { case given, packed, accumulate }

    @Test("conv2d equals its definition bit for bit on every path, whole and in slices, with weights as given and packed",
          arguments: convCases, ConvLayout.allCases)
    func conv2dPaths(_ c: ConvCase, layout: ConvLayout) throws {
        let packed = layout != .given, accumulate = layout == .accumulate
        guard !packed || c.groups == 1 else { return }
        let ho = (c.h + c.pad + c.padEnd.bottom - c.dilation * (c.k - 1) - 1) / c.stride + 1
        let wo = (c.w + c.pad + c.padEnd.right - c.dilation * (c.k - 1) - 1) / c.stride + 1
        let cig = c.ci / c.groups, perGroup = c.co / c.groups
        let x = sample(c.ci * c.h * c.w, seed: 81)
        var weight = sample(c.co * cig * c.k * c.k, seed: 82)
        if let special = c.weightSpecial { weight[5] = special }   // channel 0: a corner tap, in the padding at the edges
        let bias = sample(c.co, seed: 83)
        let prior = sample(c.co * ho * wo, seed: 84)
        var want = [Float](repeating: 0, count: c.co * ho * wo)
        for o in 0..<c.co { for y in 0..<ho { for z in 0..<wo {
            var acc: Float = accumulate ? prior[(o * ho + y) * wo + z] : 0
            for ch in 0..<cig { for i in 0..<c.k {
                let ih = y * c.stride - c.pad + i * c.dilation
                for j in 0..<c.k {
                    let iw = z * c.stride - c.pad + j * c.dilation
                    let w = weight[((o * cig + ch) * c.k + i) * c.k + j]
                    if ih >= 0, ih < c.h, iw >= 0, iw < c.w {
                        acc = acc.addingProduct(x[((o / perGroup) * cig + ch) * c.h * c.w + ih * c.w + iw], w)
                    } else if packed {
                        acc = acc.addingProduct(0, w)   // packed: the padding is multiplied by zero
                    }
                }
            } }
            acc = acc + bias[o]
            want[(o * ho + y) * wo + z] = acc > 0 || acc.isNaN ? acc : 0
        } } }
        // And with an upper bound (NEURON_CONV_CLAMP, ISA 1.12) that many outputs reach.
        let bound: Float = 0.75
        let bounded = want.map { $0 < bound || $0.isNaN ? $0 : bound }
        #expect(bounded != want, "the bound is reached")
        let weightDims = [c.co, cig, c.k, c.k]
        // Lanes past the output channels hold NaN: they must never reach an output.
        let given = packed ? try #require(NeuronProgram.packConvWeights(weight, dims: weightDims, pad: .nan)) : weight
        let weightView: NeuronTensorView = packed
            ? .contiguous(slot: 1, dims: [(c.co + 5) / 6, cig, c.k, c.k, 6].map(UInt32.init))
            : .contiguous(slot: 1, dims: weightDims.map(UInt32.init))
        // Last, the output with a gap after each row: the matrix product
        // declines it, and the reference path runs. At every vector width
        // this CPU runs (RowKernelTests.widths): grouped convolutions
        // (engine_grouped.c) and the matrix product's 16-lane tiles.
        let widths = [UInt32(NEURON_SIMD_SCALAR.rawValue)] + RowKernelTests.widths.map(\.level)
        for width in widths where neuron_simd_set_thread(width) == 0 {
        defer { _ = neuron_simd_set_thread(UInt32(NEURON_SIMD_CPU.rawValue)) }
        // And channels last (strides [H·W·C, 1, W·C, C]) in, out or both:
        // depthwise layers read and write them in place (ISA 1.13's layouts).
        for (partsPerStep, gap, xLast, oLast) in [(0, 0, false, false), (1, 0, false, false), (2, 0, false, false),
                                                  (0, 1, false, false), (0, 0, true, true), (1, 0, true, true),
                                                  (0, 0, true, false), (0, 0, false, true)] {
        for clamp in [nil, bound] {
            let rowStride = UInt64(wo + gap)
            let out = NeuronTensorView(slot: 3, dtype: .float32, offset: 0, dims: [1, c.co, ho, wo].map(UInt32.init),
                                       strides: oLast ? [UInt64(c.co * ho * wo), 1, UInt64(wo * c.co), UInt64(c.co)]
                                                      : [UInt64(c.co * ho) * rowStride, UInt64(ho) * rowStride, rowStride, 1])
            let input = NeuronTensorView(slot: 0, dtype: .float32, offset: 0, dims: [1, c.ci, c.h, c.w].map(UInt32.init),
                                         strides: xLast ? [UInt64(c.ci * c.h * c.w), 1, UInt64(c.w * c.ci), UInt64(c.ci)]
                                                        : [UInt64(c.ci * c.h * c.w), UInt64(c.h * c.w), UInt64(c.w), 1])
            // Element (channel, position) of a plane-first array at its place channels last.
            func last(_ planes: [Float], _ channels: Int) -> [Float] {
                let positions = planes.count / channels
                return (0..<planes.count).map { planes[($0 % channels) * positions + $0 / channels] }
            }
            var program = NeuronProgram()
            program.conv2d(out, input,
                           weight: weightView,
                           bias: .contiguous(slot: 2, dims: [UInt32(c.co)]),
                           window: NeuronWindow(stride: (UInt32(c.stride), UInt32(c.stride)),
                                                padding: (UInt32(c.pad), UInt32(c.pad), UInt32(c.padEnd.bottom),
                                                          UInt32(c.padEnd.right)),
                                                dilation: (UInt32(c.dilation), UInt32(c.dilation))),
                           relu: true, clamp: clamp, packedWeights: packed, accumulate: accumulate)
            let slots = Slots([x.count * 4, given.count * 4, bias.count * 4, c.co * ho * (wo + gap) * 4])
            slots.set(0, xLast ? last(x, c.ci) : x); slots.set(1, given); slots.set(2, bias)
            slots.set(3, oLast ? last(prior, c.co) : (0..<(c.co * ho * (wo + gap))).map { at in
                at % (wo + gap) < wo ? prior[(at / (wo + gap)) * wo + at % (wo + gap)] : 0
            })
            if partsPerStep == 0 {
                try slots.run(program)
            } else {
                let parts = try NeuronEngine.runSliced(program.image(), slots: slots.buffers, partsPerStep: partsPerStep)
                if ho == 1 && c.groups == 1 { #expect(parts == (c.co + 5) / 6, "blocks of 6 channels") }
                if ho > 1 && c.groups == 1 { #expect(parts == ho, "output rows") }
            }
            let all = slots.floats(3), positions = ho * wo
            let got = (0..<want.count).map { oLast ? all[($0 % positions) * c.co + $0 / positions]
                                                   : all[($0 / wo) * (wo + gap) + $0 % wo] }
            let wrong = zip(got, clamp == nil ? want : bounded).enumerated().filter { $0.element.0.bitPattern != $0.element.1.bitPattern }
            #expect(wrong.isEmpty, "width \(width), parts per step \(partsPerStep), row gap \(gap), channels last in \(xLast) out \(oLast), clamp \(clamp.map { "\($0)" } ?? "none"): \(wrong.count) of \(want.count) outputs differ, the first at \(wrong.first.map { "\($0.offset): \($0.element.0) for \($0.element.1)" } ?? "")")
        }
        }
        }
    }

    /// A depthwise layer over channels-last views that are not a whole
    /// tensor: a channel slice of a wider image (positions more than C
    /// apart), an offset, a gap after each row, rows or columns of one;
    /// against the same layer over contiguous planes at the scalar level.
    @Test("depthwise conv2d over channel slices, offsets, row gaps and one-wide images channels last gives the planes' bits at every width",
          arguments: [(c: 24, h: 1, w: 9, stride: 1), (c: 32, h: 7, w: 1, stride: 1), (c: 40, h: 6, w: 6, stride: 1),
                      (c: 16, h: 11, w: 10, stride: 2), (c: 20, h: 5, w: 70, stride: 1)])
    func depthwiseChannelsLastViews(_ t: (c: Int, h: Int, w: Int, stride: Int)) throws {
        let (c, h, w) = (t.c, t.h, t.w)
        let ho = (h + 2 - 3) / t.stride + 1, wo = (w + 2 - 3) / t.stride + 1
        let x = sample(c * h * w, seed: 91), weight = sample(c * 9, seed: 92), bias = sample(c, seed: 93)
        let window = NeuronWindow(stride: (UInt32(t.stride), UInt32(t.stride)), padding: (1, 1, 1, 1))
        func conv(x xView: NeuronTensorView, out: NeuronTensorView, xData: [Float], outSize: Int) throws -> [Float] {
            var program = NeuronProgram()
            program.conv2d(out, xView, weight: .contiguous(slot: 1, dims: [UInt32(c), 1, 3, 3]),
                           bias: .contiguous(slot: 2, dims: [UInt32(c)]), window: window, relu: true)
            let slots = Slots([xData.count * 4, weight.count * 4, bias.count * 4, outSize * 4])
            slots.set(0, xData); slots.set(1, weight); slots.set(2, bias)
            slots.set(3, [Float](repeating: .nan, count: outSize))
            try slots.run(program)
            return slots.floats(3)
        }
        // The reference: planes, contiguous, at the scalar level.
        guard neuron_simd_set_thread(UInt32(NEURON_SIMD_SCALAR.rawValue)) == 0 else { return }
        let want = try conv(x: .contiguous(slot: 0, dims: [1, c, h, w].map(UInt32.init)),
                            out: .contiguous(slot: 3, dims: [1, c, ho, wo].map(UInt32.init)), xData: x, outSize: c * ho * wo)
        _ = neuron_simd_set_thread(UInt32(NEURON_SIMD_CPU.rawValue))
        // Channels last inside wider images: 5 more channels a position (the
        // slice starting at channel 2), a gap of 3 after each row, 7 floats before.
        let (xp, op) = (c + 5, c + 5)
        let xRow = w * xp + 3, oRow = wo * op + 3
        var stored = [Float](repeating: .nan, count: 7 + h * xRow)
        for ch in 0..<c { for y in 0..<h { for z in 0..<w { stored[7 + y * xRow + z * xp + 2 + ch] = x[(ch * h + y) * w + z] } } }
        let xView = NeuronTensorView(slot: 0, dtype: .float32, offset: 9, dims: [1, c, h, w].map(UInt32.init),
                                     strides: [UInt64(h * xRow), 1, UInt64(xRow), UInt64(xp)])
        let outView = NeuronTensorView(slot: 3, dtype: .float32, offset: 9, dims: [1, c, ho, wo].map(UInt32.init),
                                       strides: [UInt64(ho * oRow), 1, UInt64(oRow), UInt64(op)])
        let widths = [UInt32(NEURON_SIMD_SCALAR.rawValue)] + RowKernelTests.widths.map(\.level)
        for width in widths where neuron_simd_set_thread(width) == 0 {
            defer { _ = neuron_simd_set_thread(UInt32(NEURON_SIMD_CPU.rawValue)) }
            let all = try conv(x: xView, out: outView, xData: stored, outSize: 7 + ho * oRow)
            let got = (0..<(c * ho * wo)).map { i in all[9 + (i / wo % ho) * oRow + (i % wo) * op + i / (ho * wo)] }
            let wrong = zip(got, want).filter { $0.0.bitPattern != $0.1.bitPattern }.count
            #expect(wrong == 0, "width \(width): \(wrong) of \(want.count) differ")
            // Nothing outside the view written: the gaps and the other channels keep their NaN.
            let inside = Set((0..<(c * ho * wo)).map { i in 9 + (i / wo % ho) * oRow + (i % wo) * op + i / (ho * wo) })
            #expect(all.indices.allSatisfy { inside.contains($0) || all[$0].isNaN }, "width \(width): written outside the view")
        }
    }

    /// Winograd convolutions: odd output sizes (partial tiles), no padding,
    /// wider padding, many channels, too many input channels for the
    /// scratch (the reference path), rows wide enough for sixteen tiles
    /// whose inputs are gathered by vector (within a row and across rows),
    /// and output channels past one chunk of blocks multiplied at once (96
    /// channels, fewer when the input channels fill the scratch).
    static let winogradCases: [(ci: Int, co: Int, h: Int, w: Int, pad: Int)] = [
        (5, 13, 9, 11, 1), (40, 8, 6, 6, 1), (3, 7, 5, 4, 0), (17, 20, 14, 14, 2), (1100, 7, 4, 3, 1),
        (3, 8, 6, 40, 1), (6, 13, 11, 37, 0), (4, 110, 5, 5, 1), (1000, 70, 4, 4, 1),
    ]

    @Test("Winograd conv2d, F(2x2, 3x3) and F(4x4, 3x3), equals its definition bit for bit, whole and in slices, and the convolution within float rounding",
          arguments: winogradCases.indices, [(2, false), (2, true), (4, false), (4, true)])
    func winograd(_ index: Int, variant: (tile: Int, accumulate: Bool)) throws {
        let (ci, co, h, w, pad) = Self.winogradCases[index]
        let (t, accumulate) = variant
        // With the residual, an upper bound as well (NEURON_CONV_CLAMP).
        let bound: Float? = accumulate ? 0.5 : nil
        let a = t + 2
        let ho = h + 2 * pad - 2, wo = w + 2 * pad - 2
        let x = sample(ci * h * w, seed: 91), weight = sample(co * ci * 9, seed: 92)
        let bias = sample(co, seed: 93), prior = sample(co * ho * wo, seed: 94)
        let u = try #require(NeuronProgram.winogradConvWeights(weight, dims: [co, ci, 3, 3], pad: .nan, tile: t))
        let blocks = (co + 5) / 6
        func uAt(_ xi: Int, _ o: Int, _ c: Int) -> Float { u[((xi * blocks + o / 6) * ci + c) * 6 + o % 6] }
        // The transforms as docs/isa.md writes them: B^T of a values, A^T into t.
        func inT(_ d: [Float]) -> [Float] {
            if t == 2 { return [d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3]] }
            return [(d[4] - d[2]) + (d[0] - d[2]) * 4, (d[3] + d[4]) - (d[1] + d[2]) * 4,
                    (d[4] - d[3]) + (d[1] - d[2]) * 4, (d[4] - d[2]) + (d[3] - d[1]) * 2,
                    (d[4] - d[2]) - (d[3] - d[1]) * 2, (d[5] - d[3]) + (d[1] - d[3]) * 4]
        }
        func outT(_ m: [Float]) -> [Float] {
            if t == 2 { return [(m[0] + m[1]) + m[2], (m[1] - m[2]) - m[3]] }
            return [(m[0] + (m[1] + m[2])) + (m[3] + m[4]), (m[1] - m[2]) + (m[3] - m[4]) * 2,
                    (m[1] + m[2]) + (m[3] + m[4]) * 4, ((m[1] - m[2]) + (m[3] - m[4]) * 8) + m[5]]
        }
        var want = [Float](repeating: 0, count: co * ho * wo)
        var worst = 0.0, largest = 0.0
        for th in 0..<((ho + t - 1) / t) { for tw in 0..<((wo + t - 1) / t) {
            // V of the tile for every input channel, then each output channel's products.
            let vs: [[Float]] = (0..<ci).map { c in
                var d = [[Float]](repeating: [Float](repeating: 0, count: a), count: a)
                for i in 0..<a { for j in 0..<a {
                    let ih = t * th - pad + i, iw = t * tw - pad + j
                    if ih >= 0, ih < h, iw >= 0, iw < w { d[i][j] = x[(c * h + ih) * w + iw] }
                } }
                var tr = d
                for j in 0..<a {
                    let col = inT((0..<a).map { d[$0][j] })
                    for i in 0..<a { tr[i][j] = col[i] }
                }
                return tr.flatMap(inT)
            }
            for o in 0..<co {
                var m = [Float](repeating: 0, count: a * a)
                for c in 0..<ci {
                    let v = vs[c]
                    for xi in 0..<(a * a) { m[xi] = m[xi].addingProduct(uAt(xi, o, c), v[xi]) }
                }
                var s = [[Float]](repeating: [Float](repeating: 0, count: a), count: t)
                for j in 0..<a {
                    let col = outT((0..<a).map { m[$0 * a + j] })
                    for i in 0..<t { s[i][j] = col[i] }
                }
                for i in 0..<t {
                    let y = outT(s[i])
                    for j in 0..<t where t * th + i < ho && t * tw + j < wo {
                        let at = (o * ho + t * th + i) * wo + t * tw + j
                        var r = accumulate ? prior[at] + y[j] : y[j]
                        r = r + bias[o]
                        r = r > 0 || r.isNaN ? r : 0
                        if let bound, !(r < bound), !r.isNaN { r = bound }
                        want[at] = r
                        // The convolution it computes, in double (some channels: the
                        // transforms are the same for all).
                        guard o % 5 == 0 else { continue }
                        var exact = Double(bias[o]) + (accumulate ? Double(prior[at]) : 0)
                        for c in 0..<ci { for ki in 0..<3 { for kj in 0..<3 {
                            let ih = t * th + i - pad + ki, iw = t * tw + j - pad + kj
                            guard ih >= 0, ih < h, iw >= 0, iw < w else { continue }
                            exact += Double(x[(c * h + ih) * w + iw]) * Double(weight[((o * ci + c) * 3 + ki) * 3 + kj])
                        } } }
                        worst = max(worst, abs(Double(want[at]) - min(max(0, exact), Double(bound ?? .infinity))))
                        largest = max(largest, abs(exact))
                    }
                }
            }
        } }
        // F(4x4, 3x3)'s larger transforms lose about two more bits.
        #expect(worst <= (t == 2 ? 1e-5 : 5e-5) * max(1, largest), "Winograd differs from the convolution by \(worst) (largest \(largest))")
        var program = NeuronProgram()
        program.conv2d(.contiguous(slot: 3, dims: [1, co, ho, wo].map(UInt32.init)),
                       .contiguous(slot: 0, dims: [1, ci, h, w].map(UInt32.init)),
                       weight: .contiguous(slot: 1, dims: [a * a, blocks, ci, 6].map(UInt32.init)),
                       bias: .contiguous(slot: 2, dims: [UInt32(co)]),
                       window: NeuronWindow(padding: (UInt32(pad), UInt32(pad), UInt32(pad), UInt32(pad))),
                       relu: true, clamp: bound, winograd: true, accumulate: accumulate)
        if let bound { #expect(want.contains(bound), "the bound is reached") }
        // At every vector width this CPU runs (the multiplication's 16-lane
        // pairs of blocks natively or as two halves), whole and in slices.
        let widths = [UInt32(NEURON_SIMD_SCALAR.rawValue)] + RowKernelTests.widths.map(\.level)
        for width in widths where neuron_simd_set_thread(width) == 0 {
        defer { _ = neuron_simd_set_thread(UInt32(NEURON_SIMD_CPU.rawValue)) }
        for partsPerStep in [0, 1, 2] {
            let slots = Slots([x.count * 4, u.count * 4, bias.count * 4, want.count * 4])
            slots.set(0, x); slots.set(1, u); slots.set(2, bias); slots.set(3, prior)
            if partsPerStep == 0 {
                try slots.run(program)
            } else {
                let parts = try NeuronEngine.runSliced(program.image(), slots: slots.buffers, partsPerStep: partsPerStep)
                #expect(parts == (ho + t - 1) / t, "rows of whole tiles")
            }
            let got = slots.floats(3)
            let wrong = zip(got, want).enumerated().filter { $0.element.0.bitPattern != $0.element.1.bitPattern }
            #expect(wrong.isEmpty, "width \(width), parts per step \(partsPerStep): \(wrong.count) of \(want.count) outputs differ, the first at \(wrong.first.map { "\($0.offset): \($0.element.0) for \($0.element.1)" } ?? "")")
        }
        }
    }

    @Test("max and average pooling with padding, and global pooling", arguments: NeuronPoolOp.allCases)
    func pool(_ op: NeuronPoolOp) throws {
        let (c, h, w) = (3, 5, 4)
        let x = sample(c * h * w, seed: 61)
        let slots = Slots([x.count * 4, c * 3 * 2 * 4, c * 4])
        slots.set(0, x)
        var program = NeuronProgram()
        let input = NeuronTensorView.contiguous(slot: 0, dims: [1, UInt32(c), UInt32(h), UInt32(w)])
        program.pool2d(op, .contiguous(slot: 1, dims: [1, UInt32(c), 3, 2]), input, kernel: (3, 3),
                       window: NeuronWindow(stride: (2, 2), padding: (1, 1, 1, 0)))
        program.pool2d(op, .contiguous(slot: 2, dims: [1, UInt32(c), 1, 1]), input, kernel: (UInt32(h), UInt32(w)))
        try slots.run(program)
        let got = slots.floats(1)
        for ch in 0..<c { for y in 0..<3 { for z in 0..<2 {
            var values = [Float]()
            for i in 0..<3 { for j in 0..<3 {
                let ih = y * 2 - 1 + i, iw = z * 2 - 1 + j
                if ih >= 0, ih < h, iw >= 0, iw < w { values.append(x[(ch * h + ih) * w + iw]) }
            } }
            let want = op == .max ? values.dropFirst().reduce(values[0]) { $1 > $0 ? $1 : $0 }
                                  : values.reduce(0) { $0 + $1 } / Float(values.count)
            #expect(got[(ch * 3 + y) * 2 + z] == want)
        } } }
        for ch in 0..<c {
            let plane = x[(ch * h * w)..<((ch + 1) * h * w)]
            let want = op == .max ? plane.max() ?? 0 : plane.reduce(0) { $0 + $1 } / Float(h * w)
            #expect(slots.floats(2)[ch] == want)
        }
    }

    /// Pooling windows: strides 1 and 2 (the vector path), 3 (the
    /// reference), padding, and the average over the whole window.
    static let poolWindows: [(k: Int, stride: Int, pad: Int, countPad: Bool)] = [
        (3, 2, 1, false), (3, 1, 1, false), (2, 2, 0, false), (5, 1, 2, true), (3, 3, 1, false), (1, 2, 0, false),
    ]

    /// Every window on wide rows (eight columns at a time), and on rows too
    /// narrow for that with more than eight channels (eight channels at a
    /// time, the rest one by one).
    static let poolCases: [(window: Int, narrow: Bool)] =
        poolWindows.indices.flatMap { [($0, false), ($0, true)] }

    @Test("pooling equals its definition bit for bit, NaN and -0 included, on wide and narrow rows, whole and in slices",
          arguments: NeuronPoolOp.allCases, poolCases.indices)
    func poolWide(_ op: NeuronPoolOp, _ index: Int) throws {
        let (window, narrow) = Self.poolCases[index]
        let (k, stride, pad, countPad) = Self.poolWindows[window]
        let (c, h, w) = narrow ? (19, 9, 5) : (3, 9, 45)
        var x = sample(c * h * w, seed: 62)
        for i in stride..<x.count where i % 37 == 0 { x[i] = i % 74 == 0 ? .nan : -0.0 }
        x[3 * w + 20 % w] = Float(bitPattern: 0x7fc1_2345)   // a NaN with a payload of its own
        let ho = (h + 2 * pad - k) / stride + 1, wo = (w + 2 * pad - k) / stride + 1
        var want = [Float]()
        for ch in 0..<c { for y in 0..<ho { for z in 0..<wo {
            var acc: Float = 0
            var count = 0
            for i in 0..<k { for j in 0..<k {
                let ih = y * stride - pad + i, iw = z * stride - pad + j
                guard ih >= 0, ih < h, iw >= 0, iw < w else { continue }
                let v = x[(ch * h + ih) * w + iw]
                if op == .max { acc = count == 0 || v > acc || v.isNaN ? v : acc } else { acc = acc + v }
                count += 1
            } }
            want.append(op == .max ? acc : acc / Float(countPad ? k * k : count))
        } } }
        var program = NeuronProgram()
        program.pool2d(op, .contiguous(slot: 1, dims: [1, UInt32(c), UInt32(ho), UInt32(wo)]),
                       .contiguous(slot: 0, dims: [1, UInt32(c), UInt32(h), UInt32(w)]), kernel: (UInt32(k), UInt32(k)),
                       window: NeuronWindow(stride: (UInt32(stride), UInt32(stride)),
                                            padding: (UInt32(pad), UInt32(pad), UInt32(pad), UInt32(pad))),
                       countPadding: countPad)
        // At every vector width this CPU runs (RowKernelTests.widths): rows of
        // eight columns at a time (engine_pool.c), and the scalar reference.
        let widths = [UInt32(NEURON_SIMD_SCALAR.rawValue)] + RowKernelTests.widths.map(\.level)
        for width in widths where neuron_simd_set_thread(width) == 0 {
        defer { _ = neuron_simd_set_thread(UInt32(NEURON_SIMD_CPU.rawValue)) }
        for partsPerStep in [0, 1] {
            let slots = Slots([x.count * 4, want.count * 4])
            slots.set(0, x)
            if partsPerStep == 0 {
                try slots.run(program)
            } else {
                _ = try NeuronEngine.runSliced(program.image(), slots: slots.buffers, partsPerStep: partsPerStep)
            }
            let got = slots.floats(1)
            let wrong = zip(got, want).enumerated().filter { $0.element.0.bitPattern != $0.element.1.bitPattern }
            #expect(wrong.isEmpty, "width \(width), parts per step \(partsPerStep): \(wrong.count) of \(want.count) differ, the first at \(wrong.first.map { "\($0.offset): \($0.element.0) for \($0.element.1)" } ?? "")")
        }
        }
    }

    @Test("layernorm equals its definition")
    func layerNorm() throws {
        let (rows, d) = (3, 10)
        let x = sample(rows * d, seed: 71), gamma = sample(d, seed: 72), beta = sample(d, seed: 73)
        let slots = Slots([x.count * 4, d * 4, d * 4, x.count * 4])
        slots.set(0, x); slots.set(1, gamma); slots.set(2, beta)
        var program = NeuronProgram()
        program.layerNorm(.contiguous(slot: 3, dims: [3, 10]), .contiguous(slot: 0, dims: [3, 10]),
                          scale: .contiguous(slot: 1, dims: [10]), bias: .contiguous(slot: 2, dims: [10]), epsilon: 1e-5)
        try slots.run(program)
        let got = slots.floats(3)
        for r in 0..<rows {
            let row = Array(x[(r * d)..<((r + 1) * d)])
            let mean = row.reduce(Float(0)) { $0 + $1 } / Float(d)
            let variance = row.reduce(Float(0)) { acc, v in let t = v - mean; return acc + t * t }
            let inv = 1 / (variance / Float(d) + 1e-5).squareRoot()
            for j in 0..<d {
                #expect(got[r * d + j] == (row[j] - mean) * inv * gamma[j] + beta[j])
            }
        }
    }

    @Test("gather looks rows up, negative indices from the end; a bad index faults")
    func gather() throws {
        let table = sample(5 * 3, seed: 81)
        let slots = Slots([60, 16, 48])
        slots.set(0, table)
        let indices: [Int32] = [4, 0, -1, 2]
        indices.withUnsafeBytes { slots.buffers[1].copyMemory(from: $0) }
        var program = NeuronProgram()
        program.gather(.contiguous(slot: 2, dims: [2, 2, 3]), table: .contiguous(slot: 0, dims: [5, 3]),
                       indices: .contiguous(slot: 1, dims: [2, 2], dtype: .int32))
        try slots.run(program)
        let rows = [4, 0, 4, 2]
        #expect(slots.floats(2, count: 12) == rows.flatMap { Array(table[($0 * 3)..<($0 * 3 + 3)]) })

        let bad: [Int32] = [1, 5, 0, 0]
        bad.withUnsafeBytes { slots.buffers[1].copyMemory(from: $0) }
        do {
            try slots.run(program)
            Issue.record("an index past the table did not fault")
        } catch {
            #expect(error == NeuronProgramError(kind: .indexFault, index: 0))
            #expect(Array(slots.floats(2, count: 6)[3...]) == [0, 0, 0])
        }
    }

    @Test("short rows each against one element (a per-channel scale over a small map): every element's own operation")
    func scalarPerRow() throws {
        let channels = 300
        let widths = [UInt32(NEURON_SIMD_SCALAR.rawValue)] + RowKernelTests.widths.map(\.level)
        for width in widths where neuron_simd_set_thread(width) == 0 {
            defer { _ = neuron_simd_set_thread(UInt32(NEURON_SIMD_CPU.rawValue)) }
            for n in [1, 2, 3, 4, 7, 8, 15, 16, 17, 33, 63, 64] {
                let full = sample(channels * n, seed: UInt32(90 + n)), scale = sample(channels, seed: 7).map { $0 + 2 }
                let dims: [UInt32] = [UInt32(channels), UInt32(n)]
                let one = NeuronTensorView(slot: 1, dims: dims, strides: [1, 0])
                for op in [NeuronBinaryOp.add, .sub, .mul, .div] {
                    func apply(_ x: Float, _ y: Float) -> Float {
                        switch op {
                        case .add: x + y
                        case .sub: x - y
                        case .mul: x * y
                        default: x / y
                        }
                    }
                    for (scaleFirst, inPlace) in [(false, false), (true, false), (false, true), (true, true)] {
                        let slots = Slots([channels * n * 4, channels * 4, channels * n * 4])
                        slots.set(0, full)
                        slots.set(1, scale)
                        let out = NeuronTensorView.contiguous(slot: inPlace ? 0 : 2, dims: dims)
                        let rows = NeuronTensorView.contiguous(slot: 0, dims: dims)
                        var program = NeuronProgram()
                        program.binary(op, out, scaleFirst ? one : rows, scaleFirst ? rows : one)
                        try slots.run(program)
                        let want = (0..<(channels * n)).map { i in
                            scaleFirst ? apply(scale[i / n], full[i]) : apply(full[i], scale[i / n])
                        }
                        #expect(slots.floats(inPlace ? 0 : 2, count: channels * n).map(\.bitPattern) == want.map(\.bitPattern),
                                "\(op) rows of \(n), scale \(scaleFirst ? "first" : "second"), in place \(inPlace), simd \(width)")
                    }
                }
            }
        }
    }

    @Test("gather of strided rows, into strided rows, and over its own table in the defined order")
    func gatherLayouts() throws {
        let data = sample(5 * 3, seed: 82)
        let indices: [Int32] = [3, -5, 1, 4]
        func run(table: NeuronTensorView, out: NeuronTensorView) throws -> Slots {
            let slots = Slots([60, 16, 64])
            slots.set(0, data)
            indices.withUnsafeBytes { slots.buffers[1].copyMemory(from: $0) }
            var program = NeuronProgram()
            program.gather(out, table: table, indices: .contiguous(slot: 1, dims: [4], dtype: .int32))
            try slots.run(program)
            return slots
        }
        let rows = [3, 0, 1, 4]
        // The table read down its columns (a transposed view of [3, 5]).
        let columns = try run(table: NeuronTensorView(slot: 0, dims: [5, 3], strides: [1, 5]),
                              out: .contiguous(slot: 2, dims: [4, 3]))
        #expect(columns.floats(2, count: 12) == rows.flatMap { r in (0..<3).map { data[r + $0 * 5] } })
        // Rows written down the output's columns.
        let across = try run(table: .contiguous(slot: 0, dims: [5, 3]),
                             out: NeuronTensorView(slot: 2, dims: [4, 3], strides: [1, 4]))
        let written = across.floats(2, count: 12)
        for (i, r) in rows.enumerated() {
            #expect((0..<3).map { written[i + $0 * 4] } == (0..<3).map { data[r * 3 + $0] })
        }
        // Into its own table, one element after the row it reads: element
        // by element in order, each copy reads the one before it.
        let slots = Slots([60, 16, 64])
        slots.set(0, data)
        let zero: [Int32] = [0]
        zero.withUnsafeBytes { slots.buffers[1].copyMemory(from: $0) }
        var program = NeuronProgram()
        program.gather(.contiguous(slot: 0, dims: [1, 3], offset: 1), table: .contiguous(slot: 0, dims: [5, 3]),
                       indices: .contiguous(slot: 1, dims: [1], dtype: .int32))
        try slots.run(program)
        #expect(Array(slots.floats(0, count: 5)) == [data[0], data[0], data[0], data[0], data[4]])
    }

    @Test("casts: bf16 rounding, integer saturation and NaN")
    func cast() throws {
        let values: [Float] = [1.0039062, -3.5, .nan, 3e9, -3e9, 65504, 0.1]
        let slots = Slots([28, 14, 28, 56, 28])
        slots.set(0, values)
        var program = NeuronProgram()
        let n = UInt32(values.count)
        program.cast(.contiguous(slot: 1, dims: [n], dtype: .bfloat16), .contiguous(slot: 0, dims: [n]))
        program.cast(.contiguous(slot: 2, dims: [n], dtype: .int32), .contiguous(slot: 0, dims: [n]))
        program.cast(.contiguous(slot: 3, dims: [n], dtype: .int64), .contiguous(slot: 2, dims: [n], dtype: .int32))
        program.cast(.contiguous(slot: 4, dims: [n]), .contiguous(slot: 1, dims: [n], dtype: .bfloat16))
        try slots.run(program)
        let halves = Array(slots.buffers[1].bindMemory(to: UInt16.self).prefix(values.count))
        #expect(halves[0] == bf16(1.0039062) && halves[1] == bf16(-3.5) && halves[2] == 0x7fc0)
        #expect(Array(slots.buffers[2].bindMemory(to: Int32.self).prefix(values.count)) == [1, -3, 0, .max, .min, 65504, 0])
        #expect(Array(slots.buffers[3].bindMemory(to: Int64.self).prefix(values.count)) == [1, -3, 0, 2_147_483_647, -2_147_483_648, 65504, 0])
        let back = slots.floats(4, count: values.count)
        #expect(back[1] == -3.5 && back[2].isNaN && back[6] == f32(fromBF16: bf16(0.1)))
    }

    @Test("matmul with bf16 inputs accumulates in f32 as defined (scalar and vector paths)",
          arguments: [(5, 9, 4), (13, 300, 71), (8, 3, 64), (3, 4100, 26)])
    func matmulBF16(_ shape: (Int, Int, Int)) throws {
        let (m, k, n) = shape
        let a = sample(m * k, seed: 91).map(bf16), b = sample(k * n, seed: 92).map(bf16)
        let slots = Slots([a.count * 2, b.count * 2, m * n * 4])
        a.withUnsafeBytes { slots.buffers[0].copyMemory(from: $0) }
        b.withUnsafeBytes { slots.buffers[1].copyMemory(from: $0) }
        var program = NeuronProgram()
        program.matmul(.contiguous(slot: 2, dims: [UInt32(m), UInt32(n)]),
                       .contiguous(slot: 0, dims: [UInt32(m), UInt32(k)], dtype: .bfloat16),
                       .contiguous(slot: 1, dims: [UInt32(k), UInt32(n)], dtype: .bfloat16))
        try slots.run(program)
        var want = [Float]()
        for i in 0..<m { for j in 0..<n {
            var acc: Float = 0
            for p in 0..<k { acc = acc.addingProduct(f32(fromBF16: a[i * k + p]), f32(fromBF16: b[p * n + j])) }
            want.append(acc)
        } }
        #expect(slots.floats(2).map(\.bitPattern) == want.map(\.bitPattern))
    }

    @Test("window and parameter errors are refused")
    func windowErrors() {
        func refused(_ build: (inout NeuronProgram) -> Void) -> NeuronProgramError? {
            var program = NeuronProgram()
            build(&program)
            do { try Slots([4096, 4096]).run(program); return nil } catch { return error }
        }
        let x = NeuronTensorView.contiguous(slot: 0, dims: [1, 2, 4, 4])
        #expect(refused { $0.pool2d(.max, .contiguous(slot: 1, dims: [1, 2, 2, 2]), x, kernel: (2, 2),
                                    window: NeuronWindow(stride: (0, 2))) }?.kind == .parameter)
        #expect(refused { $0.pool2d(.max, .contiguous(slot: 1, dims: [1, 2, 3, 3]), x, kernel: (2, 2),
                                    window: NeuronWindow(stride: (2, 2), padding: (2, 0, 0, 0))) }?.kind == .parameter)
        #expect(refused { $0.pool2d(.avg, .contiguous(slot: 1, dims: [1, 2, 3, 2]), x, kernel: (2, 2),
                                    window: NeuronWindow(stride: (2, 2))) }?.kind == .operand)
        #expect(refused { $0.conv2d(.contiguous(slot: 1, dims: [1, 3, 3, 3]), x,
                                    weight: .contiguous(slot: 1, dims: [3, 2, 2, 2], offset: 200)) }?.kind == nil)
        #expect(refused { $0.conv2d(.contiguous(slot: 1, dims: [1, 3, 3, 3]), x,
                                    weight: .contiguous(slot: 1, dims: [3, 3, 2, 2], offset: 200)) }?.kind == .operand)
        #expect(refused { $0.conv2d(.contiguous(slot: 1, dims: [1, 3, 3, 3]), x,
                                    weight: .contiguous(slot: 1, dims: [3, 2, 2, 2], offset: 200),
                                    window: NeuronWindow(dilation: (0, 1))) }?.kind == .parameter)
        // The upper bound (ISA 1.12): any but NaN, and none without its flag.
        for (bound, accepted) in [(Float.infinity, true), (-Float.infinity, true), (-0.0, true), (.nan, false),
                                  (Float(bitPattern: 0xffc0_0001), false)] {
            let kind = refused { $0.conv2d(.contiguous(slot: 1, dims: [1, 3, 3, 3]), x,
                                           weight: .contiguous(slot: 1, dims: [3, 2, 2, 2], offset: 200), clamp: bound) }?.kind
            #expect(kind == (accepted ? nil : .parameter), "bound \(bound.bitPattern)")
        }
        #expect(refused {
            $0.conv2d(.contiguous(slot: 1, dims: [1, 3, 3, 3]), x, weight: .contiguous(slot: 1, dims: [3, 2, 2, 2], offset: 200))
            var bounded = $0.instructions[0]
            bounded.fparam.0 = 6   // a bound without NEURON_CONV_CLAMP
            $0.append(bounded)
        } == NeuronProgramError(kind: .parameter, index: 1))
        // Packed weights: [ceil(Co/6), Ci, Kh, Kw, 6], contiguous, one group.
        func packed(_ dims: [UInt32], strides: [UInt64]? = nil) -> NeuronProgramError? {
            var weight = NeuronTensorView.contiguous(slot: 1, dims: dims, offset: 200)
            if let strides { weight.strides = strides }
            return refused { $0.conv2d(.contiguous(slot: 1, dims: [1, 3, 3, 3]), x, weight: weight, packedWeights: true) }
        }
        #expect(packed([1, 2, 2, 2, 6]) == nil)
        #expect(packed([3, 2, 2, 2])?.kind == .operand)         // the plain layout
        #expect(packed([1, 2, 2, 2, 3])?.kind == .operand)      // lanes other than 6
        #expect(packed([2, 2, 2, 2, 6])?.kind == .operand)      // blocks other than ceil(3/6)
        #expect(packed([1, 1, 2, 2, 6])?.kind == .operand)      // groups
        #expect(packed([1, 2, 2, 2, 6], strides: [56, 28, 14, 7, 1])?.kind == .operand)   // not contiguous
        #expect(packed([1, 2, 3, 2, 6])?.kind == .operand)      // a kernel that does not fit the output
        #expect(refused { $0.conv2d(.contiguous(slot: 1, dims: [1, 3, 3, 3]), x,
                                    weight: .contiguous(slot: 1, dims: [3, 2, 2, 2], offset: 200),
                                    accumulate: true) }?.kind == .opcode)   // accumulate needs packed weights
        // Winograd: U [16 or 36, ceil(Co/6), Ci, 6], 3x3 of stride and dilation 1, not packed too.
        let x3 = NeuronTensorView.contiguous(slot: 0, dims: [1, 2, 5, 5])
        func winograd(_ dims: [UInt32], window: NeuronWindow = NeuronWindow(padding: (1, 1, 1, 1)),
                      out: [UInt32] = [1, 3, 5, 5], packed: Bool = false) -> NeuronProgramError? {
            refused { $0.conv2d(.contiguous(slot: 1, dims: out), x3, weight: .contiguous(slot: 1, dims: dims, offset: 200),
                                window: window, packedWeights: packed, winograd: true) }
        }
        #expect(winograd([16, 1, 2, 6]) == nil)
        #expect(winograd([36, 1, 2, 6]) == nil)
        #expect(winograd([9, 1, 2, 6])?.kind == .operand)
        #expect(winograd([25, 1, 2, 6])?.kind == .operand)
        #expect(winograd([64, 1, 2, 6])?.kind == .operand)
        #expect(winograd([16, 2, 2, 6])?.kind == .operand)
        #expect(winograd([16, 1, 1, 6])?.kind == .operand)
        #expect(winograd([16, 1, 2, 6], window: NeuronWindow(stride: (2, 2), padding: (1, 1, 1, 1)), out: [1, 3, 3, 3])?.kind == .operand)
        #expect(winograd([16, 1, 2, 6], window: NeuronWindow(padding: (2, 2, 2, 2), dilation: (2, 2)))?.kind == .operand)
        #expect(winograd([16, 1, 2, 6], out: [1, 3, 4, 4])?.kind == .operand)   // not a 3x3 window's output
        #expect(winograd([16, 1, 2, 6], packed: true)?.kind == .opcode)
        #expect(refused { $0.layerNorm(.contiguous(slot: 1, dims: [2, 4]), .contiguous(slot: 0, dims: [2, 4]),
                                       scale: .contiguous(slot: 0, dims: [4]), bias: .contiguous(slot: 0, dims: [4]),
                                       epsilon: -1) }?.kind == .parameter)
        #expect(refused { $0.layerNorm(.contiguous(slot: 1, dims: [2, 4]), .contiguous(slot: 0, dims: [2, 4]),
                                       scale: .contiguous(slot: 0, dims: [4]), bias: .contiguous(slot: 0, dims: [4]),
                                       epsilon: .infinity) }?.kind == .parameter)
        #expect(refused { $0.gather(.contiguous(slot: 1, dims: [2, 4]), table: .contiguous(slot: 0, dims: [3, 4]),
                                    indices: .contiguous(slot: 0, dims: [2])) }?.kind == .operand)
    }
}
