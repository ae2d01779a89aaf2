import NeuronISA

/// QuantizeLinear and DequantizeLinear to and from 8- and 16-bit integers
/// (and int32 for DequantizeLinear): the scale and zero point per tensor,
/// per axis or per block, each step an elementwise instruction (CAST, BINARY,
/// UNARY ROUND), in float32 as ONNX's reference computes them.
extension ONNXOps {
    static let quantization: [ONNXOp] = [
        // uint8 over the range of x and 0: scale (max − min) / 255, the zero
        // point rounded and clipped, y = clip(round(x / scale) + zero point).
        ONNXOp("DynamicQuantizeLinear", takes: [.float32]) { l in try l.lowerDynamicQuantize() },
        // Integer products with int32 accumulation (ISA 1.5's int32 MATMUL).
        ONNXOp("MatMulInteger", takes: [.int8, .uint8], typedInputs: 2) { l in
            l.set(0, .tensor(try l.matmul(try l.zeroShifted(0, point: 2, rows: true), try l.zeroShifted(1, point: 3, rows: false))))
        },
        ONNXOp("QLinearMatMul") { l in try l.lowerQLinearMatMul() },
        // Integers: y = saturate(round(x / scale) + zero point), rounding
        // half to even. float8: y = x / scale, rounded to the type (its
        // zero point is 0), saturating unless saturate=0. float4: y = x /
        // scale + zero point, rounded to the type and saturating.
        ONNXOp("QuantizeLinear", takes: [.float32], typedInputs: 1) { l in
            let x = try l.floatTensor(0)
            let type = try l.quantizedType()
            let integers: [NeuronDType] = [.int8, .uint8, .int16, .uint16, .int4, .uint4, .int2, .uint2]
            guard integers.contains(type) || type.isSmallFloat, type != .float8E8M0 else {
                throw l.unsupported("quantizing to \(type.name); int8, uint8, int16, uint16, the 4- and 2-bit integers, "
                                    + "float8 (but E8M0) and float4 are supported")
            }
            let scale = try l.quantizationParameter(1, over: x)
            var y = try l.binary(.div, x, scale)
            if type.isInteger { y = try l.apply(.round, y) }
            if l.hasInput(2), type.isInteger || type == .float4E2M1 {
                y = try l.binary(.add, y, try l.quantizationParameter(2, over: x))
            }
            if type.isInteger {   // clipped to the type's range: a float into a sub-byte integer would wrap
                let bits = type.bitWidth, low = type.isSigned ? -Double(1 << (bits - 1)) : 0
                let high = type.isSigned ? Double((1 << (bits - 1)) - 1) : Double((1 << bits) - 1)
                y = try l.binary(.min, try l.binary(.max, y, try l.scalar(Float(low), "qmin")), try l.scalar(Float(high), "qmax"))
            }
            let out = try l.temp(type, y.dims)
            l.emit(.cast(wrap: false, saturate: try l.int("saturate", 1) != 0 || !type.isSmallFloat), [out, y])
            l.set(0, .tensor(out))
        },
        // y = (x - zero point) · scale, in float32.
        ONNXOp("DequantizeLinear", takes: [.int8, .uint8, .int16, .uint16, .int32, .int4, .uint4, .int2, .uint2,
                                           .float8E4M3FN, .float8E4M3FNUZ, .float8E5M2, .float8E5M2FNUZ, .float4E2M1],
               typedInputs: 1) { l in
            let q = try l.typedTensor(0)
            var x = try l.temp(.float32, q.dims)
            l.emit(.cast(wrap: false), [x, q])
            if l.hasInput(2) { x = try l.binary(.sub, x, try l.quantizationParameter(2, over: x)) }
            l.set(0, .tensor(try l.binary(.mul, x, try l.quantizationParameter(1, over: x))))
        },
    ]
}

extension Lowering {
    /// QuantizeLinear's output type: its zero point's, or output_dtype, or uint8.
    func quantizedType() throws(NeuronCompilerError) -> NeuronDType {
        if hasInput(2) { return try typedTensorType(2) }
        let code = try int("output_dtype", 0)
        guard code != 0 else { return .uint8 }
        return try GraphReader(directory: nil, opset: graph.opset).elementType(Int32(clamping: code), what: "output_dtype")
    }

    /// Scale or zero point `index` as float32 broadcast to `x`: one value,
    /// one per index of `axis` (1-D), or one per block of block_size
    /// along `axis` (x's rank), each repeated over its block.
    func quantizationParameter(_ index: Int, over x: View) throws(NeuronCompilerError) -> View {
        var p = try typedTensor(index, as: constant(index) != nil ? .float32 : nil)
        if p.type != .float32 {
            let wide = try temp(.float32, p.dims)
            emit(.cast(wrap: false), [wide, p])
            p = wide
        }
        if p.count == 1 { return try reshapeView(p, to: []) }
        let a = try axis(try int("axis", 1), rank: x.rank)
        let block = try int("block_size", 0)
        if block == 0 {
            guard p.rank == 1, p.dims[0] == x.dims[a] else {
                throw shapeError("the scale or zero point \(p.dims) must be one value or one per index of axis \(a) (\(x.dims[a]))")
            }
            var dims = [Int](repeating: 1, count: x.rank)
            dims[a] = x.dims[a]
            return try reshapeView(p, to: dims)
        }
        let blocks = (x.dims[a] + block - 1) / block
        guard block > 0, p.rank == x.rank, p.dims[a] == blocks,
              (0..<x.rank).allSatisfy({ $0 == a || p.dims[$0] == x.dims[$0] }) else {
            throw shapeError("the blocked scale or zero point \(p.dims) must be \(x.dims) with axis \(a) in blocks of \(block) (\(blocks))")
        }
        // Each block's value repeated block_size times (a broadcast axis
        // after the block axis), then cut to the axis' length.
        var dims = p.dims, strides = p.strides
        dims.insert(block, at: a + 1)
        strides.insert(0, at: a + 1)
        guard dims.count <= 6 else { throw unsupported("blocked quantization of a \(x.rank)-D tensor; up to 5-D is supported") }
        var repeated = try reshapeView(contiguous(View(buffer: p.buffer, type: p.type, offset: p.offset, dims: dims, strides: strides)),
                                       to: Array(p.dims[..<a]) + [blocks * block] + Array(p.dims[(a + 1)...]))
        repeated.dims[a] = x.dims[a]
        return repeated
    }

    func lowerDynamicQuantize() throws(NeuronCompilerError) {
        let x = try floatTensor(0)
        let all = Set(0..<x.rank)
        let zero = try scalar(0, "zero"), top = try scalar(255, "qmax")
        let high = try reshapeView(try binary(.max, try reduce(.max, x, over: all), zero), to: [])
        let low = try reshapeView(try binary(.min, try reduce(.min, x, over: all), zero), to: [])
        let span = try select(try compare(.eq, high, low), try scalar(1, "one"), try binary(.sub, high, low))
        let scale = try binary(.div, span, top)
        let point = try apply(.round, try binary(.min, try binary(.max, try binary(.sub, zero, try binary(.div, low, scale)), zero), top))
        let quantized = try binary(.add, try apply(.round, try binary(.div, x, scale)), point)
        let y = converted(try binary(.min, try binary(.max, quantized, zero), top), to: .uint8)
        set(0, .tensor(y))
        if current.outputs.count > 1 { set(1, .tensor(scale)) }
        if current.outputs.count > 2 { set(2, .tensor(converted(point, to: .uint8))) }
    }

    /// Input `index` (int8 or uint8) as int32 minus its zero point (input
    /// `point`, when given: one number, or one per row of A / column of B).
    func zeroShifted(_ index: Int, point: Int, rows: Bool) throws(NeuronCompilerError) -> View {
        let x = try typedTensor(index)
        guard x.type == .int8 || x.type == .uint8 else {
            throw unsupported("input \(current.inputs[index]) is \(x.type.name); int8 or uint8 are supported")
        }
        let wide = converted(x, to: .int32)
        guard hasInput(point) else { return wide }
        var zero = converted(try typedTensor(point, as: x.type), to: .int32)
        if zero.count > 1 {
            guard zero.rank == 1, x.rank >= 2, zero.count == x.dims[x.rank - (rows ? 2 : 1)] else {
                throw shapeError("the zero point \(zero.dims) is neither one number nor one per \(rows ? "row" : "column") of \(x.dims)")
            }
            if rows { zero = try reshapeView(zero, to: [zero.count, 1]) }
        }
        return try binary(.sub, wide, zero)
    }

    /// QLinearMatMul: (a − a_zero)(b − b_zero) in int32, then in float64 as
    /// ONNX's reference: times a_scale · b_scale / y_scale (computed in the
    /// scales' type), plus y_zero, rounded half to even and saturated.
    func lowerQLinearMatMul() throws(NeuronCompilerError) {
        let product = try matmul(try zeroShifted(0, point: 2, rows: true), try zeroShifted(3, point: 5, rows: false))
        var scales: [View] = []
        for index in [1, 4, 6] {
            let scale = try typedTensor(index)
            guard scale.type == .float32 || scale.type == .float16 || scale.type == .bfloat16 else {
                throw unsupported("the scale \(current.inputs[index]) is \(scale.type.name); float32, float16 or bfloat16 are supported")
            }
            scales.append(scale)
        }
        // Each step of a half-precision product rounds to that type, as numpy's does.
        let narrow = scales[0].type
        func rounded(_ v: View) -> View { narrow == .float32 ? v : converted(converted(v, to: narrow), to: .float32) }
        let wide = scales.map { converted($0, to: .float32) }
        let multiplier = rounded(try binary(.div, rounded(try binary(.mul, wide[0], wide[1])), wide[2]))
        var y = try binary(.mul, converted(product, to: .float64), converted(multiplier, to: .float64))
        let type: NeuronDType
        if hasInput(7) {
            let zero = try typedTensor(7)
            type = zero.type
            y = try binary(.add, y, converted(zero, to: .float64))
        } else {
            type = try typedTensor(0).type
        }
        guard type == .int8 || type == .uint8 else { throw unsupported("y_zero_point is \(type.name); int8 or uint8 are supported") }
        let (low, high): (Double, Double) = type == .int8 ? (-128, 127) : (0, 255)
        func bound(_ value: Double, _ what: String) throws(NeuronCompilerError) -> View {
            try weightView(.make(.float64, [], [value]), name: "\(current.name)#\(what)", as: .float64)
        }
        let clipped = try binary(.min, try binary(.max, try apply(.round, y), try bound(low, "qmin")), try bound(high, "qmax"))
        set(0, .tensor(converted(clipped, to: type)))
    }
}
