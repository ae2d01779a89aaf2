import Foundation
import NeuronISA
import Testing
import TestSupport

/// ISA 1.4: every element type through FILL, COPY, CAST, GATHER and
/// SELECT; integer and bool BINARY and UNARY; COMPARE; ARGMAX and ARGMIN;
/// float MOD and FMOD; FLOOR, CEIL and ROUND. Each against Swift's own
/// arithmetic, which defines the same results independently.
@Suite("engine: every element type (ISA 1.4, 1.5)")
struct TypedEngineTests {
    /// Slots holding `contents` (raw little-endian bytes each).
    static func slots(_ contents: [[UInt8]]) -> Slots {
        let slots = Slots(contents.map { max(8, $0.count) })
        for (index, bytes) in contents.enumerated() {
            bytes.withUnsafeBytes { slots.buffers[index].copyMemory(from: $0) }
        }
        return slots
    }

    static func bytes(_ slots: Slots, _ slot: Int, count: Int) -> [UInt8] {
        Array(slots.buffers[slot].prefix(count))
    }

    /// One instruction over views of `dtypes`, contiguous [count] each,
    /// slot i for operand i; the output's bytes.
    static func run(_ dtypes: [NeuronDType], _ inputs: [[UInt8]], count: Int,
                    _ emit: (inout NeuronProgram, [NeuronTensorView]) -> Void) throws(NeuronProgramError) -> [UInt8] {
        let out = [UInt8](repeating: 0xcd, count: count * dtypes[0].size)
        let slots = Self.slots([out] + inputs)
        var program = NeuronProgram()
        emit(&program, dtypes.enumerated().map { .contiguous(slot: $0.offset, dims: [UInt32(count)], dtype: $0.element) })
        try slots.run(program)
        return bytes(slots, 0, count: out.count)
    }

    @Test("sizes are the C table's, and names read back")
    func sizes() {
        let want: [NeuronDType: Int] = [.float32: 4, .bfloat16: 2, .int32: 4, .int64: 8, .float16: 2, .float64: 8,
                                        .int8: 1, .uint8: 1, .int16: 2, .uint16: 2, .uint32: 4, .uint64: 8, .bool: 1]
        for type in NeuronDType.allCases where type.computes {   // ISA 1.6's: SmallTypeEngineTests
            #expect(type.size == want[type], "\(type)")
            #expect(NeuronDType(name: type.name) == type)
        }
    }

    @Test("float16 widens exactly, for all 65536 bit patterns")
    func halfWidening() throws {
        let halves = (0...0xffff).map { UInt16($0) }
        let input = halves.flatMap { [UInt8($0 & 0xff), UInt8($0 >> 8)] }
        let out = try Self.run([.float32, .float16], [input], count: halves.count) { p, v in p.cast(v[0], v[1]) }
        let got = NeuronDType.float32.values(out)
        for (bits, value) in zip(halves, got) {
            let want = Float(Float16(bitPattern: bits))
            #expect(want.isNaN ? value.isNaN : Float(value).bitPattern == want.bitPattern, "0x\(String(bits, radix: 16))")
        }
    }

    @Test("bfloat16 widens to float32 exactly for all 65536 bit patterns, a NaN quieted with its payload; float32 rounds to nearest even, NaN to 0x7fc0")
    func bfloat16Casts() throws {
        let halves = (0...0xffff).map { UInt16($0) }
        let input = halves.flatMap { [UInt8($0 & 0xff), UInt8($0 >> 8)] }
        let wide = NeuronDType.float32.values(try Self.run([.float32, .bfloat16], [input], count: halves.count) { p, v in p.cast(v[0], v[1]) })
        var wrong = 0
        for (bits, value) in zip(halves, wide) {
            var want = UInt32(bits) << 16
            if want & 0x7fff_ffff > 0x7f80_0000 { want |= 0x0040_0000 }
            if Float(value).bitPattern != want { wrong += 1 }
        }
        #expect(wrong == 0, "\(wrong) of 65536 widen wrong")
        // Ties to even both ways, the largest finite values, payloads, subnormals.
        var patterns: [UInt32] = [0, 0x8000_0000, 0x3f80_8000, 0x3f81_8000, 0x3f80_8001, 0x7f7f_ffff, 0x7f7f_7fff,
                                  0x7f80_0000, 0xff80_0000, 0x7f80_0001, 0xffc1_2345, 0x0000_8000, 0x0001_8000, 0x807f_ffff]
        var rng = SplitMix(seed: 7)
        for _ in 0..<20000 { patterns.append(UInt32(truncatingIfNeeded: rng.next())) }
        let floats = patterns.flatMap { withUnsafeBytes(of: $0.littleEndian) { Array($0) } }
        let narrow = try Self.run([.bfloat16, .float32], [floats], count: patterns.count) { p, v in p.cast(v[0], v[1]) }
        wrong = 0
        for (index, bits) in patterns.enumerated() {
            let got = UInt16(narrow[2 * index]) | UInt16(narrow[2 * index + 1]) << 8
            let want: UInt16 = bits & 0x7fff_ffff > 0x7f80_0000 ? 0x7fc0 : UInt16((bits &+ 0x7fff &+ (bits >> 16 & 1)) >> 16)
            if got != want { wrong += 1 }
        }
        #expect(wrong == 0, "\(wrong) of \(patterns.count) round wrong")
    }

    @Test("AND, OR and XOR of bool and bytes and NOT of bool: any nonzero byte is true; broadcast and in place")
    func byteLogic() throws {
        var rng = SplitMix(seed: 11)
        let count = 300
        let a = (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next() % 3 == 0 ? 0 : rng.next()) }
        let b = (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next() % 3 == 0 ? 0 : rng.next()) }
        for type in [NeuronDType.bool, .uint8, .int8] {
            for op in [NeuronBinaryOp.and, .or, .xor] {
                let got = try Self.run([type, type, type], [a, b], count: count) { p, v in p.binary(op, v[0], v[1], v[2]) }
                let want = zip(a, b).map { x, y -> UInt8 in
                    let (p, q) = type == .bool ? (UInt8(x != 0 ? 1 : 0), UInt8(y != 0 ? 1 : 0)) : (x, y)
                    return op == .and ? p & q : op == .or ? p | q : p ^ q
                }
                #expect(got == want, "\(type) \(op)")
            }
        }
        let not = try Self.run([.bool, .bool], [a], count: count) { p, v in p.unary(.not, v[0], v[1]) }
        #expect(not == a.map { $0 == 0 ? 1 : 0 })
        // A row broadcast over rows, and an AND written over its own input.
        let slots = Slots([count, count, 10])
        a.withUnsafeBytes { slots.buffers[0].copyMemory(from: $0) }
        b.prefix(10).withUnsafeBytes { slots.buffers[2].copyMemory(from: $0) }
        var program = NeuronProgram()
        let rows = NeuronTensorView.contiguous(slot: 0, dims: [30, 10], dtype: .bool)
        program.binary(.and, rows, rows, NeuronTensorView(slot: 2, dtype: .bool, dims: [30, 10], strides: [0, 1]))
        try slots.run(program)
        let inPlace = Array(slots.buffers[0].prefix(count))
        #expect(inPlace == (0..<count).map { a[$0] != 0 && b[$0 % 10] != 0 ? 1 : 0 })
    }

    @Test("float32 rounds to float16 to nearest even: normals, subnormals, ties, overflow, NaN")
    func halfRounding() throws {
        var floats: [Float] = [0, -0.0, 1, -1, 65504, 65519.996, 65520, 1e9, -1e9, .infinity, -.infinity, .nan,
                               0x1p-24, 0x1p-25, 0x1.8p-25, 0x1p-26, 0x1.002p-14, 0x1.001p0, 0x1.003p0, 0x1.0018p0]
        var state: UInt32 = 99
        for _ in 0..<5000 {
            state = state &* 1_664_525 &+ 1_013_904_223
            // Exponents from 2^-30 to 2^17: subnormal, normal and overflowing halves.
            floats.append(Float(sign: state & 1 == 0 ? .plus : .minus, exponent: Int(state >> 26) % 48 - 30,
                                significand: 1 + Float(state >> 9 & 0x7fff) / 32768))
        }
        let input = floats.flatMap { value in withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) } }
        let out = try Self.run([.float16, .float32], [input], count: floats.count) { p, v in p.cast(v[0], v[1]) }
        for (index, value) in floats.enumerated() {
            let got = UInt16(out[2 * index]) | UInt16(out[2 * index + 1]) << 8
            let want = Float16(value)
            if value.isNaN {
                #expect(Float16(bitPattern: got).isNaN)
            } else {
                #expect(got == want.bitPattern, "\(value): 0x\(String(got, radix: 16)), want 0x\(String(want.bitPattern, radix: 16))")
            }
        }
    }

    @Test("CAST from float32 to each type: toward zero, saturated, NaN to 0; bool is nonzero")
    func castFromFloat() throws {
        let values: [Float] = [-300.7, -129, -1.5, -0.5, 0, 0.5, 1.5, 127.9, 200, 70000, 5e9, 2e19, .nan, .infinity, -.infinity]
        let input = NeuronDType.float32.bytes(values.map(Double.init))
        for type in NeuronDType.allCases where type.computes {   // ISA 1.6's: SmallTypeEngineTests
            let out = try Self.run([type, .float32], [input], count: values.count) { p, v in p.cast(v[0], v[1]) }
            let got = type.values(out)
            for (value, result) in zip(values, got) {
                let d = Double(value)
                let want: Double
                switch type {
                case .float32, .float64: want = d
                case .float16: want = Double(Float16(value))
                case .bfloat16: want = Double(BFloat16.float(BFloat16.bits(value)))
                case .bool: want = value != 0 ? 1 : 0
                default:
                    let (low, high) = Self.range(type)
                    want = d.isNaN ? 0 : Swift.min(Swift.max(d.rounded(.towardZero), low), high)
                }
                #expect(want.isNaN ? result.isNaN : result == want, "\(value) to \(type): \(result), want \(want)")
            }
        }
    }

    /// The range of an integer type, as doubles.
    static func range(_ type: NeuronDType) -> (Double, Double) {
        switch type {
        case .int8: (-128, 127)
        case .uint8: (0, 255)
        case .int16: (-32768, 32767)
        case .uint16: (0, 65535)
        case .int32: (-2_147_483_648, 2_147_483_647)
        case .uint32: (0, 4_294_967_295)
        case .int64: (-0x1p63, 0x1p63)
        case .uint64: (0, 0x1p64)
        default: (0, 1)
        }
    }

    static let integerTypes: [NeuronDType] = [.int8, .uint8, .int16, .uint16, .int32, .uint32, .int64, .uint64]

    /// `value`'s two's complement bits, `size` bytes, little-endian.
    static func raw(_ value: Int64, size: Int) -> [UInt8] {
        (0..<size).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
    }

    /// The little-endian `bytes` as the signed or unsigned value of `type`.
    static func integer(_ bytes: ArraySlice<UInt8>, _ type: NeuronDType) -> Int64 {
        var bits: UInt64 = 0
        for (index, byte) in bytes.enumerated() { bits |= UInt64(byte) << (8 * index) }
        let width = type.size * 8
        if width < 64, [.int8, .int16, .int32].contains(type), bits >> (width - 1) & 1 == 1 {
            bits |= ~0 << width
        }
        return Int64(bitPattern: bits)
    }

    @Test("CAST between integers saturates, or with wrap keeps the low bits")
    func castIntegers() throws {
        let values: [Int64] = [0, 1, -1, 127, 128, -129, 255, 300, 65535, -70000, 1 << 31, -(1 << 40), .max, .min]
        let input = values.flatMap { Self.raw($0, size: 8) }
        for type in Self.integerTypes + [.bool] {
            for wrap in [false, true] {
                let out = try Self.run([type, .int64], [input], count: values.count) { p, v in p.cast(v[0], v[1], wrap: wrap) }
                for (index, value) in values.enumerated() {
                    let got = Self.integer(out[(index * type.size)..<((index + 1) * type.size)], type)
                    let want: Int64
                    if type == .bool {
                        want = value != 0 ? 1 : 0
                    } else if wrap {
                        want = Self.integer(ArraySlice(Self.raw(value, size: type.size)), type)
                    } else {
                        let (low, high) = Self.range(type)
                        want = Double(value) <= low ? Int64(low) : Double(value) >= high && type != .uint64 && type != .int64
                            ? Int64(high) : (type == .uint64 && value < 0 ? 0 : value)
                    }
                    if type == .uint64 && !wrap && value < 0 {
                        #expect(got == 0, "\(value) to uint64")
                    } else {
                        #expect(got == want, "\(value) to \(type)\(wrap ? " (wrap)" : ""): \(got), want \(want)")
                    }
                }
            }
        }
    }

    @Test("integer BINARY of each type wraps as two's complement; / and % by 0 give 0",
          arguments: [NeuronBinaryOp.add, .sub, .mul, .div, .max, .min, .mod, .fmod, .and, .or, .xor, .shl, .shr])
    func integerBinary(_ op: NeuronBinaryOp) throws {
        let xs: [Int64] = [0, 1, -1, 7, -7, 100, -100, 127, -128, 255, 30000, -32768, .max, .min, 5, -5]
        let ys: [Int64] = [3, -3, 0, 2, -2, 7, 9, -1, -1, 1, 65, 3, 2, -1, 70, 64]
        for type in Self.integerTypes {
            let size = type.size, width = Int64(size * 8)
            let a = xs.map { Self.integer(ArraySlice(Self.raw($0, size: size)), type) }
            let b = ys.map { Self.integer(ArraySlice(Self.raw($0, size: size)), type) }
            let out = try Self.run([type, type, type], [a.flatMap { Self.raw($0, size: size) }, b.flatMap { Self.raw($0, size: size) }],
                                   count: xs.count) { p, v in p.binary(op, v[0], v[1], v[2]) }
            let signed = [.int8, .int16, .int32, .int64].contains(type)
            for index in xs.indices {
                let (x, y) = (a[index], b[index])
                let ux = UInt64(bitPattern: x), uy = UInt64(bitPattern: y)
                var want: Int64
                switch op {
                case .add: want = x &+ y
                case .sub: want = x &- y
                case .mul: want = x &* y
                case .and: want = x & y
                case .or: want = x | y
                case .xor: want = x ^ y
                case .max: want = signed ? Swift.max(x, y) : Int64(bitPattern: Swift.max(ux, uy))
                case .min: want = signed ? Swift.min(x, y) : Int64(bitPattern: Swift.min(ux, uy))
                case .shl: want = uy >= UInt64(width) ? 0 : Int64(bitPattern: ux << uy)
                case .shr:
                    if signed { want = uy >= UInt64(width) ? (x < 0 ? -1 : 0) : x >> y }
                    else { want = uy >= UInt64(width) ? 0 : Int64(bitPattern: ux >> uy) }
                case .div, .mod, .fmod:
                    if y == 0 { want = 0 }
                    else if !signed { want = Int64(bitPattern: op == .div ? ux / uy : ux % uy) }
                    else if y == -1 { want = op == .div ? 0 &- x : 0 }
                    else if op == .div { want = x / y }
                    else {
                        want = x % y
                        if op == .mod, want != 0, (want < 0) != (y < 0) { want += y }
                    }
                default: want = 0
                }
                let expected = Self.integer(ArraySlice(Self.raw(want, size: size)), type)
                let got = Self.integer(out[(index * size)..<((index + 1) * size)], type)
                #expect(got == expected, "\(type) \(x) \(op) \(y): \(got), want \(expected)")
            }
        }
    }

    @Test("bool: any nonzero byte is true; AND, OR, XOR and NOT give 0 or 1; integers NOT, NEG and ABS")
    func logic() throws {
        let a: [UInt8] = [0, 0, 1, 1, 2, 255, 0, 7], b: [UInt8] = [0, 1, 0, 1, 0, 255, 9, 0]
        for (op, rule) in [(NeuronBinaryOp.and, { (x: Bool, y: Bool) in x && y }), (.or, { $0 || $1 }), (.xor, { $0 != $1 })] {
            let out = try Self.run([.bool, .bool, .bool], [a, b], count: a.count) { p, v in p.binary(op, v[0], v[1], v[2]) }
            #expect(out == zip(a, b).map { rule($0 != 0, $1 != 0) ? 1 : 0 }, "\(op)")
        }
        let not = try Self.run([.bool, .bool], [a], count: a.count) { p, v in p.unary(.not, v[0], v[1]) }
        #expect(not == a.map { $0 == 0 ? 1 : 0 })
        let xs: [Int8] = [0, 1, -1, 127, -128, 5]
        let raw = xs.map { UInt8(bitPattern: $0) }
        for (op, rule) in [(NeuronUnaryOp.not, { (x: Int8) in ~x }), (.neg, { 0 &- $0 }), (.abs, { $0 < 0 ? 0 &- $0 : $0 })] {
            let out = try Self.run([.int8, .int8], [raw], count: xs.count) { p, v in p.unary(op, v[0], v[1]) }
            #expect(out.map { Int8(bitPattern: $0) } == xs.map(rule), "\(op)")
        }
    }

    @Test("COMPARE: NaN compares false, unsigned and signed compare as themselves")
    func compare() throws {
        let x: [Float] = [1, 2, .nan, -0.0, .infinity, 3], y: [Float] = [2, 2, .nan, 0, 5, .nan]
        let rules: [NeuronCompareOp: (Float, Float) -> Bool] = [.eq: (==), .lt: (<), .le: (<=), .gt: (>), .ge: (>=)]
        for op in NeuronCompareOp.allCases {
            let out = try Self.run([.bool, .float32, .float32], [NeuronDType.float32.bytes(x.map(Double.init)),
                                                                 NeuronDType.float32.bytes(y.map(Double.init))],
                                   count: x.count) { p, v in p.compare(op, v[0], v[1], v[2]) }
            let rule = try #require(rules[op])
            #expect(out == zip(x, y).map { rule($0, $1) ? 1 : 0 }, "\(op)")
        }
        // 2^63 as uint64 is above 1; as int64 (the same bits) below.
        let big = Self.raw(.min, size: 8), one = Self.raw(1, size: 8)
        #expect(try Self.run([.bool, .uint64, .uint64], [big, one], count: 1) { p, v in p.compare(.gt, v[0], v[1], v[2]) } == [1])
        #expect(try Self.run([.bool, .int64, .int64], [big, one], count: 1) { p, v in p.compare(.gt, v[0], v[1], v[2]) } == [0])
    }

    @Test("SELECT picks whole elements of any type, the condition broadcast")
    func select() throws {
        for type in NeuronDType.allCases where type != .bool {
            let a = type.bytes([1, 2, 3, 4, 5, 6]), b = type.bytes([-1, -2, -3, -4, -5, -6].map { type.isFloatingPoint || [.int8, .int16, .int32, .int64].contains(type) ? $0 : -$0 })
            let condition: [UInt8] = [1, 0, 3]
            let out = [UInt8](repeating: 0, count: 6 * type.size)
            let slots = Self.slots([out, condition, a, b])
            var program = NeuronProgram()
            program.select(.contiguous(slot: 0, dims: [2, 3], dtype: type),
                           condition: NeuronTensorView(slot: 1, dtype: .bool, dims: [2, 3], strides: [0, 1]),
                           .contiguous(slot: 2, dims: [2, 3], dtype: type), .contiguous(slot: 3, dims: [2, 3], dtype: type))
            try slots.run(program)
            let got = Self.bytes(slots, 0, count: out.count), size = type.size
            for index in 0..<6 {
                let from = condition[index % 3] != 0 ? a : b
                #expect(got[(index * size)..<((index + 1) * size)] == from[(index * size)..<((index + 1) * size)], "\(type) \(index)")
            }
        }
    }

    @Test("ARGMAX and ARGMIN: the first index of the extreme, or the last; NaN is the extreme")
    func argExtremes() throws {
        // Rows of 5: ties, a NaN, all equal.
        let rows: [[Float]] = [[1, 3, 3, 2, 0], [4, .nan, 9, .nan, 1], [2, 2, 2, 2, 2], [-1, -5, 0, -5, 7]]
        let input = NeuronDType.float32.bytes(rows.flatMap { $0 }.map(Double.init))
        for op in [NeuronReduceOp.argmax, .argmin] {
            for last in [false, true] {
                let slots = Self.slots([[UInt8](repeating: 0, count: 32), input])
                var program = NeuronProgram()
                program.reduce(op, .contiguous(slot: 0, dims: [4, 1], dtype: .int64), .contiguous(slot: 1, dims: [4, 5]), lastIndex: last)
                try slots.run(program)
                let got = NeuronDType.int64.values(Self.bytes(slots, 0, count: 32)).map { Int($0) }
                let want: [Int] = switch (op, last) {
                case (.argmax, false): [1, 1, 0, 4]
                case (.argmax, true): [2, 3, 4, 4]
                case (_, false): [4, 1, 0, 1]
                default: [4, 3, 4, 3]
                }
                #expect(got == want, "\(op) last=\(last)")
            }
        }
    }

    @Test("FMOD is exact against libm, MOD takes the divisor's sign; FLOOR, CEIL and ROUND at the edges")
    func floatRemainders() throws {
        var xs: [Float] = [5.5, -5.5, 5.5, -5.5, 1e30, 0x1p-140, 3, -0.0, 7, .infinity, 2]
        var ys: [Float] = [2, 2, -2, -2, 3.1, 0x1p-149, 0x1p-149, 5, .infinity, 1, 0]
        var state: UInt32 = 5
        for _ in 0..<2000 {
            state = state &* 1_664_525 &+ 1_013_904_223
            xs.append(Float(sign: state & 1 == 0 ? .plus : .minus, exponent: Int(state >> 24) % 120 - 60, significand: 1 + Float(state >> 8 & 0xffff) / 65536))
            state = state &* 1_664_525 &+ 1_013_904_223
            ys.append(Float(sign: state & 1 == 0 ? .plus : .minus, exponent: Int(state >> 24) % 120 - 60, significand: 1 + Float(state >> 8 & 0xffff) / 65536))
        }
        let a = NeuronDType.float32.bytes(xs.map(Double.init)), b = NeuronDType.float32.bytes(ys.map(Double.init))
        let fmod = NeuronDType.float32.values(try Self.run([.float32, .float32, .float32], [a, b], count: xs.count) { p, v in p.binary(.fmod, v[0], v[1], v[2]) })
        let mod = NeuronDType.float32.values(try Self.run([.float32, .float32, .float32], [a, b], count: xs.count) { p, v in p.binary(.mod, v[0], v[1], v[2]) })
        for index in xs.indices {
            let want = Foundation.fmod(xs[index], ys[index])
            let got = Float(fmod[index])
            #expect(want.isNaN ? got.isNaN : got.bitPattern == want.bitPattern, "fmod(\(xs[index]), \(ys[index])) = \(got), want \(want)")
            let m = want != 0 && (want < 0) != (ys[index] < 0) ? want + ys[index] : want
            #expect(m.isNaN ? mod[index].isNaN : Float(mod[index]) == m, "mod(\(xs[index]), \(ys[index]))")
        }
        let edges: [Float] = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999997, 8388607.5, 16777216, -0.0, 1e-40, .nan, .infinity, -.infinity, -3.7]
        for (op, rule) in [(NeuronUnaryOp.floor, { (x: Float) in x.rounded(.down) }), (.ceil, { $0.rounded(.up) }),
                           (.round, { $0.rounded(.toNearestOrEven) })] {
            let out = NeuronDType.float32.values(try Self.run([.float32, .float32], [NeuronDType.float32.bytes(edges.map(Double.init))],
                                                              count: edges.count) { p, v in p.unary(op, v[0], v[1]) })
            for (x, got) in zip(edges, out) {
                let want = rule(x)
                #expect(want.isNaN ? got.isNaN : Float(got).bitPattern == want.bitPattern, "\(op)(\(x)) = \(got), want \(want)")
            }
        }
    }

    /// ISA 1.5: float64 arithmetic in double, against Swift's Double.
    @Test("float64: BINARY exact (FMOD against libm), UNARY within an ulp or two, REDUCE in order")
    func float64() throws {
        var xs: [Double] = [5.5, -5.5, 1e300, 0x1p-1060, 3, -0.0, 7, .infinity, 2, .nan, 1e-310, 0.5, 2.5, -2.5]
        var ys: [Double] = [2, -2, 3.1, 0x1p-1074, 0x1p-1074, 5, .infinity, 1, 0, 1, 3, -0.0, 1e308, 0.1]
        var state: UInt64 = 11
        func random() -> Double {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Double(sign: state >> 63 == 0 ? .plus : .minus, exponent: Int(state >> 40 & 0xff) - 128,
                          significand: 1 + Double(state >> 11 & 0xf_ffff_ffff) / 0x10_0000_0000)
        }
        for _ in 0..<2000 {
            xs.append(random())
            ys.append(random())
        }
        let a = NeuronDType.float64.bytes(xs), b = NeuronDType.float64.bytes(ys)
        let binaries: [(NeuronBinaryOp, (Double, Double) -> Double)] = [
            (.add, +), (.sub, -), (.mul, *), (.div, /),
            (.max, { x, y in x > y || x.isNaN ? x : y }), (.min, { x, y in x < y || x.isNaN ? x : y }),
            (.fmod, { Foundation.fmod($0, $1) }),
            (.mod, { x, y in let r = Foundation.fmod(x, y); return r != 0 && (r < 0) != (y < 0) ? r + y : r }),
        ]
        for (op, rule) in binaries {
            let out = NeuronDType.float64.values(try Self.run([.float64, .float64, .float64], [a, b], count: xs.count) { p, v in p.binary(op, v[0], v[1], v[2]) })
            for index in xs.indices {
                let want = rule(xs[index], ys[index])
                #expect(want.isNaN ? out[index].isNaN : out[index].bitPattern == want.bitPattern,
                        "\(op)(\(xs[index]), \(ys[index])) = \(out[index]), want \(want)")
            }
        }
        let unaries: [(NeuronUnaryOp, (Double) -> Double, ulps: Int)] = [
            (.exp, { Foundation.exp($0) }, 2), (.log, { Foundation.log($0) }, 2), (.sqrt, { $0.squareRoot() }, 0),
            (.rsqrt, { 1 / $0.squareRoot() }, 0), (.neg, { -$0 }, 0), (.abs, { Swift.abs($0) }, 0), (.relu, { $0 > 0 ? $0 : 0 }, 0),   // NaN to 0, as float32's
            (.reciprocal, { 1 / $0 }, 0), (.floor, { $0.rounded(.down) }, 0), (.ceil, { $0.rounded(.up) }, 0),
            (.round, { $0.rounded(.toNearestOrEven) }, 0),
        ]
        // exp's arguments where it is finite and not subnormal; the rest as they are.
        let inputs = xs + [-745, -740, 709.7, 710, 1e-320, -1e-320, 0x1p-1074, 4503599627370495.5, 0.49999999999999994]
        for (op, rule, ulps) in unaries {
            let given = op == .exp ? inputs.map { $0.isFinite && Swift.abs($0) > 700 ? $0.truncatingRemainder(dividingBy: 700) : $0 } : inputs
            let out = NeuronDType.float64.values(try Self.run([.float64, .float64], [NeuronDType.float64.bytes(given)], count: given.count) { p, v in p.unary(op, v[0], v[1]) })
            for (x, got) in zip(given, out) {
                let want = rule(x)
                if want.isNaN || want.isInfinite || want == 0 || ulps == 0 {
                    #expect(want.isNaN ? got.isNaN : got.bitPattern == want.bitPattern, "\(op)(\(x)) = \(got), want \(want)")
                } else {
                    #expect(Swift.abs(got - want) <= Double(ulps) * want.ulp, "\(op)(\(x)) = \(got), want \(want)")
                }
            }
        }
        // REDUCE over rows of 7, first to last.
        let rows = 50, length = 7
        let matrix = Array(xs.filter(\.isFinite).prefix(rows * length))
        for op in [NeuronReduceOp.sum, .mean, .max, .min, .prod] {
            let slots = Self.slots([[UInt8](repeating: 0, count: rows * 8), NeuronDType.float64.bytes(matrix)])
            var program = NeuronProgram()
            program.reduce(op, .contiguous(slot: 0, dims: [UInt32(rows), 1], dtype: .float64),
                           .contiguous(slot: 1, dims: [UInt32(rows), UInt32(length)], dtype: .float64))
            try slots.run(program)
            let got = NeuronDType.float64.values(Self.bytes(slots, 0, count: rows * 8))
            for row in 0..<rows {
                let values = Array(matrix[(row * length)..<(row * length + length)])
                var acc = values[0]
                for x in values.dropFirst() {
                    switch op {
                    case .sum, .mean: acc += x
                    case .max: acc = x > acc ? x : acc
                    case .min: acc = x < acc ? x : acc
                    default: acc *= x
                    }
                }
                if op == .mean { acc /= Double(length) }
                #expect(got[row].bitPattern == acc.bitPattern, "\(op) of row \(row): \(got[row]), want \(acc)")
            }
        }
    }

    /// ISA 1.5: int32 MATMUL wraps (products and sums as two's complement), batched, with a bias, through views.
    @Test("int32 MATMUL wraps as Swift's &* and &+, batched, with a bias, over a transposed view")
    func integerMatmul() throws {
        let (batch, m, k, n) = (2, 3, 5, 4)
        var state: UInt32 = 3
        func next() -> Int32 {
            state = state &* 1_664_525 &+ 1_013_904_223
            return state % 7 == 0 ? Int32.max - Int32(state % 5) : Int32(bitPattern: state) >> 20
        }
        let a = (0..<(batch * m * k)).map { _ in next() }, bt = (0..<(batch * n * k)).map { _ in next() }
        let bias = (0..<n).map { _ in next() }
        func bytes(_ values: [Int32]) -> [UInt8] { values.flatMap { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } } }
        let slots = Self.slots([[UInt8](repeating: 0, count: batch * m * n * 4), bytes(a), bytes(bt), bytes(bias)])
        var program = NeuronProgram()
        // b is given transposed ([batch, n, k]) and read through a swapped view.
        let b = NeuronTensorView.contiguous(slot: 2, dims: [UInt32(batch), UInt32(n), UInt32(k)], dtype: .int32).swapping(1, 2)
        program.matmul(.contiguous(slot: 0, dims: [UInt32(batch), UInt32(m), UInt32(n)], dtype: .int32),
                       .contiguous(slot: 1, dims: [UInt32(batch), UInt32(m), UInt32(k)], dtype: .int32), b,
                       bias: .contiguous(slot: 3, dims: [UInt32(n)], dtype: .int32))
        try slots.run(program)
        let got = NeuronDType.int32.values(Self.bytes(slots, 0, count: batch * m * n * 4)).map { Int32($0) }
        var want: [Int32] = []
        for p in 0..<batch {
            for i in 0..<m {
                for j in 0..<n {
                    var acc = bias[j]
                    for x in 0..<k { acc = acc &+ a[(p * m + i) * k + x] &* bt[(p * n + j) * k + x] }
                    want.append(acc)
                }
            }
        }
        #expect(got == want)
        // int32 with float32, or an int32 bias on a float32 product, is refused.
        var mixed = NeuronProgram()
        mixed.matmul(.contiguous(slot: 0, dims: [2, 2], dtype: .int32), .contiguous(slot: 1, dims: [2, 2]),
                     .contiguous(slot: 2, dims: [2, 2]))
        #expect(throws: NeuronProgramError.self) { try Slots([64, 64, 64]).run(mixed) }
    }

    /// ISA 1.5: SCATTER in order; the last of equal indices wins a SET.
    @Test("SCATTER sets in order or combines (ADD, MUL, MAX, MIN) as each type computes; out of range faults after the earlier ones landed")
    func scatter() throws {
        let indices: [Double] = [2, 0, -1, 2, 1, 2]   // -1 is the last element, 4
        let updates: [Double] = [5, -3, 7, 9, 100, -2]
        let start: [Double] = [1, 2, 3, 4, 6]
        func run(_ op: NeuronScatterOp, _ type: NeuronDType) throws -> [Double] {
            let slots = Self.slots([type.bytes(start), NeuronDType.int64.bytes(indices), type.bytes(updates)])
            var program = NeuronProgram()
            program.scatter(op, .contiguous(slot: 0, dims: [5], dtype: type),
                            indices: .contiguous(slot: 1, dims: [6], dtype: .int64),
                            updates: .contiguous(slot: 2, dims: [6], dtype: type))
            try slots.run(program)
            return type.values(Self.bytes(slots, 0, count: 5 * type.size))
        }
        for type in [NeuronDType.float32, .float64, .int32, .int16] {
            #expect(try run(.set, type) == [-3, 100, -2, 4, 7], "\(type)")
            #expect(try run(.add, type) == [-2, 102, 15, 4, 13], "\(type)")
            #expect(try run(.mul, type) == [-3, 200, -270, 4, 42], "\(type)")
            #expect(try run(.max, type) == [1, 100, 9, 4, 7], "\(type)")
            #expect(try run(.min, type) == [-3, 2, -2, 4, 6], "\(type)")
        }
        // int8 wraps: 2 · 100 = 200 − 256, 3 · 5 · 9 · −2 = −270 + 256.
        #expect(try run(.mul, .int8) == [-3, -56, -14, 4, 42])
        // An index past the end faults; the updates before it stay.
        let slots = Self.slots([NeuronDType.float32.bytes(start), NeuronDType.int32.bytes([0, 5, 1]), NeuronDType.float32.bytes([9, 9, 9])])
        var program = NeuronProgram()
        program.scatter(.set, .contiguous(slot: 0, dims: [5]), indices: .contiguous(slot: 1, dims: [3], dtype: .int32),
                        updates: .contiguous(slot: 2, dims: [3]))
        #expect(throws: NeuronProgramError.self) { try slots.run(program) }
        #expect(NeuronDType.float32.values(Self.bytes(slots, 0, count: 20)) == [9, 2, 3, 4, 6])
    }

    /// ISA 1.7: TOPK against a stable sort in Swift (NaN first, equal
    /// elements by index), over rows read across memory and written across
    /// memory, of float and integer types with ties, signed zeros,
    /// infinities, NaN and the integer types' extremes.
    @Test("TOPK gives each row's first k indices in order: largest or smallest, NaN first, ties by index, any k, strided rows")
    func topK() throws {
        func reference(_ row: [Double], _ k: Int, _ op: NeuronTopKOp) -> [Double] {
            let order = row.indices.sorted { i, j in
                let x = row[i], y = row[j]
                if x.isNaN || y.isNaN { return x.isNaN && y.isNaN ? i < j : x.isNaN }
                if x == y { return i < j }
                return op == .smallest ? x < y : x > y
            }
            return order.prefix(k).map(Double.init)
        }
        var generator = SystemRandomNumberGenerator()
        let pools: [(NeuronDType, [Double])] = [
            (.float32, [-2, -1, -0.0, 0, 0.5, 1, 2, .infinity, -.infinity, .nan, 3.25e-40]),
            (.float64, [-1e300, -1, -0.0, 0, 1, 1e300, .nan, 5e-324]),
            (.float16, [-2, -0.0, 0, 1, 65504, .nan]),
            (.bfloat16, [-3, 0, 1, 2, .infinity, .nan]),
            (.int8, [-128, -1, 0, 1, 127]),
            (.int64, [-0x1p63, -5, 0, 7, 0x1p62]),
            (.uint64, [0, 1, 0x1p63, 0x1p63 + 2048, 0x1p64 - 2048]),
            (.uint8, [0, 1, 200, 255]),
        ]
        var cases = 0
        for (type, pool) in pools {
            for (rows, n) in [(1, 1), (1, 7), (3, 16), (2, 100)] {
                let values = (0..<(rows * n)).map { _ in pool.randomElement(using: &generator) ?? 0 }
                for op in NeuronTopKOp.allCases {
                    for k in Set([1, 2, n / 2 + 1, n].filter { $0 >= 1 && $0 <= n }) {
                        // a held transposed ([n, rows] in memory), out written transposed too.
                        let stored = (0..<(n * rows)).map { values[($0 % rows) * n + $0 / rows] }
                        let slots = Self.slots([[UInt8](repeating: 0xcd, count: rows * k * 8), type.bytes(stored)])
                        var program = NeuronProgram()
                        program.topK(op, NeuronTensorView(slot: 0, dtype: .int64, dims: [UInt32(rows), UInt32(k)],
                                                          strides: [1, UInt64(rows)]),
                                     NeuronTensorView(slot: 1, dtype: type, dims: [UInt32(rows), UInt32(n)],
                                                      strides: [1, UInt64(rows)]))
                        try slots.run(program)
                        let got = NeuronDType.int64.values(Self.bytes(slots, 0, count: rows * k * 8))
                        for row in 0..<rows {
                            let mine = (0..<k).map { got[$0 * rows + row] }
                            // The reference sorts the values as the engine holds them (float16 and bfloat16 rounded).
                            let held = type.values(type.bytes(Array(values[(row * n)..<(row * n + n)])))
                            #expect(mine == reference(held, k, op), "\(type) \(op) k \(k) row \(row) of \(held)")
                        }
                        cases += 1
                    }
                }
            }
        }
        #expect(cases > 100)
        // The output's leading dimensions follow a's; k is at most a's last axis; into int64 only; not of bool.
        func refused(_ what: String, _ out: NeuronTensorView, _ a: NeuronTensorView) {
            var program = NeuronProgram()
            program.topK(.largest, out, a)
            #expect(throws: NeuronProgramError.self, "\(what)") { try Slots([256, 256]).run(program) }
        }
        let a = NeuronTensorView.contiguous(slot: 1, dims: [2, 8])
        refused("k past the axis", .contiguous(slot: 0, dims: [2, 9], dtype: .int64), a)
        refused("rows that differ", .contiguous(slot: 0, dims: [3, 2], dtype: .int64), a)
        refused("a rank that differs", .contiguous(slot: 0, dims: [2], dtype: .int64), a)
        refused("int32 indices", .contiguous(slot: 0, dims: [2, 2], dtype: .int32), a)
        refused("bool rows", .contiguous(slot: 0, dims: [2, 2], dtype: .int64), .contiguous(slot: 1, dims: [2, 8], dtype: .bool))
        refused("float8 rows", .contiguous(slot: 0, dims: [2, 2], dtype: .int64),
                .contiguous(slot: 1, dims: [2, 8], dtype: .float8E4M3FN))
        refused("a scalar", .contiguous(slot: 0, dims: [], dtype: .int64), .contiguous(slot: 1, dims: []))
    }

    @Test("the validator refuses types an instruction does not take")
    func refusals() {
        func refused(_ kind: NeuronProgramError.Kind, _ what: String, sizes: [Int] = [64, 64, 64, 64],
                     _ emit: (inout NeuronProgram) -> Void) {
            var program = NeuronProgram()
            emit(&program)
            do {
                try Slots(sizes).run(program)
                Issue.record("\(what) was accepted")
            } catch {
                #expect(error.kind == kind, "\(what): \(error)")
            }
        }
        let i32 = NeuronTensorView.contiguous(slot: 0, dims: [4], dtype: .int32)
        let f32 = NeuronTensorView.contiguous(slot: 1, dims: [4])
        let bool = NeuronTensorView.contiguous(slot: 2, dims: [4], dtype: .bool)
        let u8 = NeuronTensorView.contiguous(slot: 3, dims: [4], dtype: .uint8)
        refused(.operand, "POW of int32") { $0.binary(.pow, i32, i32, i32) }
        refused(.operand, "AND of float32") { $0.binary(.and, f32, f32, f32) }
        refused(.operand, "NOT of float32") { $0.unary(.not, f32, f32) }
        refused(.operand, "NEG of uint8") { $0.unary(.neg, u8, u8) }
        refused(.operand, "ADD of bool") { $0.binary(.add, bool, bool, bool) }
        refused(.operand, "ADD of int32 and float32") { $0.binary(.add, i32, i32, f32) }
        refused(.operand, "EXP of int32") { $0.unary(.exp, i32, i32) }
        refused(.operand, "COMPARE into float32") { $0.compare(.eq, f32, f32, f32) }
        refused(.operand, "COMPARE of two types") { $0.compare(.eq, bool, f32, i32) }
        refused(.operand, "SELECT on a float32 condition") { $0.select(f32, condition: f32, f32, f32) }
        refused(.operand, "ARGMAX into float32") { $0.reduce(.argmax, .contiguous(slot: 1, dims: [1]), f32) }
        refused(.operand, "SUM with LAST_INDEX") { $0.reduce(.sum, .contiguous(slot: 1, dims: [1]), f32, lastIndex: true) }
        refused(.operand, "SUM of int32") { $0.reduce(.sum, .contiguous(slot: 0, dims: [1], dtype: .int32), i32) }
        let f64 = NeuronTensorView.contiguous(slot: 0, dims: [4], dtype: .float64)
        refused(.operand, "POW of float64") { $0.binary(.pow, f64, f64, f64) }
        refused(.operand, "SIN of float64") { $0.unary(.sin, f64, f64) }
        refused(.operand, "TANH of float64") { $0.unary(.tanh, f64, f64) }
        refused(.operand, "AND of float64") { $0.binary(.and, f64, f64, f64) }
        refused(.operand, "SUM of float64 into float32") { $0.reduce(.sum, .contiguous(slot: 1, dims: [1]), f64) }
        refused(.operand, "SIN of int32") { $0.unary(.sin, i32, i32) }
        refused(.operand, "SCATTER ADD of bool") { $0.scatter(.add, bool, indices: i32, updates: bool) }
        refused(.operand, "SCATTER of float32 updates into int32") { $0.scatter(.set, i32, indices: i32, updates: f32) }
        refused(.operand, "SCATTER with float32 indices") { $0.scatter(.set, f32, indices: f32, updates: f32) }
        refused(.operand, "SCATTER of more updates than indices") {
            $0.scatter(.set, f32, indices: .contiguous(slot: 0, dims: [2], dtype: .int32), updates: f32)
        }
        // 0, the first value past the last type, and 255
        for raw: UInt8 in [0, UInt8(NeuronDType.allCases.count + 1), 255] {
            var program = NeuronProgram()
            program.fill(.contiguous(slot: 0, dims: [4]), value: 0)
            var image = program.image()
            image.withUnsafeMutableBytes { bytes in
                bytes[32 + 2] = raw   // the first descriptor's dtype, after the 32-byte header
            }
            do {
                let slots = Slots([64])
                try NeuronEngine.run(image, slots: slots.buffers)
                Issue.record("dtype \(raw) was accepted")
            } catch {
                #expect(error.kind == .descriptor, "dtype \(raw): \(error)")
            }
        }
    }
}
