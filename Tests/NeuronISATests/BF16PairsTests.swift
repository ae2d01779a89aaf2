import CNeuronEngine
import Foundation
import NeuronDevice
import NeuronISA
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

    /// A path: its name, the vector width, whether VDPBF16PS may run, and
    /// the thread's AMX mode.
    typealias Path = (name: String, level: UInt32, native: Bool, amx: UInt32)

    static let amxOff = UInt32(NEURON_AMX_OFF.rawValue)

    /// The paths, by name, with the settings that choose them. The AMX
    /// kernel on emulated tiles keeps the definition's chain in each
    /// element, so it must give its bits too (its blocking checked on any
    /// machine); AMX's own tiles are inexact (`amxNative`).
    static let paths: [Path] = [
        ("scalar", UInt32(NEURON_SIMD_SCALAR.rawValue), false, amxOff),
        ("avx2 fma emulation", UInt32(NEURON_SIMD_AVX2.rawValue), false, amxOff),
        ("avx512 fma emulation", UInt32(NEURON_SIMD_AVX512.rawValue), false, amxOff),
        ("avx512_bf16 vdpbf16ps (native)", UInt32(NEURON_SIMD_AVX512.rawValue), true, amxOff),
        ("amx kernel on emulated tiles", UInt32(NEURON_SIMD_AVX2.rawValue), false, UInt32(NEURON_AMX_EMULATED.rawValue)),
    ]

    static let amxNativePath: Path = ("amx-bf16 tdpbf16ps (native, inexact)", UInt32(NEURON_SIMD_AVX512.rawValue), true,
                                      UInt32(NEURON_AMX_NATIVE.rawValue))

    /// Run `body` on `path`; nil if this CPU cannot.
    func on<T>(_ path: Path, _ body: () throws -> T) rethrows -> T? {
        guard neuron_simd_set_thread(path.level) == 0 else { return nil }
        let native = neuron_gemm_set_bf16_thread(path.native ? 1 : 0) != 0
        let amx = neuron_amx_set_thread(path.amx) == 0
        defer {
            _ = neuron_simd_set_thread(UInt32(NEURON_SIMD_CPU.rawValue))
            _ = neuron_gemm_set_bf16_thread(-1)
            _ = neuron_amx_set_thread(UInt32(NEURON_AMX_PROCESS.rawValue))
        }
        if (path.native && path.amx == Self.amxOff && !native) || !amx { return nil }
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
        /// A stored [K, M] and read through a transposed view (as an im2col's windows).
        var aTransposed = false
        /// B as bf16 pairs in panels (ISA 1.14), NaN in the lanes never read.
        var panels = false
        var description: String {
            "\(m)x\(k)x\(n) a \(aHalf ? "bf16" : "f32")\(aTransposed ? " transposed" : "") b \(bHalf ? "bf16" : "f32")\(panels ? " pairs in panels" : "")\(bias ? " bias" : "")\(tiny ? " near 2^-126" : "")"
        }
    }

    /// Blocks of 12, 8, 4, 2 and 1 rows (one or two over tiles of eight
    /// vectors); odd K; K past a block of 128
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
        Case(m: 16, k: 1153, n: 32, aHalf: false, bHalf: true, aTransposed: true),
        Case(m: 29, k: 75, n: 40, aHalf: false, bHalf: false, bias: true, aTransposed: true),
        Case(m: 6, k: 41, n: 20, aHalf: false, bHalf: true, tiny: true, aTransposed: true),
        Case(m: 13, k: 20, n: 33, aHalf: true, bHalf: true, aTransposed: true),
        Case(m: 2, k: 45, n: 300, aHalf: false, bHalf: true),
        Case(m: 1, k: 40, n: 130, aHalf: true, bHalf: false, bias: true),
        // AMX's blocks: 32 rows (two A tiles) and a third block of 8, whole C tiles in place.
        Case(m: 40, k: 290, n: 64, aHalf: false, bHalf: true, bias: true),
        Case(m: 48, k: 64, n: 32, aHalf: true, bHalf: true),
        // Pairs in panels: every block of rows, K past blocks of pairs (and
        // AMX's last tile short), columns past N in the last panel, odd K
        // (the reference chain), tiny values.
        Case(m: 40, k: 290, n: 70, aHalf: false, bHalf: true, bias: true, panels: true),
        Case(m: 13, k: 40, n: 33, aHalf: true, bHalf: true, panels: true),
        Case(m: 5, k: 600, n: 64, aHalf: false, bHalf: true, panels: true),
        Case(m: 1, k: 64, n: 300, aHalf: false, bHalf: true, bias: true, panels: true),
        Case(m: 9, k: 9, n: 40, aHalf: false, bHalf: true, panels: true),
        Case(m: 16, k: 40, n: 64, aHalf: false, bHalf: true, tiny: true, panels: true),
        Case(m: 29, k: 76, n: 40, aHalf: false, bHalf: true, bias: true, aTransposed: true, panels: true),
    ]

    /// `values` into `slot`: as f32, or rounded to bf16 (`half`).
    static func store(_ slots: Slots, _ slot: Int, _ values: [Float], half: Bool) {
        if half {
            Definition.roundedAll(values).withUnsafeBytes { slots.buffers[slot].copyMemory(from: $0) }
        } else {
            slots.set(slot, values)
        }
    }

    /// `c`'s operands, row-major [M, K] and [K, N], as f32.
    static func operands(_ c: Case) -> (a: [Float], b: [Float]) {
        (values(c.m * c.k, seed: UInt32(c.m * 131 + c.k), tiny: c.tiny),
         values(c.k * c.n, seed: UInt32(c.n * 17 + c.k), tiny: c.tiny))
    }

    /// The engine's output for `c` and what the definition says.
    func run(_ c: Case) throws -> (got: [UInt32], want: [UInt32]) {
        let (a, b) = Self.operands(c)
        let bias = sample(c.n, seed: 5)
        let panelCount = (c.n + 31) / 32, pairCount = (c.k + 1) / 2
        let slots = Slots([c.m * c.k * (c.aHalf ? 2 : 4), c.panels ? panelCount * pairCount * 128 : c.k * c.n * (c.bHalf ? 2 : 4),
                           c.n * 4, c.m * c.n * 4])
        let stored = c.aTransposed ? (0..<(c.m * c.k)).map { a[($0 % c.m) * c.k + $0 / c.m] } : a
        Self.store(slots, 0, stored, half: c.aHalf)
        if c.panels {
            let laid = try #require(NeuronProgram.pairPanelMatmulWeights(Definition.roundedAll(b), k: c.k, n: c.n, pad: 0x7fc0))
            laid.withUnsafeBytes { slots.buffers[1].copyMemory(from: $0) }
        } else {
            Self.store(slots, 1, b, half: c.bHalf)
        }
        slots.set(2, bias)
        let aView = c.aTransposed
            ? NeuronTensorView.contiguous(slot: 0, dims: [UInt32(c.k), UInt32(c.m)], dtype: c.aHalf ? .bfloat16 : .float32).swapping(0, 1)
            : .contiguous(slot: 0, dims: [UInt32(c.m), UInt32(c.k)], dtype: c.aHalf ? .bfloat16 : .float32)
        var program = NeuronProgram()
        program.matmul(.contiguous(slot: 3, dims: [UInt32(c.m), UInt32(c.n)]),
                       aView,
                       c.panels ? .contiguous(slot: 1, dims: [UInt32(panelCount), UInt32(pairCount), 64], dtype: .bfloat16)
                                : .contiguous(slot: 1, dims: [UInt32(c.k), UInt32(c.n)], dtype: c.bHalf ? .bfloat16 : .float32),
                       bias: c.bias ? .contiguous(slot: 2, dims: [UInt32(c.n)]) : nil, bf16Pairs: true, bPanels: c.panels)
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
              + (neuron_simd_can_run(UInt32(NEURON_SIMD_AVX512.rawValue), 1) != 0 ? "" : " (no AVX512_BF16 here: VDPBF16PS did not run)"))
        #expect(ran.count >= (neuron_simd_level() == UInt32(NEURON_SIMD_SCALAR.rawValue) ? 1 : 2))
    }

    /// The default path is chosen by speed alone (both give the same
    /// bits): VDPBF16PS only where the CPU has it, and the choice stays.
    @Test("VDPBF16PS runs by default only where the CPU has it and it is the faster")
    func defaultChoice() {
        let has = NeuronEngine.hasBF16PairsInstruction, native = NeuronEngine.runsBF16PairsNatively
        #expect(has || !native)
        #expect(NeuronEngine.runsBF16PairsNatively == native, "measured once")
        print("bf16 pairs by default: " + (native ? "VDPBF16PS (faster than the FMA emulation here)"
                                           : has ? "the FMA emulation (VDPBF16PS is slower here)" : "the FMA emulation (no AVX512_BF16 here)"))
    }

    /// AMX's tiles sum their pairs in an order of their own. Any order of
    /// fp32 sums of K exact products is within (K - 1)·2^-24 of the sum of
    /// |a·b| from the true value, so two orders are within twice that of
    /// each other (plus 2^-120 for flushed tiny results): each output must
    /// be, and the largest error is printed. Products of 8 rows or fewer stay on
    /// the exact paths and must give the definition's bits.
    @Test("AMX's tiles stay within a few roundings of the definition (where the CPU has AMX-BF16)")
    func amxNative() throws {
        guard neuron_amx_can_run(UInt32(NEURON_AMX_NATIVE.rawValue)) != 0 else {
            print("AMX tiles: not compared (no AMX-BF16 here, or the kernel does not grant it)")
            return
        }
        var worst = 0.0, inexact = 0, outputs = 0
        for c in Self.cases where !c.tiny {
            guard let (got, want) = try on(Self.amxNativePath, { try run(c) }) else { continue }
            let (a, b) = Self.operands(c)
            let ra = Definition.roundedAll(a).map(Definition.value), rb = Definition.roundedAll(b).map(Definition.value)
            for i in 0..<c.m {
                for j in 0..<c.n {
                    let index = i * c.n + j
                    let g = Float(bitPattern: got[index]), w = Float(bitPattern: want[index])
                    if c.m <= 8 {
                        #expect(got[index] == want[index], "\(c): \(c.m) rows took the exact path")
                        continue
                    }
                    var magnitude = 0.0
                    for k in 0..<c.k { magnitude += abs(Double(ra[i * c.k + k]) * Double(rb[k * c.n + j])) }
                    let error = abs(Double(g) - Double(w))
                    outputs += 1
                    if error > 0 { inexact += 1 }
                    if magnitude > 0 { worst = max(worst, error / magnitude) }
                    #expect(error <= 2 * Double(c.k) * 0x1p-24 * magnitude + 0x1p-120, "\(c) at [\(i),\(j)]: \(g) against \(w)")
                }
            }
        }
        print("AMX tiles (native): \(inexact) of \(outputs) outputs differ from the definition; the largest error is \(worst) of the sum of |a·b|")
        #expect(outputs > 0)
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

/// CONV2D in bfloat16 pairs (ISA 1.10, NEURON_CONV_BF16_PAIRS): each
/// output the pairs product of its weights by its window, both flattened
/// (input channel, kernel row, kernel column), a padding tap a zero.
@Suite("Engine: CONV2D in bf16 pairs")
struct ConvBF16PairsTests {
    typealias Definition = BF16PairsTests.Definition

    struct Case: Sendable, CustomStringConvertible {
        var n = 1
        var ci: Int, h: Int, w: Int, co: Int, kh: Int, kw: Int
        var stride = (h: 1, w: 1), pads = (top: 0, left: 0, bottom: 0, right: 0), dilation = (h: 1, w: 1)
        var groups = 1, xHalf = false, wHalf = false, bias = false, relu = false, tiny = false
        /// The output holds a residual that each result adds (NEURON_CONV_ACCUMULATE).
        var accumulate = false
        /// The upper bound after relu (NEURON_CONV_CLAMP).
        var clamp: Float?
        var ho: Int { (h + pads.top + pads.bottom - dilation.h * (kh - 1) - 1) / stride.h + 1 }
        var wo: Int { (w + pads.left + pads.right - dilation.w * (kw - 1) - 1) / stride.w + 1 }
        var description: String {
            "\(n)x\(ci)x\(h)x\(w) * \(co)x\(ci / groups)x\(kh)x\(kw) s\(stride.h),\(stride.w) p\(pads) d\(dilation.h),\(dilation.w) g\(groups)"
                + " x \(xHalf ? "bf16" : "f32") w \(wHalf ? "bf16" : "f32")\(bias ? " bias" : "")\(relu ? " relu" : "")\(tiny ? " near 2^-126" : "")\(accumulate ? " accumulate" : "")"
                + (clamp.map { " clamp \($0)" } ?? "")
        }
    }

    /// A 1x1 read in place; 3x3 gathered, past one block of gathered
    /// positions (224 at K = 576); strides, dilation, uneven padding, odd
    /// K (pairs across input channels), groups, batch, few output
    /// channels (the FMA path) and many (VDPBF16PS's blocks of 12).
    static let cases: [Case] = [
        Case(ci: 40, h: 9, w: 11, co: 36, kh: 1, kw: 1, bias: true, relu: true, clamp: 0.25),
        Case(n: 2, ci: 64, h: 20, w: 20, co: 24, kh: 3, kw: 3, pads: (1, 1, 1, 1), wHalf: true, bias: true),
        Case(ci: 3, h: 17, w: 15, co: 16, kh: 3, kw: 3, stride: (2, 2), pads: (1, 0, 2, 1), relu: true, clamp: 0.25),
        Case(ci: 8, h: 12, w: 13, co: 20, kh: 5, kw: 3, pads: (4, 2, 4, 2), dilation: (2, 2), xHalf: true, wHalf: true),
        Case(ci: 12, h: 7, w: 9, co: 30, kh: 3, kw: 3, pads: (1, 1, 1, 1), groups: 3, bias: true),
        Case(ci: 33, h: 6, w: 6, co: 5, kh: 1, kw: 1, stride: (2, 2), xHalf: true),
        Case(ci: 16, h: 10, w: 10, co: 14, kh: 3, kw: 3, pads: (1, 1, 1, 1), tiny: true),
        Case(ci: 9, h: 5, w: 40, co: 13, kh: 1, kw: 3, pads: (0, 1, 0, 1), wHalf: true, relu: true, tiny: true),
        Case(ci: 48, h: 14, w: 14, co: 40, kh: 1, kw: 1, wHalf: true, bias: true, relu: true, accumulate: true, clamp: 0.5),
        Case(ci: 64, h: 20, w: 20, co: 24, kh: 3, kw: 3, pads: (1, 1, 1, 1), groups: 2, relu: true, accumulate: true),
        Case(ci: 32, h: 9, w: 9, co: 3000, kh: 1, kw: 1, wHalf: true, accumulate: true),
    ]

    static func conv(_ c: Case, x: [UInt16], w: [UInt16], bias: [Float]?, residual: [Float]) -> [Float] {
        let cig = c.ci / c.groups, per = c.co / c.groups, k = cig * c.kh * c.kw
        var out = residual
        for b in 0..<c.n {
            for o in 0..<c.co {
                for y in 0..<c.ho {
                    for xo in 0..<c.wo {
                        func tap(_ t: Int) -> (Float, Float) {
                            guard t < k else { return (0, 0) }
                            let ci = t / (c.kh * c.kw), r = t % (c.kh * c.kw), ky = r / c.kw, kx = r % c.kw
                            let weight = Definition.value(w[o * k + t])
                            let iy = y * c.stride.h - c.pads.top + ky * c.dilation.h
                            let ix = xo * c.stride.w - c.pads.left + kx * c.dilation.w
                            guard iy >= 0, iy < c.h, ix >= 0, ix < c.w else { return (0, weight) }
                            let channel = (o / per) * cig + ci
                            return (Definition.value(x[((b * c.ci + channel) * c.h + iy) * c.w + ix]), weight)
                        }
                        var acc: Float = 0
                        for p in stride(from: 0, to: k, by: 2) {
                            let odd = tap(p + 1), even = tap(p)
                            acc = Definition.step(odd.0, odd.1, acc)
                            acc = Definition.step(even.0, even.1, acc)
                        }
                        if c.accumulate { acc = acc + out[((b * c.co + o) * c.ho + y) * c.wo + xo] }
                        if let bias { acc = acc + bias[o] }
                        if c.relu, !(acc > 0) { acc = acc.isNaN ? acc : 0 }
                        if let bound = c.clamp, !(acc < bound), !acc.isNaN { acc = bound }
                        out[((b * c.co + o) * c.ho + y) * c.wo + xo] = acc
                    }
                }
            }
        }
        return out
    }

    func program(_ c: Case) -> NeuronProgram {
        var program = NeuronProgram()
        let window = NeuronWindow(stride: (UInt32(c.stride.h), UInt32(c.stride.w)),
                                  padding: (UInt32(c.pads.top), UInt32(c.pads.left), UInt32(c.pads.bottom), UInt32(c.pads.right)),
                                  dilation: (UInt32(c.dilation.h), UInt32(c.dilation.w)))
        program.conv2d(.contiguous(slot: 3, dims: [c.n, c.co, c.ho, c.wo].map(UInt32.init)),
                       .contiguous(slot: 0, dims: [c.n, c.ci, c.h, c.w].map(UInt32.init), dtype: c.xHalf ? .bfloat16 : .float32),
                       weight: .contiguous(slot: 1, dims: [c.co, c.ci / c.groups, c.kh, c.kw].map(UInt32.init),
                                           dtype: c.wHalf ? .bfloat16 : .float32),
                       bias: c.bias ? .contiguous(slot: 2, dims: [UInt32(c.co)]) : nil, window: window, relu: c.relu,
                       clamp: c.clamp, accumulate: c.accumulate, bf16Pairs: true)
        return program
    }

    /// The engine's output for `c` (whole, or in slices of `partWork`) and the definition's.
    func run(_ c: Case, partWork: UInt64? = nil) throws -> (got: [UInt32], want: [UInt32]) {
        let xs = BF16PairsTests.values(c.n * c.ci * c.h * c.w, seed: UInt32(c.ci * 7 + c.h), tiny: c.tiny)
        let ws = BF16PairsTests.values(c.co * c.ci / c.groups * c.kh * c.kw, seed: UInt32(c.co * 3 + c.kw), tiny: c.tiny)
        let bias = sample(c.co, seed: 9)
        let slots = Slots([xs.count * (c.xHalf ? 2 : 4), ws.count * (c.wHalf ? 2 : 4), c.co * 4, c.n * c.co * c.ho * c.wo * 4])
        BF16PairsTests.store(slots, 0, xs, half: c.xHalf)
        BF16PairsTests.store(slots, 1, ws, half: c.wHalf)
        slots.set(2, bias)
        let residual = c.accumulate ? sample(c.n * c.co * c.ho * c.wo, seed: 10) : [Float](repeating: 0, count: c.n * c.co * c.ho * c.wo)
        slots.set(3, residual)
        if let partWork {
            try NeuronEngine.runSliced(program(c).image(), slots: slots.buffers, partsPerStep: 1, partWork: partWork)
        } else {
            try slots.run(program(c))
        }
        let want = Self.conv(c, x: Definition.roundedAll(xs), w: Definition.roundedAll(ws), bias: c.bias ? bias : nil,
                             residual: residual)
        return (slots.floats(3).map(RowKernelTests.bits), want.map(RowKernelTests.bits))
    }

    @Test("CONV2D in bf16 pairs gives the definition's bits on every path this CPU runs")
    func everyPath() throws {
        var ran: [String] = []
        for path in BF16PairsTests.paths {
            var compared = 0
            for c in Self.cases {
                guard let (got, want) = try BF16PairsTests().on(path, { try run(c) }) else { continue }
                #expect(got == want, "\(c) on \(path.name): \(zip(got, want).filter { $0 != $1 }.count) of \(got.count) outputs differ")
                if let bound = c.clamp { #expect(want.contains(bound.bitPattern), "\(c): the bound reached") }
                compared += 1
            }
            if compared > 0 { ran.append(path.name) }
        }
        print("CONV2D bf16 pairs: compared with the definition on: \(ran.joined(separator: "; "))")
        #expect(ran.count >= (neuron_simd_level() == UInt32(NEURON_SIMD_SCALAR.rawValue) ? 1 : 2))
    }

    @Test("CONV2D in bf16 pairs run in slices of output rows or channels gives the same bits")
    func sliced() throws {
        for c in Self.cases.prefix(5) + Self.cases.filter(\.accumulate).prefix(2) {
            let (got, want) = try run(c, partWork: 3000)
            #expect(got == want, "\(c) in slices: \(zip(got, want).filter { $0 != $1 }.count) outputs differ")
        }
    }

    @Test("CONV2D in bf16 pairs is refused with packed or Winograd weights, or a bf16 output")
    func refused() {
        let x = NeuronTensorView.contiguous(slot: 0, dims: [1, 16, 6, 6])
        let out = NeuronTensorView.contiguous(slot: 2, dims: [1, 16, 4, 4])
        let w = NeuronTensorView.contiguous(slot: 1, dims: [16, 16, 3, 3])
        var winograd = NeuronProgram()
        winograd.conv2d(out, x, weight: .contiguous(slot: 1, dims: [16, 3, 16, 6]), winograd: true, bf16Pairs: true)
        var packed = NeuronProgram()
        packed.conv2d(out, x, weight: .contiguous(slot: 1, dims: [3, 16, 3, 3, 6]), packedWeights: true, bf16Pairs: true)
        var half = NeuronProgram()
        half.conv2d(.contiguous(slot: 2, dims: [1, 16, 4, 4], dtype: .bfloat16), x, weight: w, bf16Pairs: true)
        var ints = NeuronProgram()
        ints.conv2d(out, .contiguous(slot: 0, dims: [1, 16, 6, 6], dtype: .int32), weight: w, bf16Pairs: true)
        var plain = NeuronProgram()   // bf16 without the flag
        plain.conv2d(out, x, weight: .contiguous(slot: 1, dims: [16, 16, 3, 3], dtype: .bfloat16))
        for program in [winograd, packed, half, ints, plain] {
            #expect(throws: NeuronProgramError.self) { try Slots([4096, 8192, 4096]).run(program) }
        }
        var good = NeuronProgram()
        good.conv2d(out, x, weight: .contiguous(slot: 1, dims: [16, 16, 3, 3], dtype: .bfloat16), bf16Pairs: true)
        #expect(throws: Never.self) { try Slots([4096, 8192, 4096]).run(good) }
    }
}

extension BF16PairsTests.Definition {
    static func roundedAll(_ values: [Float]) -> [UInt16] { values.map(round) }
}
