import CNeuronEngine
import Foundation
import NeuronDevice
import Testing
import TestSupport

/// MATMUL in bfloat16 pairs (ISA 1.9, NEURON_MATMUL_BF16_PAIRS) against
/// its definition written here, on every path this CPU runs: AVX512_BF16's
/// VDPBF16PS where the CPU has it, the FMA emulation (MXCSR flushing
/// denormals) at AVX-512 and AVX2 widths, and the scalar chain.
@Suite("Engine: bf16 pairs")
struct BF16PairsTests {
    /// The definition (docs/isa.md), step by step.
    enum Definition {
        /// An f32 operand as the product reads it: a denormal is a zero of
        /// its sign, then rounded to nearest even; NaN stays NaN.
        static func round(_ x: Float) -> UInt16 {
            let bits = x.bitPattern
            if bits & 0x7f80_0000 == 0 { return UInt16((bits >> 16) & 0x8000) }
            if x.isNaN { return UInt16(bits >> 16) | 0x40 }
            return UInt16(truncatingIfNeeded: (bits &+ 0x7fff &+ ((bits >> 16) & 1)) >> 16)
        }

        static func value(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }

        static func signedZero(_ x: Float) -> Float { x.sign == .minus ? -0.0 : 0.0 }

        /// fma with denormal inputs as zeros and a result tiny after
        /// rounding (below 2^-126 once rounded to 24 bits with an
        /// unbounded exponent) flushed to a zero of its sign.
        static func step(_ x: Float, _ y: Float, _ acc: Float) -> Float {
            let x = x.isSubnormal ? signedZero(x) : x, y = y.isSubnormal ? signedZero(y) : y
            let r = acc.addingProduct(x, y)
            if r.isSubnormal { return signedZero(r) }
            if r.magnitude == .leastNormalMagnitude {
                let exact = Double(acc) + Double(x) * Double(y)   // the product is exact
                if exact.magnitude < 0x1p-126 - 0x1p-151 { return signedZero(r) }
            }
            return r
        }

        /// out[m,n]: pairs in order, the odd element first, K padded with a zero.
        static func matmul(_ a: [UInt16], _ b: [UInt16], m: Int, k: Int, n: Int, bias: [Float]?) -> [Float] {
            var out = [Float](repeating: 0, count: m * n)
            for i in 0..<m {
                for j in 0..<n {
                    var acc: Float = 0
                    for p in stride(from: 0, to: k, by: 2) {
                        let odd = p + 1 < k
                        acc = step(odd ? value(a[i * k + p + 1]) : 0, odd ? value(b[(p + 1) * n + j]) : 0, acc)
                        acc = step(value(a[i * k + p]), value(b[p * n + j]), acc)
                    }
                    if let bias { acc = acc + bias[j] }
                    out[i * n + j] = acc
                }
            }
            return out
        }
    }

    /// The paths, by name, with the settings that choose them.
    static let paths: [(name: String, level: UInt32, native: Bool)] = [
        ("scalar", UInt32(NEURON_SIMD_SCALAR.rawValue), false),
        ("avx2 fma emulation", UInt32(NEURON_SIMD_AVX2.rawValue), false),
        ("avx512 fma emulation", UInt32(NEURON_SIMD_AVX512.rawValue), false),
        ("avx512_bf16 vdpbf16ps (native)", UInt32(NEURON_SIMD_AVX512.rawValue), true),
    ]

    /// Run `body` on `path`; nil if this CPU cannot.
    func on<T>(_ path: (name: String, level: UInt32, native: Bool), _ body: () throws -> T) rethrows -> T? {
        guard neuron_simd_set_thread(path.level) == 0 else { return nil }
        let native = neuron_gemm_set_bf16_thread(path.native ? 1 : 0) != 0
        defer {
            _ = neuron_simd_set_thread(UInt32(NEURON_SIMD_CPU.rawValue))
            _ = neuron_gemm_set_bf16_thread(1)
        }
        if path.native && !native { return nil }
        return try body()
    }

    /// Values over many binades, with zeros of both signs, denormals, and
    /// a band whose products and sums land around 2^-126, where denormals
    /// are flushed.
    static func values(_ count: Int, seed: UInt32, tiny: Bool) -> [Float] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 1_664_525 &+ 1_013_904_223
            let r = state >> 8
            let sign: UInt32 = (r & 1) << 31
            switch r % 23 {
            case 0: return Float(bitPattern: sign)
            case 1: return Float(bitPattern: sign | (r >> 4) & 0x7f_ffff)   // denormal
            default:
                let exponent: UInt32 = tiny ? 127 - 63 + (r >> 5) % 5 - 2 : 127 + (r >> 5) % 17 - 8
                return Float(bitPattern: sign | exponent << 23 | (r >> 3) & 0x7f_ffff)
            }
        }
    }

    struct Case: Sendable, CustomStringConvertible {
        var m: Int, k: Int, n: Int
        var aHalf: Bool, bHalf: Bool
        var bias = false, tiny = false
        var description: String {
            "\(m)x\(k)x\(n) a \(aHalf ? "bf16" : "f32") b \(bHalf ? "bf16" : "f32")\(bias ? " bias" : "")\(tiny ? " near 2^-126" : "")"
        }
    }

    /// Blocks of 12, 8, 4, 2 and 1 rows; odd K; K past a block of 128
    /// pairs and of 256 taps; panels of 32 columns and the columns past
    /// them; past 512 columns (a block of B); both dtypes on each side.
    static let cases: [Case] = [
        Case(m: 13, k: 9, n: 40, aHalf: true, bHalf: true, bias: true),
        Case(m: 27, k: 300, n: 70, aHalf: false, bHalf: true),
        Case(m: 7, k: 1, n: 33, aHalf: false, bHalf: false, bias: true),
        Case(m: 1, k: 517, n: 96, aHalf: true, bHalf: false),
        Case(m: 30, k: 64, n: 530, aHalf: false, bHalf: true, bias: true),
        Case(m: 5, k: 33, n: 7, aHalf: true, bHalf: true),
        Case(m: 14, k: 67, n: 64, aHalf: true, bHalf: false, bias: true),
        Case(m: 3, k: 45, n: 100, aHalf: false, bHalf: true),
        Case(m: 4, k: 20, n: 64, aHalf: true, bHalf: false, tiny: true),
        Case(m: 16, k: 40, n: 64, aHalf: false, bHalf: false, tiny: true),
        Case(m: 9, k: 31, n: 48, aHalf: true, bHalf: true, tiny: true),
    ]

    /// The engine's output for `c` and what the definition says.
    func run(_ c: Case) throws -> (got: [UInt32], want: [UInt32]) {
        let a = Self.values(c.m * c.k, seed: UInt32(c.m * 131 + c.k), tiny: c.tiny)
        let b = Self.values(c.k * c.n, seed: UInt32(c.n * 17 + c.k), tiny: c.tiny)
        let bias = sample(c.n, seed: 5)
        let slots = Slots([c.m * c.k * (c.aHalf ? 2 : 4), c.k * c.n * (c.bHalf ? 2 : 4), c.n * 4, c.m * c.n * 4])
        func store(_ slot: Int, _ values: [Float], half: Bool) {
            if half {
                Definition.roundedAll(values).withUnsafeBytes { slots.buffers[slot].copyMemory(from: $0) }
            } else {
                slots.set(slot, values)
            }
        }
        store(0, a, half: c.aHalf); store(1, b, half: c.bHalf); slots.set(2, bias)
        var program = NeuronProgram()
        program.matmul(.contiguous(slot: 3, dims: [UInt32(c.m), UInt32(c.n)]),
                       .contiguous(slot: 0, dims: [UInt32(c.m), UInt32(c.k)], dtype: c.aHalf ? .bfloat16 : .float32),
                       .contiguous(slot: 1, dims: [UInt32(c.k), UInt32(c.n)], dtype: c.bHalf ? .bfloat16 : .float32),
                       bias: c.bias ? .contiguous(slot: 2, dims: [UInt32(c.n)]) : nil, bf16Pairs: true)
        try slots.run(program)
        // A bf16 operand holds the rounded values already, so both read the same.
        let want = Definition.matmul(Definition.roundedAll(a), Definition.roundedAll(b), m: c.m, k: c.k, n: c.n,
                                     bias: c.bias ? bias : nil)
        return (slots.floats(3).map(RowKernelTests.bits), want.map(RowKernelTests.bits))
    }

    @Test("bf16 pairs give the definition's bits on every path this CPU runs")
    func everyPath() throws {
        var ran: [String] = []
        for path in Self.paths {
            var compared = 0
            for c in Self.cases {
                guard let (got, want) = try on(path, { try run(c) }) else { continue }
                #expect(got == want, "\(c) on \(path.name): \(zip(got, want).filter { $0 != $1 }.count) outputs differ")
                // The emulation's MXCSR (flush to zero, denormals are zero)
                // was restored: this thread still makes and reads denormals.
                let smallest = Float(bitPattern: UInt32(0x0080_0000 + c.m - c.m)), denormal = Float(bitPattern: UInt32(1 + c.k - c.k))
                #expect((smallest * 0.5).isSubnormal && (denormal * 2).bitPattern == 2, "MXCSR left changed on \(path.name)")
                compared += 1
            }
            if compared > 0 { ran.append(path.name) }
        }
        print("bf16 pairs: compared with the definition on: \(ran.joined(separator: "; "))"
              + (neuron_gemm_set_bf16_thread(1) != 0 ? "" : " (no AVX512_BF16 here: VDPBF16PS did not run)"))
        #expect(ran.count >= (neuron_simd_level() == UInt32(NEURON_SIMD_SCALAR.rawValue) ? 1 : 2))
    }

    /// The flush's edge: acc = 2^-126 plus products of -2^-150 (tiny after
    /// rounding: zero), -2^-151 (a tie that rounds to 2^-126: kept) and
    /// -2^-152, each a pair of bf16 powers of two.
    @Test("a result at 2^-126 is flushed exactly when it is tiny after rounding")
    func flushEdge() throws {
        for path in Self.paths {
            for (exponent, want) in [(-150, Float(0)), (-151, Float.leastNormalMagnitude), (-152, .leastNormalMagnitude)] {
                // Pair one (odd first) makes acc = 2^-126; pair two adds
                // 0·0, then x·y = -2^exponent.
                let x = Float(sign: .minus, exponent: exponent / 2, significand: 1)
                let y = Float(sign: .plus, exponent: exponent - exponent / 2, significand: 1)
                let a: [Float] = [0, .leastNormalMagnitude, x, 0], b: [Float] = [0, 1, y, 0]
                let slots = Slots([16, 16, 4])
                slots.set(0, a); slots.set(1, b)
                var program = NeuronProgram()
                program.matmul(.contiguous(slot: 2, dims: [1, 1]), .contiguous(slot: 0, dims: [1, 4]),
                               .contiguous(slot: 1, dims: [4, 1]), bf16Pairs: true)
                guard let got: Float = try on(path, { try slots.run(program); return slots.floats(2)[0] }) else { continue }
                let defined = Definition.matmul(Definition.roundedAll(a), Definition.roundedAll(b), m: 1, k: 4, n: 1, bias: nil)[0]
                #expect(defined.bitPattern == want.bitPattern, "the definition at 2^\(exponent)")
                #expect(got.bitPattern == want.bitPattern, "2^-126 - 2^\(exponent) on \(path.name): \(got)")
            }
        }
    }

    @Test("f32 operands round to bf16 as VCVTNEPS2BF16 does")
    func rounding() {
        #expect(Definition.round(1 + 0x1p-8) == 0x3f80)          // a tie to even: down
        #expect(Definition.round(1 + 0x1p-8 + 0x1p-20) == 0x3f81)
        #expect(Definition.round(1 + 3 * 0x1p-8) == 0x3f82)      // a tie to even: up
        #expect(Definition.round(-0x1p-130) == 0x8000)           // a denormal: a zero of its sign
        #expect(Definition.round(Float(bitPattern: 0x007f_ffff)) == 0x0000)   // the largest denormal: zero, not 2^-126
        #expect(Definition.round(.greatestFiniteMagnitude) == 0x7f80)
        #expect(Definition.value(Definition.round(.nan)).isNaN)
    }

    @Test("bf16 pairs are refused with an integer or non-f32 output")
    func refused() {
        var program = NeuronProgram()
        program.matmul(.contiguous(slot: 2, dims: [2, 2], dtype: .bfloat16), .contiguous(slot: 0, dims: [2, 2]),
                       .contiguous(slot: 1, dims: [2, 2]), bf16Pairs: true)
        #expect(throws: NeuronProgramError.self) { try Slots([16, 16, 16]).run(program) }
        var ints = NeuronProgram()
        ints.matmul(.contiguous(slot: 2, dims: [2, 2], dtype: .int32), .contiguous(slot: 0, dims: [2, 2], dtype: .int32),
                    .contiguous(slot: 1, dims: [2, 2], dtype: .int32), bf16Pairs: true)
        #expect(throws: NeuronProgramError.self) { try Slots([16, 16, 16]).run(ints) }
    }
}

extension BF16PairsTests.Definition {
    static func roundedAll(_ values: [Float]) -> [UInt16] { values.map(round) }
}
