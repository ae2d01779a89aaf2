import Foundation
import NeuronISA
import Testing
import TestSupport

/// ISA 1.6's storage types: float8 (E4M3FN, E4M3FNUZ, E5M2, E5M2FNUZ,
/// E8M0), float4 E2M1 and the four- and two-bit integers, one byte each.
/// The expected values come from the formats' definitions, decoded here in
/// Swift independently of the engine's C, and rounding is checked against
/// a search for the nearest representable value.
@Suite("engine: float8, float4 and sub-byte integers (ISA 1.6)")
struct SmallTypeEngineTests {
    typealias Run = TypedEngineTests

    /// A format as its definition gives it.
    struct Format {
        var type: NeuronDType, exponentBits: Int, mantissaBits: Int, bias: Int
        /// FN: all ones is NaN, no infinity; FNUZ: 0x80 is NaN, no -0, no infinity;
        /// IEEE: an all-ones exponent is infinity or NaN; none: neither (float4).
        enum Special { case fn, fnuz, ieee, none }
        var special: Special

        var codes: Int { 1 << (exponentBits + mantissaBits + 1) }

        /// The value of `code`, from the definition.
        func value(_ code: Int) -> Double {
            let n = exponentBits + mantissaBits, sign = code >> n & 1 == 1 ? -1.0 : 1.0
            let magnitude = code & ((1 << n) - 1)
            let e = magnitude >> mantissaBits, m = magnitude & ((1 << mantissaBits) - 1)
            switch special {
            case .fn where magnitude == (1 << n) - 1: return .nan
            case .fnuz where code == 1 << n: return .nan
            case .ieee where e == (1 << exponentBits) - 1: return m == 0 ? sign * .infinity : .nan
            default: break
            }
            let fraction = Double(m) / Double(1 << mantissaBits)
            return e == 0 ? sign * fraction * pow(2, Double(1 - bias)) : sign * (1 + fraction) * pow(2, Double(e - bias))
        }

        /// The largest finite value.
        var max: Double { (0..<codes).map(value).filter(\.isFinite).max() ?? 0 }
    }

    static let formats: [Format] = [
        Format(type: .float8E4M3FN, exponentBits: 4, mantissaBits: 3, bias: 7, special: .fn),
        Format(type: .float8E4M3FNUZ, exponentBits: 4, mantissaBits: 3, bias: 8, special: .fnuz),
        Format(type: .float8E5M2, exponentBits: 5, mantissaBits: 2, bias: 15, special: .ieee),
        Format(type: .float8E5M2FNUZ, exponentBits: 5, mantissaBits: 2, bias: 16, special: .fnuz),
        Format(type: .float4E2M1, exponentBits: 2, mantissaBits: 1, bias: 1, special: .none),
    ]

    static func floatBytes(_ values: [Float]) -> [UInt8] {
        values.flatMap { value in withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) } }
    }

    @Test("sizes and names: one byte each, ml_dtypes' names; none of them computes")
    func sizes() {
        let small: [NeuronDType] = [.float8E4M3FN, .float8E4M3FNUZ, .float8E5M2, .float8E5M2FNUZ, .float8E8M0, .float4E2M1,
                                    .int4, .uint4, .int2, .uint2]
        #expect(small.map(\.name) == ["float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu",
                                      "float4_e2m1fn", "int4", "uint4", "int2", "uint2"])
        for type in small {
            #expect(type.size == 1 && !type.computes && NeuronDType(name: type.name) == type)
        }
        #expect(NeuronDType.allCases.filter { !$0.computes }.count == small.count)
    }

    @Test("every code widens to float32 as its format defines", arguments: formats)
    func widening(_ format: Format) throws {
        let codes = (0..<format.codes).map { UInt8($0) }
        let out = try Run.run([.float32, format.type], [codes], count: codes.count) { p, v in p.cast(v[0], v[1]) }
        for (code, got) in zip(codes, NeuronDType.float32.values(out)) {
            let want = format.value(Int(code))
            #expect(want.isNaN ? got.isNaN : got == want && got.sign == want.sign, "\(format.type) 0x\(String(code, radix: 16)): \(got), want \(want)")
        }
        // NeuronDType.values (the tools' and the folder's reading) agrees.
        for (code, value) in zip(codes, format.type.values(codes)) {
            let want = format.value(Int(code))
            #expect(want.isNaN ? value.isNaN : value == want)
        }
    }

    /// Each code's value, the largest finite one, its code and the step below it.
    struct Table {
        var values: [Double], largest: Double, largestCode: Int, step: Double

        init(_ format: Format) {
            values = (0..<format.codes).map(format.value)
            largest = values.filter(\.isFinite).max() ?? 0
            let top = largest
            largestCode = values.firstIndex(of: top) ?? 0
            step = top - (values.filter { $0.isFinite && $0 < top }.max() ?? 0)
        }
    }

    /// The code nearest `x` by search (ties to the even code), or nil
    /// when x is beyond the largest finite value by half a step or more.
    static func nearest(_ x: Double, _ format: Format, _ table: Table) -> Int? {
        var best: (code: Int, distance: Double)?
        for code in 0..<format.codes {
            let value = table.values[code]
            guard value.isFinite, !(value == 0 && value.sign == .minus && x.sign == .plus),
                  !(value == 0 && value.sign == .plus && x.sign == .minus && format.special != .fnuz) else { continue }
            let distance = abs(value - x)
            if let current = best {
                if distance < current.distance || (distance == current.distance && code & 1 == 0 && current.code & 1 == 1) {
                    best = (code, distance)
                }
            } else {
                best = (code, distance)
            }
        }
        // Beyond the range: past the largest value by more than half its
        // step, or by half when the tie goes to the (odd) largest code's
        // even neighbour.
        let bound = table.largest + table.step / 2
        if abs(x) > bound || (abs(x) == bound && table.largestCode & 1 == 1) { return nil }
        return best?.code
    }

    @Test("float32 rounds to each format to nearest even; saturating, or to infinity or NaN", arguments: formats)
    func rounding(_ format: Format) throws {
        var values: [Float] = [0, -0.0, .nan, .infinity, -.infinity, 1e6, -1e6, 1e-7, -1e-7, Float(format.max), -Float(format.max)]
        // every value and each midpoint between neighbours, and random ones
        let finite = Set((0..<format.codes).map(format.value).filter(\.isFinite)).sorted()
        values += finite.map(Float.init)
        values += zip(finite, finite.dropFirst()).map { Float(($0 + $1) / 2) }
        var state: UInt32 = 7
        for _ in 0..<1000 {
            state = state &* 1_664_525 &+ 1_013_904_223
            values.append(Float(sign: state & 1 == 0 ? .plus : .minus, exponent: Int(state >> 27) % 32 - 18,
                                significand: 1 + Float(state >> 8 & 0xffff) / 65536))
        }
        let input = Self.floatBytes(values)
        let table = Table(format)
        // float4 has no infinity or NaN: it always saturates (NO_SATURATE is float8's)
        for saturate in format.type == .float4E2M1 ? [true] : [true, false] {
            let out = try Run.run([format.type, .float32], [input], count: values.count) { p, v in
                p.cast(v[0], v[1], saturate: saturate)
            }
            for (value, code) in zip(values, out) {
                let got = table.values[Int(code)]
                let x = Double(value)
                if x.isNaN {
                    // float4 has no NaN: 0
                    #expect(format.special == .none ? got == 0 : got.isNaN, "NaN to \(format.type): 0x\(String(code, radix: 16))")
                    continue
                }
                guard let want = Self.nearest(x, format, table) else {
                    // beyond the range
                    let wantValue: Double = saturate || format.special == .none
                        ? (x < 0 ? -table.largest : table.largest)
                        : format.special == .ieee ? (x < 0 ? -.infinity : .infinity) : .nan
                    #expect(wantValue.isNaN ? got.isNaN : got == wantValue,
                            "\(value) to \(format.type)\(saturate ? "" : " (no saturate)"): \(got), want \(wantValue)")
                    continue
                }
                #expect(Int(code) == want || (table.values[want] == 0 && got == 0),
                        "\(value) to \(format.type): 0x\(String(code, radix: 16)) (\(got)), want 0x\(String(want, radix: 16)) (\(table.values[want]))")
            }
            // NeuronDType.bytes (the folder's and the tools' writing) rounds alike.
            let flags = NeuronProgram.castFlags(wrap: false, saturate: saturate, e8m0: .nearest)
            #expect(format.type.bytes(values.map(Double.init), castFlags: flags) == out)
        }
    }

    @Test("the ONNX specification's table: zero, -0, NaN, infinity and out of range")
    func specialValues() throws {
        let values: [Float] = [0, -0.0, .nan, .infinity, -.infinity, 1e6, -1e6]
        let want: [NeuronDType: (saturated: [UInt8], unsaturated: [UInt8])] = [
            .float8E4M3FN: ([0x00, 0x80, 0x7f, 0x7e, 0xfe, 0x7e, 0xfe], [0x00, 0x80, 0x7f, 0x7f, 0xff, 0x7f, 0xff]),
            .float8E4M3FNUZ: ([0x00, 0x00, 0x80, 0x7f, 0xff, 0x7f, 0xff], [0x00, 0x00, 0x80, 0x80, 0x80, 0x80, 0x80]),
            .float8E5M2: ([0x00, 0x80, 0x7e, 0x7b, 0xfb, 0x7b, 0xfb], [0x00, 0x80, 0x7e, 0x7c, 0xfc, 0x7c, 0xfc]),
            .float8E5M2FNUZ: ([0x00, 0x00, 0x80, 0x7f, 0xff, 0x7f, 0xff], [0x00, 0x00, 0x80, 0x80, 0x80, 0x80, 0x80]),
        ]
        for (type, codes) in want {
            for saturate in [true, false] {
                let out = try Run.run([type, .float32], [Self.floatBytes(values)], count: values.count) { p, v in
                    p.cast(v[0], v[1], saturate: saturate)
                }
                #expect(out == (saturate ? codes.saturated : codes.unsaturated), "\(type) saturate=\(saturate)")
            }
        }
    }

    @Test("float8 E8M0: powers of two, rounded up, down or to nearest; NaN and infinity are 0xff")
    func e8m0() throws {
        let values: [Float] = [1, 1.1, 1.5, 1.75, 0.124, 0.25, 0x1.8p127, 0x1p-127, 0, .nan, .infinity]
        let want: [NeuronE8M0Rounding: [UInt8]] = [
            .up: [127, 128, 128, 128, 124, 125, 254, 1, 0, 255, 255],   // 2^-127, a float32 subnormal, has a fraction
            .down: [127, 127, 127, 127, 123, 125, 254, 0, 0, 255, 255],
            .nearest: [127, 127, 128, 128, 124, 125, 254, 0, 0, 255, 255],
        ]
        for (rounding, codes) in want {
            let out = try Run.run([.float8E8M0, .float32], [Self.floatBytes(values)], count: values.count) { p, v in
                p.cast(v[0], v[1], e8m0: rounding)
            }
            #expect(out == codes, "\(rounding)")
        }
        // Not saturating, rounding up past 2^127 is NaN.
        let over = try Run.run([.float8E8M0, .float32], [Self.floatBytes([0x1.8p127])], count: 1) { p, v in
            p.cast(v[0], v[1], saturate: false, e8m0: .up)
        }
        #expect(over == [255])
        let codes: [UInt8] = [0, 1, 127, 128, 254, 255]
        let wide = try Run.run([.float32, .float8E8M0], [codes], count: codes.count) { p, v in p.cast(v[0], v[1]) }
        let got = NeuronDType.float32.values(wide)
        #expect(Array(got.prefix(5)) == [0x1p-127, 0x1p-126, 1, 2, 0x1p127] && got[5].isNaN)
    }

    @Test("four- and two-bit integers: low bits from integers (wrap) or saturated; floats toward zero, then the low bits")
    func subByteIntegers() throws {
        let integers: [Int64] = [0, 1, -1, 7, 8, -8, -9, 15, 16, 17, 1, -3, 100, -100]
        let floats: [Float] = [0, 0.9, -0.9, 7.5, 8, -8.5, -9, 15, 16, -2.5, .nan, 3e9, -1e30, 1.5]
        for type in [NeuronDType.int4, .uint4, .int2, .uint2] {
            let bits = type.bitWidth, signed = type.isSigned
            let low = signed ? -(Int64(1) << (bits - 1)) : 0, high = signed ? (Int64(1) << (bits - 1)) - 1 : (Int64(1) << bits) - 1
            func lowBits(_ value: Int64) -> Int64 {
                let masked = value & ((1 << bits) - 1)
                return signed && masked >> (bits - 1) == 1 ? masked - (1 << bits) : masked
            }
            for wrap in [true, false] {
                let out = try Run.run([type, .int64], [integers.flatMap { Run.raw($0, size: 8) }], count: integers.count) { p, v in
                    p.cast(v[0], v[1], wrap: wrap)
                }
                let want = integers.map { wrap ? lowBits($0) : Swift.min(Swift.max($0, low), high) }
                // stored sign-extended through the byte
                #expect(out.map { signed ? Int64(Int8(bitPattern: $0)) : Int64($0) } == want, "\(type) wrap=\(wrap)")
                #expect(type.values(out) == want.map(Double.init))
            }
            let out = try Run.run([type, .float32], [Self.floatBytes(floats)], count: floats.count) { p, v in p.cast(v[0], v[1]) }
            let want = floats.map { value -> Int64 in
                let whole = Double(value).rounded(.towardZero)
                return whole.isNaN || abs(whole) >= 0x1p63 ? 0 : lowBits(Int64(whole))
            }
            #expect(type.values(out) == want.map(Double.init), "\(type) from float32")
            #expect(type.bytes(floats.map(Double.init)) == out)
            // back to float32 and int32, whatever the byte's high bits hold
            let bytes: [UInt8] = (0..<256).map { UInt8($0) }
            let wide = try Run.run([.int32, type], [bytes], count: 256) { p, v in p.cast(v[0], v[1]) }
            #expect(NeuronDType.int32.values(wide) == bytes.map { Double(lowBits(Int64($0))) })
        }
    }

    @Test("FILL, COPY, GATHER and SELECT move them; computing them, or CAST flags that do not apply, is refused")
    func movedNotComputed() throws {
        let fill = try Run.run([.float8E4M3FN], [], count: 3) { p, v in p.fill(v[0], value: 3.3) }
        #expect(fill == [0x45, 0x45, 0x45])   // 3.25, the nearest
        let copy = try Run.run([.int4, .int4], [[0xf9, 3, 0xf8]], count: 3) { p, v in p.copy(v[0], from: v[1]) }
        #expect(copy == [0xf9, 3, 0xf8])
        let refused: [(String, (inout NeuronProgram, [NeuronTensorView]) -> Void, [NeuronDType])] = [
            ("BINARY ADD of float8", { p, v in p.binary(.add, v[0], v[1], v[2]) }, [.float8E4M3FN, .float8E4M3FN, .float8E4M3FN]),
            ("UNARY NEG of int4", { p, v in p.unary(.neg, v[0], v[1]) }, [.int4, .int4]),
            ("COMPARE of uint2", { p, v in p.compare(.lt, v[0], v[1], v[2]) }, [.bool, .uint2, .uint2]),
            ("ARGMAX of float4", { p, v in p.reduce(.argmax, v[0], v[1]) }, [.int64, .float4E2M1]),
            ("no saturation into int8", { p, v in p.cast(v[0], v[1], saturate: false) }, [.int8, .float32]),
            ("E8M0 rounding into float8 E4M3", { p, v in p.cast(v[0], v[1], e8m0: .up) }, [.float8E4M3FN, .float32]),
        ]
        for (what, emit, types) in refused {
            #expect(throws: NeuronProgramError.self, "\(what)") {
                _ = try Run.run(types, types.dropFirst().map { _ in [UInt8](repeating: 0, count: 4) }, count: 1, emit)
            }
        }
    }
}

extension SmallTypeEngineTests.Format: CustomTestStringConvertible {
    var testDescription: String { type.name }
}
