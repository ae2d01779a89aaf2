import CNeuronEngine

/// Element types of the ISA.
public enum NeuronDType: UInt8, Sendable, CaseIterable {
    case float32 = 1, bfloat16 = 2, int32 = 3, int64 = 4
    /// ISA 1.4 (API 1.5).
    case float16 = 5, float64 = 6, int8 = 7, uint8 = 8, int16 = 9, uint16 = 10, uint32 = 11, uint64 = 12, bool = 13

    /// Bytes of one element, as the engine's neuron_dtype_size() says.
    public var size: Int { Int(neuron_dtype_size(UInt32(rawValue))) }

    /// float16, bfloat16, float32 or float64.
    public var isFloatingPoint: Bool { [.float16, .bfloat16, .float32, .float64].contains(self) }

    /// The element types the engine had before ISA 1.4, which every driver runs.
    public var isOriginal: Bool { rawValue <= NeuronDType.int64.rawValue }
}

extension NeuronDType: Codable, CustomStringConvertible {
    static let names: [NeuronDType: String] = [
        .float32: "float32", .bfloat16: "bfloat16", .int32: "int32", .int64: "int64",
        .float16: "float16", .float64: "float64", .int8: "int8", .uint8: "uint8", .int16: "int16",
        .uint16: "uint16", .uint32: "uint32", .uint64: "uint64", .bool: "bool",
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
                }
            }
        }
    }

    /// Little-endian bytes of `values` as this type: floats rounded to
    /// nearest (bfloat16 as the engine rounds), integers toward zero and
    /// clamped to the type's range (NaN to 0), bool nonzero as true.
    public func bytes(_ values: [Double]) -> [UInt8] {
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
            }
        }
        return out
    }
}
