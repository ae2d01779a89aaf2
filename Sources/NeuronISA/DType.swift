import CNeuronEngine

/// Element types of the ISA.
public enum NeuronDType: UInt8, Sendable {
    case float32 = 1, bfloat16 = 2, int32 = 3, int64 = 4

    public var size: Int {
        switch self {
        case .float32, .int32: 4
        case .bfloat16: 2
        case .int64: 8
        }
    }
}

extension NeuronDType: Codable, CustomStringConvertible {
    static let names: [NeuronDType: String] = [.float32: "float32", .bfloat16: "bfloat16",
                                               .int32: "int32", .int64: "int64"]

    /// "float32", "bfloat16", "int32" or "int64" (as NEFF metadata has it).
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
