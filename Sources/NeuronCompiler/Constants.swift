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
