import NeuronISA

/// Making and reading constants at compile time, for folding
/// (Pipeline/Folding.swift) and for the constants lowering adds (scalars,
/// masks, converted weights): values go in as Double and are rounded once
/// to the element type.
extension ConstantTensor {
    /// A tensor of `type` from Double values (`NeuronDType.bytes`: floats
    /// rounded to nearest, integers toward zero and clamped).
    static func make(_ type: ElementType, _ shape: [Int], _ values: [Double]) -> ConstantTensor {
        ConstantTensor(type: type, shape: shape, bytes: type.bytes(values))
    }

    /// This tensor converted to `target` as CAST with `castFlags` converts
    /// it on a NeuronCore: integers to integers keep their low bits under
    /// NEURON_CAST_WRAP (ONNX's Cast), all else goes by `NeuronDType.bytes`.
    func converted(to target: ElementType, castFlags: UInt16 = 0) -> ConstantTensor {
        guard target != type else { return self }
        let wrap = castFlags & NeuronProgram.castWrap != 0
        guard wrap, type.isInteger, target.isInteger else {
            return ConstantTensor(type: target, shape: shape, bytes: target.bytes(doubles(), castFlags: castFlags))
        }
        var out: [UInt8] = []
        out.reserveCapacity(count * target.size)
        for index in 0..<count {
            let bits = target.extendedBits(integerBits(index))
            withUnsafeBytes(of: bits.littleEndian) { out += $0.prefix(target.size) }
        }
        return ConstantTensor(type: target, shape: shape, bytes: out)
    }

    /// Element `index` of an integer tensor, sign- or zero-extended to 64 bits.
    func integerBits(_ index: Int) -> UInt64 {
        let size = type.size, at = index * size
        var raw: UInt64 = 0
        for byte in 0..<size { raw |= UInt64(bytes[at + byte]) << UInt64(8 * byte) }
        return type.extendedBits(raw)
    }

    static func integers(_ values: [Int], type: ElementType = .int64, shape: [Int]? = nil) -> ConstantTensor {
        make(type, shape ?? [values.count], values.map(Double.init))
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
