import CNeuronEngine

/// Element types of the ISA.
public enum NeuronDType: UInt8, Sendable, CaseIterable {
    case float32 = 1, bfloat16 = 2, int32 = 3, int64 = 4
    /// ISA 1.4 (API 1.5).
    case float16 = 5, float64 = 6, int8 = 7, uint8 = 8, int16 = 9, uint16 = 10, uint32 = 11, uint64 = 12, bool = 13
    /// ISA 1.6 (API 1.7): storage types of one byte per element, moved and
    /// converted (CAST) but computed by nothing (neuron_isa.h).
    case float8E4M3FN = 14, float8E4M3FNUZ = 15, float8E5M2 = 16, float8E5M2FNUZ = 17, float8E8M0 = 18
    case float4E2M1 = 19, int4 = 20, uint4 = 21, int2 = 22, uint2 = 23

    /// Bytes of one element, as the engine's neuron_dtype_size() says.
    public var size: Int { Int(neuron_dtype_size(UInt32(rawValue))) }

    /// float16, bfloat16, float32 or float64.
    public var isFloatingPoint: Bool { [.float16, .bfloat16, .float32, .float64].contains(self) }

    /// The element types the engine had before ISA 1.4, which every driver runs.
    public var isOriginal: Bool { rawValue <= NeuronDType.int64.rawValue }

    /// The integer types, of 2 to 64 bits (not bool).
    public var isInteger: Bool { !isFloatingPoint && !isSmallFloat && self != .bool }

    /// The signed integer types.
    public var isSigned: Bool { [.int8, .int16, .int32, .int64, .int4, .int2].contains(self) }

    /// Bits of a value: 4 and 2 for the sub-byte integers and float4, else the size's.
    public var bitWidth: Int {
        switch self {
        case .int4, .uint4, .float4E2M1: return 4
        case .int2, .uint2: return 2
        default: return size * 8
        }
    }

    /// The low `bitWidth` bits of `raw` as a 64-bit value of this type:
    /// sign-extended for the signed integers, zero-extended for the rest
    /// (the one place a narrow integer's sign is restored).
    public func extendedBits(_ raw: UInt64) -> UInt64 {
        let width = UInt64(bitWidth)
        guard width < 64 else { return raw }
        let low = raw & ((1 << width) - 1)
        guard isSigned, low & (1 << (width - 1)) != 0 else { return low }
        return low | ~((1 << width) - 1)
    }

    /// ISA 1.6's float8 and float4 types.
    public var isSmallFloat: Bool { (NeuronDType.float8E4M3FN.rawValue...NeuronDType.float4E2M1.rawValue).contains(rawValue) }

    /// The float8 types (the small floats but float4).
    public var isFloat8: Bool { isSmallFloat && bitWidth == 8 }

    /// ISA 1.6's four- and two-bit integers (one per byte).
    public var isSubByteInteger: Bool { [.int4, .uint4, .int2, .uint2].contains(self) }

    /// Whether any instruction computes this type (ISA 1.6's storage types
    /// are only moved and converted).
    public var computes: Bool { rawValue < NeuronDType.float8E4M3FN.rawValue }

    /// The type .npy files carry this one as: numpy has no bfloat16, float8,
    /// float4 or sub-byte integers, so the floats travel as float32 and the
    /// integers as int8 or uint8, exactly.
    public var npyCarrier: NeuronDType {
        switch self {
        case .bfloat16: return .float32
        case _ where isSmallFloat: return .float32
        case .int4, .int2: return .int8
        case .uint4, .uint2: return .uint8
        default: return self
        }
    }
}

extension NeuronDType: Codable, CustomStringConvertible {
    static let names: [NeuronDType: String] = [
        .float32: "float32", .bfloat16: "bfloat16", .int32: "int32", .int64: "int64",
        .float16: "float16", .float64: "float64", .int8: "int8", .uint8: "uint8", .int16: "int16",
        .uint16: "uint16", .uint32: "uint32", .uint64: "uint64", .bool: "bool",
        // ml_dtypes' names, as numpy users know them
        .float8E4M3FN: "float8_e4m3fn", .float8E4M3FNUZ: "float8_e4m3fnuz", .float8E5M2: "float8_e5m2",
        .float8E5M2FNUZ: "float8_e5m2fnuz", .float8E8M0: "float8_e8m0fnu", .float4E2M1: "float4_e2m1fn",
        .int4: "int4", .uint4: "uint4", .int2: "int2", .uint2: "uint2",
    ]

    /// "float32", "bfloat16", "int8", "bool", ... (as NEFF metadata has it,
    /// and as ONNX and numpy name them).
    public var name: String { Self.names[self] ?? "unknown" }
    public var description: String { name }

    public init?(name: String) {
        guard let match = Self.names.first(where: { $0.value == name })?.key else { return nil }
        self = match
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let match = NeuronDType(name: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                                    debugDescription: "unknown dtype \(text)"))
        }
        self = match
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(name)
    }
}

/// bfloat16, converted as the engine converts it (neuron_bf16_from_f32_bits
/// in neuron_engine.h): round to nearest with ties to even, every NaN to
/// the quiet NaN 0x7fc0; widening is exact.
public enum BFloat16 {
    /// The bfloat16 bits nearest `value`.
    public static func bits(_ value: Float) -> UInt16 { neuron_bf16_from_f32_bits(value.bitPattern) }

    /// The float32 that bfloat16 `bits` stand for.
    public static func float(_ bits: UInt16) -> Float { Float(bitPattern: neuron_f32_bits_from_bf16(bits)) }
}

extension NeuronDType {
    /// The elements of little-endian `bytes` of this type, as Doubles:
    /// exact for every type but int64 and uint64 beyond 2^53; bool as 0 or 1.
    public func values(_ bytes: [UInt8]) -> [Double] {
        let count = bytes.count / size
        return bytes.withUnsafeBytes { raw in
            (0..<count).map { index in
                let at = index * size
                switch self {
                case .float32: return Double(Float(bitPattern: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
                case .bfloat16: return Double(BFloat16.float(raw.loadUnaligned(fromByteOffset: at, as: UInt16.self)))
                case .float16: return Double(Float16(bitPattern: raw.loadUnaligned(fromByteOffset: at, as: UInt16.self)))
                case .float64: return Double(bitPattern: raw.loadUnaligned(fromByteOffset: at, as: UInt64.self))
                case .int8: return Double(raw.loadUnaligned(fromByteOffset: at, as: Int8.self))
                case .uint8: return Double(raw.loadUnaligned(fromByteOffset: at, as: UInt8.self))
                case .int16: return Double(raw.loadUnaligned(fromByteOffset: at, as: Int16.self))
                case .uint16: return Double(raw.loadUnaligned(fromByteOffset: at, as: UInt16.self))
                case .int32: return Double(raw.loadUnaligned(fromByteOffset: at, as: Int32.self))
                case .uint32: return Double(raw.loadUnaligned(fromByteOffset: at, as: UInt32.self))
                case .int64: return Double(raw.loadUnaligned(fromByteOffset: at, as: Int64.self))
                case .uint64: return Double(raw.loadUnaligned(fromByteOffset: at, as: UInt64.self))
                case .bool: return raw.loadUnaligned(fromByteOffset: at, as: UInt8.self) != 0 ? 1 : 0
                case .float8E4M3FN, .float8E4M3FNUZ, .float8E5M2, .float8E5M2FNUZ, .float8E8M0, .float4E2M1:
                    let code = raw.loadUnaligned(fromByteOffset: at, as: UInt8.self)
                    return Double(Float(bitPattern: neuron_f32_bits_from_small(UInt32(rawValue), UInt32(code))))
                case .int4, .uint4, .int2, .uint2:
                    let value = extendedBits(UInt64(raw.loadUnaligned(fromByteOffset: at, as: UInt8.self)))
                    return isSigned ? Double(Int64(bitPattern: value)) : Double(value)
                }
            }
        }
    }

    /// Little-endian bytes of `values` as this type, as the engine's CAST
    /// converts (`castFlags`, NEURON_CAST_*, as its flags): floats rounded
    /// to nearest (bfloat16, float8 and float4 as the engine rounds),
    /// integers toward zero and clamped to the type's range (NaN to 0; into
    /// the four- and two-bit types, their low bits), bool nonzero as true.
    public func bytes(_ values: [Double], castFlags: UInt16 = 0) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(values.count * size)
        func append<T>(_ value: T) { withUnsafeBytes(of: value) { out += $0 } }
        func integer<T: FixedWidthInteger>(_ value: Double, _: T.Type) -> T {
            guard !value.isNaN else { return 0 }
            if value <= Double(T.min) { return T.min }
            if value >= Double(T.max) { return T.max }
            return T(value.rounded(.towardZero))
        }
        for value in values {
            switch self {
            case .float32: append(Float(value).bitPattern.littleEndian)
            case .bfloat16: append(BFloat16.bits(Float(value)).littleEndian)
            case .float16: append(Float16(value).bitPattern.littleEndian)
            case .float64: append(value.bitPattern.littleEndian)
            case .int8: append(integer(value, Int8.self))
            case .uint8: append(integer(value, UInt8.self))
            case .int16: append(integer(value, Int16.self).littleEndian)
            case .uint16: append(integer(value, UInt16.self).littleEndian)
            case .int32: append(integer(value, Int32.self).littleEndian)
            case .uint32: append(integer(value, UInt32.self).littleEndian)
            case .int64: append(integer(value, Int64.self).littleEndian)
            case .uint64: append(integer(value, UInt64.self).littleEndian)
            case .bool: append(UInt8(value != 0 ? 1 : 0))
            case .float8E8M0: append(UInt8(truncatingIfNeeded: neuron_e8m0_from_f32_bits(Float(value).bitPattern, UInt32(castFlags))))
            case .float8E4M3FN, .float8E4M3FNUZ, .float8E5M2, .float8E5M2FNUZ, .float4E2M1:
                let saturate: Int32 = castFlags & UInt16(NEURON_CAST_NO_SATURATE) == 0 ? 1 : 0
                append(UInt8(truncatingIfNeeded: neuron_small_from_f64_bits(UInt32(rawValue), value.bitPattern, saturate)))
            case .int4, .uint4, .int2, .uint2:
                // toward zero, then the low bits (NaN and beyond 2^63 are 0)
                let whole = value.rounded(.towardZero)
                let wide = whole > -0x1p63 && whole < 0x1p63 ? Int64(whole) : 0
                append(UInt8(truncatingIfNeeded: extendedBits(UInt64(bitPattern: wide))))
            }
        }
        return out
    }
}
