import CNeuronEngine

/// Weight layouts the engine reads (docs/isa.md): the packed direct
/// convolution form, Winograd's transformed weights, and MATMUL's panels.
extension NeuronProgram {
    /// Columns per panel of `matmul(bPanels: true)`'s B.
    public static let matmulPanel = Int(NEURON_MATMUL_PANEL)

    /// A matmul's B `[K, N]` (row-major) in the layout
    /// `matmul(bPanels: true)` reads: `[ceil(N/32), K, 32]`, column `n`
    /// of row `k` at `[n / 32][k][n % 32]`, and `pad` in the lanes past N.
    /// Nil when `weights` does not hold `k` by `n`.
    public static func panelMatmulWeights(_ weights: [Float], k: Int, n: Int, pad: Float = 0) -> [Float]? {
        guard k > 0, n > 0, weights.count == k * n else { return nil }
        let width = matmulPanel, panels = (n + width - 1) / width
        var laid = [Float](repeating: pad, count: panels * k * width)
        for row in 0..<k {
            for column in 0..<n { laid[(column / width * k + row) * width + column % width] = weights[row * n + column] }
        }
        return laid
    }

    /// A matmul's B `[K, N]` (row-major, bfloat16 bits) in the layout
    /// `matmul(bf16Pairs: true, bPanels: true)` reads (ISA 1.14):
    /// `[ceil(N/32), ceil(K/2), 64]`, element (k, n) at
    /// `[n / 32][k / 2][2·(n % 32) + k % 2]`, `pad` in the lanes past N and
    /// in the last pair's second half when K is odd. Nil when `weights`
    /// does not hold `k` by `n`.
    public static func pairPanelMatmulWeights(_ weights: [UInt16], k: Int, n: Int, pad: UInt16 = 0) -> [UInt16]? {
        guard k > 0, n > 0, weights.count == k * n else { return nil }
        let width = matmulPanel, panels = (n + width - 1) / width, pairs = (k + 1) / 2
        var laid = [UInt16](repeating: pad, count: panels * pairs * 2 * width)
        for row in 0..<k {
            for column in 0..<n {
                laid[(column / width * pairs + row / 2) * 2 * width + 2 * (column % width) + row % 2] = weights[row * n + column]
            }
        }
        return laid
    }

    /// Output channels per block of the packed convolution weights.
    public static let convPackRows = Int(NEURON_CONV_PACK_ROWS)

    /// Convolution weights `[Co, Ci, Kh, Kw]` (row-major) in the layout
    /// `conv2d(packedWeights: true)` reads: `[ceil(Co/6), Ci, Kh, Kw, 6]`,
    /// output channel `co` in lane `co % 6` of block `co / 6`, and `pad` in
    /// the lanes past Co. Nil when `weights` does not hold `dims`.
    public static func packConvWeights(_ weights: [Float], dims: [Int], pad: Float = 0) -> [Float]? {
        guard dims.count == 4, dims.allSatisfy({ $0 > 0 }), weights.count == dims.reduce(1, *) else { return nil }
        let rows = convPackRows, blocks = (dims[0] + rows - 1) / rows, k = dims[1] * dims[2] * dims[3]
        var packed = [Float](repeating: pad, count: blocks * k * rows)
        for co in 0..<dims[0] {
            let base = (co / rows) * k * rows + co % rows
            for j in 0..<k { packed[base + j * rows] = weights[co * k + j] }
        }
        return packed
    }

    /// 3x3 convolution weights `[Co, Ci, 3, 3]` (row-major) transformed for
    /// `conv2d(winograd: true)`: U = G g Gᵀ per output and input channel,
    /// for Winograd's F(2x2, 3x3) with `tile` 2 (G = [[1, 0, 0], [½, ½, ½],
    /// [½, -½, ½], [0, 0, 1]]) or F(4x4, 3x3) with `tile` 4 (G = [[¼, 0, 0],
    /// [-⅙, -⅙, -⅙], [-⅙, ⅙, -⅙], [1/24, 1/12, ⅙], [1/24, -1/12, ⅙],
    /// [0, 0, 1]]), computed in double and rounded once, laid out
    /// `[a², ceil(Co/6), Ci, 6]` (a = tile + 2) with element ξ = a i + j
    /// of U first, output channel `co` in lane `co % 6`, and `pad` in the
    /// lanes past Co. Nil when `weights` is not `dims` or `tile` is
    /// neither 2 nor 4.
    public static func winogradConvWeights(_ weights: [Float], dims: [Int], pad: Float = 0,
                                           tile: Int = 2) -> [Float]? {
        guard dims.count == 4, dims[0] > 0, dims[1] > 0, dims[2] == 3, dims[3] == 3, tile == 2 || tile == 4,
              weights.count == dims.reduce(1, *) else { return nil }
        let rows = convPackRows, co = dims[0], ci = dims[1], blocks = (co + rows - 1) / rows
        let sixth: Double = 1.0 / 6, twelfth: Double = 1.0 / 12, twentyFourth: Double = 1.0 / 24
        let g2: [[Double]] = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]
        let g4: [[Double]] = [[0.25, 0, 0], [-sixth, -sixth, -sixth], [-sixth, sixth, -sixth],
                              [twentyFourth, twelfth, sixth], [twentyFourth, -twelfth, sixth], [0, 0, 1]]
        let g = tile == 2 ? g2 : g4
        let a = tile + 2
        var out = [Float](repeating: pad, count: a * a * blocks * ci * rows)
        for o in 0..<co {
            for c in 0..<ci {
                let w = (0..<9).map { Double(weights[(o * ci + c) * 9 + $0]) }
                for i in 0..<a {
                    for j in 0..<a {
                        var u = 0.0
                        for k in 0..<3 { for l in 0..<3 { u += g[i][k] * w[k * 3 + l] * g[j][l] } }
                        out[(((i * a + j) * blocks + o / rows) * ci + c) * rows + o % rows] = Float(u)
                    }
                }
            }
        }
        return out
    }
}
