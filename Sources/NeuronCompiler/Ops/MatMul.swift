import NeuronISA
import NeuronNEFF

/// Matrix multiplications: one MATMUL each (batches broadcast or folded
/// into rows), operands in bfloat16 under --auto-cast.
extension ONNXOps {
    static let matmul: [ONNXOp] = [
        // A third input is a bias Fusion folded in from an Add.
        ONNXOp("MatMul", takes: [.float32]) { l in
            l.set(0, .tensor(try l.matmul(try l.floatTensor(0), try l.floatTensor(1),
                                          bias: l.hasInput(2) ? try l.floatTensor(2) : nil)))
        },
        ONNXOp("Gemm", takes: [.float32]) { l in try l.lowerGemm() },
    ]
}

extension Lowering {
    /// out = a x b with numpy's matmul rules (1-D operands, broadcast batches).
    func matmul(_ a: View, _ b: View, bias: View? = nil, cast: Bool = true, relu: Bool = false, clamp: Float? = nil)
        throws(NeuronCompilerError) -> View {
        guard a.rank >= 1, b.rank >= 1 else {
            throw shapeError("matmul of \(a.dims) and \(b.dims): both operands need at least one dimension")
        }
        var x = a, y = b
        let squeezeM = x.rank == 1, squeezeN = y.rank == 1
        if squeezeM { x = View(buffer: x.buffer, type: x.type, offset: x.offset, dims: [1] + x.dims, strides: [0] + x.strides) }
        if squeezeN { y = View(buffer: y.buffer, type: y.type, offset: y.offset, dims: y.dims + [1], strides: y.strides + [0]) }
        // Constant weights read across their rows (x · W^T: an LSTM's or a
        // Gemm's transposed weights) are laid out in rows here, once, rather
        // than copied into rows by the engine on every run.
        if y.buffer == 0, !squeezeN, y.strides.last != 1, !zip(y.dims, y.strides).contains(where: { $0.0 > 1 && $0.1 == 0 }) {
            y = contiguousWeight(y)
        }
        let m = x.dims[x.rank - 2], k = x.dims[x.rank - 1], n = y.dims[y.rank - 1]
        guard y.dims[y.rank - 2] == k else {
            throw shapeError("matmul of \(a.dims) and \(b.dims): inner dimensions \(k) and \(y.dims[y.rank - 2]) differ")
        }
        guard let batch = broadcastShape(Array(x.dims.dropLast(2)), Array(y.dims.dropLast(2))) else {
            throw shapeError("matmul of \(a.dims) and \(b.dims): batch dimensions do not broadcast")
        }
        guard let batchCount = NEFFTensor.elementCount(of: batch) else {
            throw shapeError("matmul of \(a.dims) and \(b.dims): the batch \(batch) is too large")
        }
        var outDims = batch + [m, n]
        var out: View
        // float32, or int32 from int32 (ISA 1.5, wrapping).
        let resultType: NeuronDType = x.type == .int32 ? .int32 : .float32
        if batchCount == 1 {
            let x2 = View(buffer: x.buffer, type: x.type, offset: x.offset, dims: [m, k],
                          strides: Array(x.strides.suffix(2)))
            let y2 = View(buffer: y.buffer, type: y.type, offset: y.offset, dims: [k, n],
                          strides: Array(y.strides.suffix(2)))
            out = try temp(resultType, [m, n])
            emitMatmul(out, x2, y2, bias: bias, cast: cast, relu: relu, clamp: clamp)
        } else if y.rank == 2, let flat = x.reshaped([batchCount * m, k]), x.dims.dropLast(2).elementsEqual(batch) {
            // A's batch folds into its rows.
            out = try temp(resultType, [batchCount * m, n])
            emitMatmul(out, flat, y, bias: bias, cast: cast, relu: relu, clamp: clamp)
        } else {
            guard let xb = x.broadcast(to: batch + [m, k]), let yb = y.broadcast(to: batch + [k, n]) else {
                throw shapeError("matmul of \(a.dims) and \(b.dims): batch dimensions do not broadcast")
            }
            let x3 = contiguous(xb).reshaped([batchCount, m, k]) ?? xb
            let y3 = contiguous(yb).reshaped([batchCount, k, n]) ?? yb
            out = try temp(resultType, [batchCount, m, n])
            emit(.matmul(bias: bias != nil, pairs: pairs(x3, y3, cast), relu: relu, clamp: clamp), [out] + castOperands(x3, y3, cast) + (bias.map { [$0] } ?? []))
        }
        if squeezeN { outDims.remove(at: outDims.count - 1) }
        if squeezeM { outDims.remove(at: outDims.count - (squeezeN ? 1 : 2)) }
        guard outDims.count <= 6, let result = out.reshaped(outDims) else {
            throw shapeError("matmul result \(outDims) has more than 6 dimensions")
        }
        return result
    }

    /// One MATMUL of 2-D `a` and `b`: in bfloat16 pairs (`pairs`), or,
    /// for constant float32 weights of at least 32 columns that the
    /// padding of the last panel grows by a quarter at most, with B in
    /// panels (ISA 1.11): the same bits, and weights that come from memory
    /// stream in order (a convolution over 3x3 positions, 1x1344x192 by
    /// 9 rows: about twice as fast).
    ///
    /// In pairs, constant weights of an even K and as many columns go in
    /// panels of bf16 pairs (ISA 1.14): the engine then reads them in
    /// place, where it otherwise packs them into pairs on every run.
    func emitMatmul(_ out: View, _ a: View, _ b: View, bias: View?, cast: Bool, relu: Bool = false, clamp: Float? = nil) {
        let inPairs = pairs(a, b, cast), n = b.dims[1], width = NeuronProgram.matmulPanel
        let panels = b.buffer == 0 && a.type == .float32 && b.type == .float32 && out.type == .float32
            && n >= width && (n + width - 1) / width * width * 4 <= n * 5 && (!inPairs || b.dims[0] % 2 == 0)
        let operands: [View]
        if panels && inPairs {
            autoCastOps += 1
            operands = [a, pairPanelWeight(b)]
        } else {
            operands = panels ? [a, panelWeight(b)] : castOperands(a, b, cast)
        }
        emit(.matmul(bias: bias != nil, pairs: inPairs, panels: panels, relu: relu, clamp: clamp), [out] + operands + (bias.map { [$0] } ?? []))
    }

    /// Whether the product of `a` and `b` runs in bfloat16 pairs: under
    /// --auto-cast, unless `cast` is false (a product the compiler made up
    /// to run another op, such as Resize's interpolation or a convolution,
    /// whose constants bf16 would round), or the product is too small to
    /// gain from bf16: fewer than 32 taps or columns (packing and the
    /// padded pair would cost more than they save, and fp32 is exact), or
    /// a B of fewer than `Self.pairsMinimumB` elements, which stays in the
    /// cache, where bf16's halved bytes save little and the exact
    /// emulation's extra work (A rounded, B's halves split) costs more on
    /// CPUs without a fast VDPBF16PS: 16 rows by 64 by 64 ran 1.5x slower
    /// in pairs than in fp32 on an Intel Xeon, 16 by 256 by 256 5% faster.
    func pairs(_ a: View, _ b: View, _ cast: Bool) -> Bool {
        guard cast, autoCast != .none, a.type == .float32, let k = a.dims.last, let n = b.dims.last else { return false }
        return k >= 32 && n >= 32 && k * n >= Self.pairsMinimumB
    }

    /// The fewest elements of B (K·N) a product casts (128 KB of fp32).
    static let pairsMinimumB = 32_768

    /// Matmul operands as they go to the engine. In bfloat16 pairs
    /// (ISA 1.9) a constant is stored as bf16 (half the bytes to read);
    /// a computed operand stays float32, rounded by the MATMUL as it
    /// reads it, with no cast instruction and no copy.
    func castOperands(_ a: View, _ b: View, _ cast: Bool) -> [View] {
        guard pairs(a, b, cast) else { return [a, b] }
        autoCastOps += 1
        return [a.buffer == 0 ? bfloat16(a) : a, b.buffer == 0 ? bfloat16(b) : b]
    }

    func lowerGemm() throws(NeuronCompilerError) {
        var a = try floatTensor(0), b = try floatTensor(1)
        guard a.rank == 2, b.rank == 2 else { throw shapeError("Gemm takes 2-D A and B; got \(a.dims) and \(b.dims)") }
        if try int("transA", 0) != 0 { a = a.permuted([1, 0]) }
        if try int("transB", 0) != 0 { b = contiguousWeight(b.permuted([1, 0])) }
        let alpha = try float("alpha", 1), beta = try float("beta", 1)
        let n = b.dims[1]
        var bias: View?
        var c: View?
        if hasInput(2) {
            let cv = try floatTensor(2)
            if alpha == 1, beta == 1, cv.count == n, cv.dims.last == n || cv.rank == 0 || cv.count == 1 {
                bias = View(buffer: cv.buffer, type: cv.type, offset: cv.offset, dims: [n],
                            strides: [cv.rank == 0 || cv.dims.last != n ? 0 : cv.strides[cv.rank - 1]])
            } else {
                c = cv
            }
        }
        var result = try matmul(a, b, bias: bias)
        if alpha != 1 {
            result = try binary(.mul, result, try weightView(.make(.float32, [], [Double(alpha)]), name: "\(current.name)#alpha"))
        }
        if var c {
            if beta != 1 {
                c = try binary(.mul, c, try weightView(.make(.float32, [], [Double(beta)]), name: "\(current.name)#beta"))
            }
            result = try binary(.add, result, c)
        }
        set(0, .tensor(result))
    }

}
