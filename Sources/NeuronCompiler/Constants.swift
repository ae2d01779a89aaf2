import NeuronISA

/// Making and reading constants at compile time, for folding
/// (Pipeline/Folding.swift) and for the constants lowering adds (scalars,
/// masks, converted weights): values go in as Double and are rounded once
/// to the element type.
extension ConstantTensor {
    /// A tensor of `type` from Double values (integers truncate toward zero).
    static func make(_ type: ElementType, _ shape: [Int], _ values: [Double]) -> ConstantTensor {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(values.count * type.size)
        func append<T>(_ value: T) { withUnsafeBytes(of: value) { bytes += $0 } }
        for value in values {
            switch type {
            case .float32: append(Float(value).bitPattern.littleEndian)
            case .float64: append(value.bitPattern.littleEndian)
            case .float16: append(halfBits(Float(value)))
            case .bfloat16: append(BFloat16.bits(Float(value)))
            case .int8: append(Int8(clamping: integer(value)))
            case .uint8: append(UInt8(clamping: integer(value)))
            case .bool: append(UInt8(value != 0 ? 1 : 0))
            case .int16: append(Int16(clamping: integer(value)).littleEndian)
            case .uint16: append(UInt16(clamping: integer(value)).littleEndian)
            case .int32: append(Int32(clamping: integer(value)).littleEndian)
            case .uint32: append(UInt32(clamping: integer(value)).littleEndian)
            case .int64: append(Int64(integer(value)).littleEndian)
            case .uint64: append(UInt64(clamping: integer(value)).littleEndian)
            }
        }
        return ConstantTensor(type: type, shape: shape, bytes: bytes)
    }

    static func integers(_ values: [Int], type: ElementType = .int64, shape: [Int]? = nil) -> ConstantTensor {
        make(type, shape ?? [values.count], values.map(Double.init))
    }

    private static func integer(_ value: Double) -> Int {
        guard value.isFinite else { return 0 }
        return Int(max(-9.2e18, min(9.2e18, value.rounded(.towardZero))))
    }

    static func halfBits(_ value: Float) -> UInt16 {
        Float16Bits.half(value)
    }

    /// The element at row-major `index` of each axis, for gathers and slices.
    func element(_ index: Int) -> [UInt8] {
        Array(bytes[(index * type.size)..<((index + 1) * type.size)])
    }

    /// Elements picked by row-major source indices.
    func picking(_ indices: [Int], shape: [Int]) -> ConstantTensor {
        var out: [UInt8] = []
        out.reserveCapacity(indices.count * type.size)
        for index in indices { out += bytes[(index * type.size)..<((index + 1) * type.size)] }
        return ConstantTensor(type: type, shape: shape, bytes: out)
    }
}

extension Float16Bits {
    /// Float to IEEE half, rounding to nearest even.
    static func half(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        let sign = UInt16((bits >> 16) & 0x8000)
        if value.isNaN { return sign | 0x7e00 }
        let magnitude = abs(value)
        if magnitude >= 65520 { return sign | 0x7c00 }
        if magnitude < Float(sign: .plus, exponent: -14, significand: 1) {
            let scaled = (magnitude * Float(1 << 24)).rounded(.toNearestOrEven)
            return sign | UInt16(scaled)
        }
        let exponent = Int((bits >> 23) & 0xff) - 127 + 15
        var mantissa = (bits & 0x7f_ffff) >> 13
        let rest = bits & 0x1fff
        var result = UInt32(exponent) << 10 | mantissa
        if rest > 0x1000 || (rest == 0x1000 && (mantissa & 1) == 1) {
            result += 1
            mantissa += 1
        }
        return sign | UInt16(result)
    }
}

/// Row-major multi-indices over `shape`, with a callback per element.
func forEachIndex(_ shape: [Int], _ body: ([Int]) -> Void) {
    let count = shape.reduce(1, *)
    guard count > 0 else { return }
    var index = [Int](repeating: 0, count: shape.count)
    for _ in 0..<count {
        body(index)
        var axis = shape.count - 1
        while axis >= 0 {
            index[axis] += 1
            if index[axis] < shape[axis] { break }
            index[axis] = 0
            axis -= 1
        }
    }
}

/// Flat index of `index` in a row-major `shape`, broadcasting (size-1
/// axes and missing leading axes read element 0).
func broadcastIndex(_ index: [Int], into shape: [Int]) -> Int {
    var flat = 0
    let lead = index.count - shape.count
    for axis in 0..<shape.count {
        let i = shape[axis] == 1 ? 0 : index[lead + axis]
        flat = flat * shape[axis] + i
    }
    return flat
}
