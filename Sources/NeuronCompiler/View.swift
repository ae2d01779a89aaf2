import NeuronISA

/// A strided view of a compiler buffer: what an instruction operand
/// names before buffers have addresses. Offsets and strides count
/// elements of `type`.
struct View: Equatable {
    var buffer: Int
    var type: NeuronDType
    var offset: Int
    var dims: [Int]
    var strides: [Int]

    init(buffer: Int, type: NeuronDType, offset: Int = 0, dims: [Int], strides: [Int]? = nil) {
        self.buffer = buffer
        self.type = type
        self.offset = offset
        self.dims = dims
        self.strides = strides ?? View.rowMajor(dims)
    }

    static func rowMajor(_ dims: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: dims.count)
        var step = 1
        for axis in dims.indices.reversed() {
            strides[axis] = step
            step *= dims[axis]
        }
        return strides
    }

    var count: Int { dims.reduce(1, *) }
    var rank: Int { dims.count }

    /// Row-major and dense: a reshape keeps its elements in place.
    var isContiguous: Bool {
        zip(dims, zip(strides, View.rowMajor(dims))).allSatisfy { dim, pair in dim == 1 || pair.0 == pair.1 }
    }

    func permuted(_ perm: [Int]) -> View {
        var view = self
        view.dims = perm.map { dims[$0] }
        view.strides = perm.map { strides[$0] }
        return view
    }

    /// The same elements with new dims, when the view is contiguous.
    func reshaped(_ newDims: [Int]) -> View? {
        guard isContiguous else { return nil }
        return View(buffer: buffer, type: type, offset: offset, dims: newDims)
    }

    /// Numpy broadcasting to `target` (aligned on the right): size-1 axes
    /// and missing leading axes get stride 0.
    func broadcast(to target: [Int]) -> View? {
        guard target.count >= rank else { return nil }
        var newStrides = [Int](repeating: 0, count: target.count)
        let lead = target.count - rank
        for axis in 0..<rank {
            if dims[axis] == target[lead + axis] {
                newStrides[lead + axis] = dims[axis] == 1 ? 0 : strides[axis]
            } else if dims[axis] != 1 {
                return nil
            }
        }
        var view = self
        view.dims = target
        view.strides = newStrides
        return view
    }

    /// The engine's descriptor once buffer `buffer` sits at element
    /// `base` of slot `slot`.
    func descriptor(slot: Int, base: Int) -> NeuronTensorView {
        NeuronTensorView(slot: slot, dtype: type, offset: UInt64(base + offset), dims: dims.map { UInt32($0) },
                         strides: strides.map { UInt64($0) })
    }
}

/// Numpy broadcasting of two shapes, or nil.
func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int]? {
    let rank = max(a.count, b.count)
    var out: [Int] = []
    for axis in 0..<rank {
        let x = axis - (rank - a.count) >= 0 ? a[axis - (rank - a.count)] : 1
        let y = axis - (rank - b.count) >= 0 ? b[axis - (rank - b.count)] : 1
        guard x == y || x == 1 || y == 1 else { return nil }
        out.append(x == 1 ? y : x)
    }
    return out
}
