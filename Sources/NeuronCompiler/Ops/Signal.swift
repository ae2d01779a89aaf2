import Foundation
import NeuronISA

/// Signal processing: the window functions (folded: they depend only on
/// their size) and DFT as one MATMUL with the transform's matrix.
extension ONNXOps {
    static let signal: [ONNXOp] = [
        window("HannWindow") { n, length in
            let s = sin(Double.pi * n / length)
            return s * s
        },
        window("HammingWindow") { n, length in 25.0 / 46.0 - cos(2 * Double.pi * n / length) * (21.0 / 46.0) },
        window("BlackmanWindow") { n, length in
            0.42 - 0.5 * cos(2 * Double.pi * n / length) + 0.08 * cos(4 * Double.pi * n / length)
        },
        ONNXOp("DFT", takes: [.float32], typedInputs: 1) { l in try l.lowerDFT() },
    ]

    /// A window of `size` (input 0) values f(n, N), N the size (periodic,
    /// the default) or the size - 1 (symmetric), of output_datatype.
    static func window(_ name: String, _ f: @escaping @Sendable (Double, Double) -> Double) -> ONNXOp {
        ONNXOp(name, fold: whenKnown { l, first, _ in
            guard let size = first.integers(), size.count == 1, size[0] >= 1 else {
                throw l.invalid("the size must be one integer of at least 1")
            }
            let length = Double(try l.int("periodic", 1) != 0 ? size[0] : size[0] - 1)
            let type = try GraphReader(directory: nil, opset: l.graph.opset)
                .elementType(Int32(clamping: try l.int("output_datatype", 1)), what: "output_datatype")
            _ = try l.foldedCount([size[0]], what: name)
            return .make(type, [size[0]], (0..<size[0]).map { f(Double($0), length) })
        })
    }
}

extension Lowering {
    /// DFT over `axis` of x [..., N, ..., 1 or 2] (real, or complex as
    /// its last axis): x times the matrix of e^(∓2πikn/L) (L dft_length),
    /// inverse divided by L, onesided keeping the first L/2 + 1 outputs
    /// (or, inverse, taking them and giving L real values).
    func lowerDFT() throws(NeuronCompilerError) {
        let x = try floatTensor(0)
        guard x.rank >= 2, let parts = x.dims.last, parts == 1 || parts == 2 else {
            throw shapeError("the signal \(x.dims) must end in 1 (real) or 2 (complex)")
        }
        let axisValue: Int
        if graph.opset >= 20 {
            axisValue = hasInput(2) ? (try integers(2, what: "axis")).first ?? -2 : -2
        } else {
            axisValue = try int("axis", 1)
        }
        let a = try axis(axisValue, rank: x.rank)
        guard a != x.rank - 1 else { throw invalid("the axis cannot be the last (the complex parts)") }
        let inverse = try int("inverse", 0) != 0, onesided = try int("onesided", 0) != 0
        let n = x.dims[a]
        var length = inverse && onesided ? 2 * (n - 1) : n
        if hasInput(1) {
            guard let given = (try integers(1, what: "dft_length")).first, given >= 1 else { throw invalid("dft_length must be at least 1") }
            length = given
        }
        guard length >= 1 else { throw shapeError("DFT of length \(length)") }
        if onesided && !inverse && parts == 2 { throw unsupported("a one-sided DFT of a complex signal") }
        let outCount = inverse ? length : (onesided ? length / 2 + 1 : length)
        let outParts = inverse && onesided ? 1 : 2
        let rowsIn = n * parts, rowsOut = outCount * outParts
        _ = try foldedCount([rowsIn, rowsOut], what: "the DFT matrix")
        var matrix = [Double](repeating: 0, count: rowsIn * rowsOut)
        let sign = inverse ? 1.0 : -1.0, scale = inverse ? 1 / Double(length) : 1
        for k in 0..<outCount {
            for m in 0..<Swift.min(n, length) {
                if inverse && onesided {
                    // One side of a Hermitian spectrum: its mirror counted twice.
                    guard m <= length / 2 else { continue }
                    let weight = (m == 0 || (length % 2 == 0 && m == length / 2)) ? 1.0 : 2.0
                    let theta = 2 * Double.pi * Double(m * k % length) / Double(length)
                    matrix[(m * parts) * rowsOut + k] += weight * scale * cos(theta)
                    if parts == 2 { matrix[(m * parts + 1) * rowsOut + k] -= weight * scale * sin(theta) }
                    continue
                }
                let theta = sign * 2 * Double.pi * Double(m * k % length) / Double(length)
                let (c, s) = (cos(theta) * scale, sin(theta) * scale)
                // (re + i·im) · (c + i·s)
                matrix[(m * parts) * rowsOut + k * 2] += c
                matrix[(m * parts) * rowsOut + k * 2 + 1] += s
                if parts == 2 {
                    matrix[(m * parts + 1) * rowsOut + k * 2] -= s
                    matrix[(m * parts + 1) * rowsOut + k * 2 + 1] += c
                }
            }
        }
        // The axis next to the parts, the rest in front: [rows, N · parts].
        let others = (0..<(x.rank - 1)).filter { $0 != a }
        let perm = others + [a, x.rank - 1]
        let rows = others.map { x.dims[$0] }.reduce(1, *)
        let flat = try reshapeView(x.permuted(perm), to: [rows, rowsIn])
        let product = try matmul(flat, try weightView(.make(.float32, [rowsIn, rowsOut], matrix), name: "\(current.name)#dft"), cast: false)
        let shaped = try reshapeView(product, to: others.map { x.dims[$0] } + [outCount, outParts])
        var inverted = perm
        for (position, axis) in perm.enumerated() { inverted[axis] = position }
        set(0, .tensor(shaped.permuted(inverted)))
    }
}
