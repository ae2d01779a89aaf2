import NeuronISA

/// Attention (opset 23): softmax(Q Kᵀ scale + bias) V for each head, on
/// instructions the engine has (MATMUL, BINARY, UNARY, REDUCE, SOFTMAX).
/// Grouped key-value heads, a key-value cache, causal and sliding-window
/// masks, a mask input, softcap and the Q Kᵀ output are all taken; the
/// masks known at compile time become one constant bias.
extension ONNXOps {
    static let attention: [ONNXOp] = [
        // Q, K and V are float32 when computed (float16 and bfloat16 are
        // computed in float32); attn_mask is bool or float32;
        // nonpad_kv_seqlen (6) is int64, known or not.
        ONNXOp("Attention", takes: [.float32], typedInputs: 3) { l in try l.lowerAttention() },
        // X, cos_cache and sin_cache float32 (or widened); position_ids int64.
        ONNXOp("RotaryEmbedding", takes: [.float32], typedInputs: 3) { l in try l.lowerRotaryEmbedding() },
        ONNXOp("LinearAttention", takes: [.float32]) { l in try l.lowerLinearAttention() },
    ]
}

extension Lowering {
    func lowerAttention() throws(NeuronCompilerError) {
        var q = try floatTensor(0), k = try floatTensor(1), v = try floatTensor(2)
        let rank = q.rank
        guard rank == 3 || rank == 4, k.rank == rank, v.rank == rank else {
            throw shapeError("Q, K and V must be all 3-D or all 4-D; they are \(q.dims), \(k.dims) and \(v.dims)")
        }
        if rank == 3 {
            // [batch, sequence, heads · head size] to [batch, heads, sequence, head size].
            let qHeads = try int("q_num_heads", 0), kvHeads = try int("kv_num_heads", 0)
            guard qHeads >= 1, kvHeads >= 1, q.dims[2] % qHeads == 0, k.dims[2] % kvHeads == 0, v.dims[2] % kvHeads == 0 else {
                throw invalid("3-D Q, K and V need q_num_heads and kv_num_heads that divide their hidden sizes (\(q.dims[2]), \(k.dims[2]) and \(v.dims[2]))")
            }
            func heads(_ x: View, _ count: Int) throws(NeuronCompilerError) -> View {
                try reshapeView(x, to: [x.dims[0], x.dims[1], count, x.dims[2] / count]).permuted([0, 2, 1, 3])
            }
            q = try heads(q, qHeads)
            k = try heads(k, kvHeads)
            v = try heads(v, kvHeads)
        }
        let batch = q.dims[0], qHeads = q.dims[1], length = q.dims[2], headSize = q.dims[3]
        guard k.dims[0] == batch, v.dims[0] == batch, k.dims[1] == v.dims[1], k.dims[2] == v.dims[2], k.dims[3] == headSize else {
            throw shapeError("Q \(q.dims), K \(k.dims) and V \(v.dims) do not fit: K needs Q's batch and head size, V K's heads and length")
        }
        guard hasInput(4) == hasInput(5) else { throw invalid("past_key and past_value come together") }
        let past = hasInput(4) ? try widenedFloat(4).dims[2] : 0
        if hasInput(4) {
            k = try concat([try widenedFloat(4), k], axis: 2)
            v = try concat([try widenedFloat(5), v], axis: 2)
        }
        if current.outputs.count > 1, !current.outputs[1].isEmpty { set(1, .tensor(k)) }
        if current.outputs.count > 2, !current.outputs[2].isEmpty { set(2, .tensor(v)) }
        let kvHeads = k.dims[1], kvLength = k.dims[2], valueSize = v.dims[3]
        guard qHeads % kvHeads == 0 else {
            throw shapeError("\(qHeads) query heads do not share \(kvHeads) key-value heads evenly")
        }
        let group = qHeads / kvHeads

        // Q Kᵀ, each side scaled by sqrt(scale) (as ONNX's reference does, so
        // that neither overflows first); query heads h·group ..< (h+1)·group
        // read key-value head h.
        let given = try attribute("scale", "a float") { if case .float(let f) = $0 { f } else { nil } }
        let scale = given.map(Double.init) ?? 1 / Double(headSize).squareRoot()
        let root = try scalar(Float(scale.squareRoot()), "sqrt(scale)")
        let grouped = try reshapeView(try binary(.mul, q, root), to: [batch, kvHeads, group, length, headSize])
        let keys = try binary(.mul, k, root).permuted([0, 1, 3, 2])
        var scores = try reshapeView(try matmul(grouped, Self.shared(keys)), to: [batch, qHeads, length, kvLength])
        let softcap = try float("softcap", 0)
        if softcap > 0 {
            let cap = try scalar(softcap, "softcap")
            scores = try binary(.mul, try apply(.tanh, try binary(.div, scores, cap)), cap)
        }

        // The bias: the mask input, then what causal, the window and
        // nonpad_kv_seqlen mask (0 where a key is seen, -inf where not).
        var biased = scores
        if hasInput(3) { biased = try binary(.add, biased, try attentionMask(length: kvLength)) }
        let known = try attentionBias(batch: batch, length: length, kvLength: kvLength, past: past)
        if let known { biased = try binary(.add, biased, known) }

        let probabilities: View
        if hasInput(3) || known != nil {
            // A row with every key masked gives zeros, not 0/0: the row's max
            // is held above -inf and its sum above 0.
            let top = try binary(.max, try reduceLast(.max, biased), try scalar(-.greatestFiniteMagnitude, "lowest"))
            let exps = try apply(.exp, try binary(.sub, biased, top))
            let sum = try binary(.max, try reduceLast(.sum, exps), try scalar(.leastNonzeroMagnitude, "least"))
            probabilities = try binary(.div, exps, sum)
        } else {
            let out = try temp(.float32, biased.dims)
            emit(.softmax, [out, biased])
            probabilities = out
        }
        if current.outputs.count > 3, !current.outputs[3].isEmpty {
            switch try int("qk_matmul_output_mode", 0) {
            case 0, 1: set(3, .tensor(scores))
            case 2: set(3, .tensor(biased))
            case 3: set(3, .tensor(probabilities))
            case let mode: throw invalid("qk_matmul_output_mode=\(mode); ONNX defines 0 to 3")
            }
        }

        let weights = try reshapeView(probabilities, to: [batch, kvHeads, group, length, kvLength])
        var y = try reshapeView(try matmul(weights, Self.shared(v)), to: [batch, qHeads, length, valueSize])
        if rank == 3 { y = try reshapeView(y.permuted([0, 2, 1, 3]), to: [batch, length, qHeads * valueSize]) }
        set(0, .tensor(y))
    }

    /// A key-value tensor [batch, heads, a, b] as [batch, heads, 1, a, b]:
    /// one head for the whole group of query heads that share it.
    static func shared(_ x: View) -> View {
        View(buffer: x.buffer, type: x.type, offset: x.offset, dims: [x.dims[0], x.dims[1], 1, x.dims[2], x.dims[3]],
             strides: [x.strides[0], x.strides[1], 0, x.strides[2], x.strides[3]])
    }

    /// attn_mask (input 3) as an additive float bias whose last axis is the
    /// key length: a bool mask (constant) as 0 where true and -inf where
    /// false, a shorter one padded with -inf (keys it does not cover are not seen).
    func attentionMask(length: Int) throws(NeuronCompilerError) -> View {
        if let mask = constant(3) {
            guard let last = mask.shape.last, last <= length else {
                throw shapeError("attn_mask \(mask.shape) must end in at most the \(length) keys")
            }
            let values = mask.doubles().map { mask.type == .bool ? ($0 != 0 ? 0 : -Double.infinity) : $0 }
            let shape = Array(mask.shape.dropLast()) + [length]
            var padded: [Double] = []
            padded.reserveCapacity(try foldedCount(shape, what: "the padded attn_mask"))
            for row in stride(from: 0, to: values.count, by: last) {
                padded += values[row..<(row + last)]
                padded += [Double](repeating: -.infinity, count: length - last)
            }
            return try weightView(.make(.float32, shape, padded), name: "\(current.name)#mask")
        }
        var mask = try typedTensor(3)
        if mask.type == .bool {
            // 0 where true, -inf where false.
            mask = try select(mask, try scalar(0, "zero"), try scalar(-.infinity, "-inf"))
        }
        if mask.type == .float16 || mask.type == .bfloat16 { mask = try widenedFloat(3) }
        guard mask.type == .float32 else {
            throw unsupported("attn_mask is \(mask.type.name); Attention takes a bool or float mask")
        }
        guard let last = mask.dims.last, last <= length else {
            throw shapeError("attn_mask \(mask.dims) must end in at most the \(length) keys")
        }
        guard last < length else { return mask }
        let tailShape = Array(mask.dims.dropLast()) + [length - last]
        let tail = try weightView(.make(.float32, tailShape, [Double](repeating: -.infinity, count: try foldedCount(tailShape, what: "the mask's padding"))),
                                  name: "\(current.name)#maskpad")
        return try concat([mask, tail], axis: mask.rank - 1)
    }

    /// The masks known at compile time, as one bias [batch or 1, 1, length,
    /// keys] of 0 and -inf: causal (key j seen by query i when j ≤ i +
    /// offset), the sliding window and the padding of nonpad_kv_seqlen
    /// (input 6); the offset is the cache's length, or per batch
    /// nonpad_kv_seqlen − length. nil when none applies.
    func attentionBias(batch: Int, length: Int, kvLength: Int, past: Int) throws(NeuronCompilerError) -> View? {
        let causal = try int("is_causal", 0) != 0
        let left = try int("left_window_size", -1), right = try int("right_window_size", -1)
        guard left >= -1, right >= -1 else { throw invalid("left_window_size and right_window_size must be -1 or more") }
        var seen: [Int]?
        if hasInput(6), constant(6) == nil {
            return try attentionBias(lengths: try typedTensor(6), batch: batch, length: length, kvLength: kvLength,
                                     past: past, causal: causal, left: left, right: right)
        }
        if hasInput(6) {
            let lengths = try integers(6, what: "nonpad_kv_seqlen")
            guard lengths.count == batch, past == 0 else {
                throw invalid("nonpad_kv_seqlen needs one length per batch (\(batch)) and no past_key")
            }
            seen = lengths
        }
        guard causal || left >= 0 || right >= 0 || seen != nil else { return nil }
        let batches = seen == nil ? 1 : batch
        let shape = [batches, 1, length, kvLength]
        var values: [Double] = []
        values.reserveCapacity(try foldedCount(shape, what: "the attention mask"))
        for b in 0..<batches {
            let offset = seen.map { $0[b] - length } ?? past
            for i in 0..<length {
                for j in 0..<kvLength {
                    let distance = i + offset - j
                    var allowed = !(causal && distance < 0)
                    if left >= 0, distance > left { allowed = false }
                    if right >= 0, -distance > right { allowed = false }
                    if let seen, j >= seen[b] { allowed = false }
                    values.append(allowed ? 0 : -.infinity)
                }
            }
        }
        return try weightView(.make(.float32, shape, values), name: "\(current.name)#bias")
    }

    /// The same bias with nonpad_kv_seqlen known only at run time: key j
    /// is seen by query i of batch b when n_b, its length, is above j and
    /// the causal and window rules hold for the offset n_b − length; each
    /// rule a COMPARE of n_b with a constant [length, keys], the rules
    /// joined by AND, the bias a SELECT of 0 and -inf.
    func attentionBias(lengths given: View, batch: Int, length: Int, kvLength: Int, past: Int,
                       causal: Bool, left: Int, right: Int) throws(NeuronCompilerError) -> View {
        guard given.count == batch, past == 0 else {
            throw invalid("nonpad_kv_seqlen needs one length per batch (\(batch)) and no past_key")
        }
        guard given.type == .int64 || given.type == .int32 else {
            throw invalid("nonpad_kv_seqlen is \(given.type.name); it takes int64")
        }
        let n = try reshapeView(converted(given, to: .int64), to: [batch, 1, 1, 1])
        func table(_ name: String, _ value: (Int, Int) -> Int) throws(NeuronCompilerError) -> View {
            var values: [Double] = []
            for i in 0..<length { for j in 0..<kvLength { values.append(Double(value(i, j))) } }
            return try weightView(.make(.int64, [1, 1, length, kvLength], values), name: "\(current.name)#\(name)", as: .int64)
        }
        // distance = i + n − length − j: causal wants it ≥ 0, the left window ≤ left, the right ≥ −right.
        var allowed = try compare(.gt, n, try table("keys") { _, j in j })
        if causal { allowed = try binary(.and, allowed, try compare(.ge, n, try table("causal") { i, j in j - i + length })) }
        if left >= 0 { allowed = try binary(.and, allowed, try compare(.le, n, try table("left") { i, j in left + j - i + length })) }
        if right >= 0 { allowed = try binary(.and, allowed, try compare(.ge, n, try table("right") { i, j in j - i + length - right })) }
        return try select(allowed, try scalar(0, "seen"), try scalar(-.infinity, "unseen"))
    }

    /// RotaryEmbedding: x as [batch, sequence, heads, head size]; the
    /// first rotary_embedding_dim of each head turned pairwise, (x1, x2)
    /// to (cos x1 − sin x2, sin x1 + cos x2), the pairs being the two
    /// halves or (interleaved) the even and odd elements; cos and sin
    /// gathered from the caches by position_ids when given. The rest of
    /// each head is copied.
    func lowerRotaryEmbedding() throws(NeuronCompilerError) {
        let input = try floatTensor(0)
        var x: View
        switch input.rank {
        case 4: x = input.permuted([0, 2, 1, 3])
        case 3:
            let heads = try int("num_heads", 0)
            guard heads >= 1, input.dims[2] % heads == 0 else {
                throw invalid("a 3-D input needs num_heads dividing its hidden size \(input.dims[2])")
            }
            x = try reshapeView(input, to: [input.dims[0], input.dims[1], heads, input.dims[2] / heads])
        default: throw shapeError("the input is \(input.dims); RotaryEmbedding takes 3 or 4 dimensions")
        }
        let (batch, length, headSize) = (x.dims[0], x.dims[1], x.dims[3])
        var rotary = try int("rotary_embedding_dim", 0)
        if rotary == 0 { rotary = headSize }
        guard rotary >= 2, rotary <= headSize, rotary % 2 == 0 else {
            throw invalid("rotary_embedding_dim=\(rotary) must be even and at most the head size \(headSize)")
        }
        let half = rotary / 2
        var caches: [View] = []
        for index in 1...2 {
            var cache = try floatTensor(index)
            if hasInput(3) {
                let positions = try tensor(3)
                guard positions.type == .int64 || positions.type == .int32, positions.dims == [batch, length],
                      cache.rank == 2 else {
                    throw shapeError("position_ids \(positions.dims) must be [\(batch), \(length)] (int64) over caches of 2 dimensions")
                }
                let picked = try temp(cache.type, [batch, length, cache.dims[1]])
                emit(.gather, [picked, contiguous(cache), positions])
                cache = picked
            }
            guard cache.dims.count == 3, cache.dims[0] == batch, cache.dims[1] == length, cache.dims[2] >= half else {
                throw shapeError("the caches give \(cache.dims); RotaryEmbedding needs [\(batch), \(length), \(half) or more]")
            }
            // [batch, sequence, 1, half]: the same for every head.
            caches.append(View(buffer: cache.buffer, type: cache.type, offset: cache.offset, dims: [batch, length, 1, half],
                               strides: [cache.strides[0], cache.strides[1], 0, cache.strides[2]]))
        }
        let interleaved = try int("interleaved", 0) != 0
        func pairs(_ view: View, second: Bool) -> View {
            var part = view
            part.dims[3] = half
            if interleaved {
                part.offset += second ? view.strides[3] : 0
                part.strides[3] *= 2
            } else {
                part.offset += second ? half * view.strides[3] : 0
            }
            return part
        }
        let (cos, sin) = (caches[0], caches[1])
        let x1 = pairs(x, second: false), x2 = pairs(x, second: true)
        let real = try binary(.sub, try binary(.mul, cos, x1), try binary(.mul, sin, x2))
        let imaginary = try binary(.add, try binary(.mul, sin, x1), try binary(.mul, cos, x2))
        let out = try temp(.float32, x.dims)
        emit(.copy, [pairs(out, second: false), real])
        emit(.copy, [pairs(out, second: true), imaginary])
        if rotary < headSize {
            emit(.copy, [slab(out, axis: 3, from: rotary, count: headSize - rotary),
                         slab(x, axis: 3, from: rotary, count: headSize - rotary)])
        }
        set(0, .tensor(input.rank == 4 ? out.permuted([0, 2, 1, 3]) : try reshapeView(out, to: input.dims)))
    }

    /// LinearAttention: a state [batch, kv heads, d_k, d_v] carried over
    /// the sequence, one step per position (unrolled): decayed by
    /// exp(decay) (gated), corrected by beta (v − state·k) (delta), plus
    /// k vᵀ; each query head reads q · state of its key-value head, scaled.
    func lowerLinearAttention() throws(NeuronCompilerError) {
        let query = try floatTensor(0), key = try floatTensor(1), value = try floatTensor(2)
        let rule = try string("update_rule", "gated_delta")
        guard ["linear", "gated", "delta", "gated_delta"].contains(rule) else { throw unsupported("update_rule=\(rule)") }
        let gated = rule.hasPrefix("gated"), delta = rule.hasSuffix("delta")
        let qHeads = try int("q_num_heads", 0), kvHeads = try int("kv_num_heads", 0)
        guard qHeads >= 1, kvHeads >= 1, qHeads % kvHeads == 0 else {
            throw invalid("q_num_heads (\(qHeads)) must be a positive multiple of kv_num_heads (\(kvHeads))")
        }
        guard query.rank == 3, key.rank == 3, value.rank == 3, query.dims[2] % qHeads == 0, value.dims[2] % kvHeads == 0,
              key.dims == [query.dims[0], query.dims[1], kvHeads * (query.dims[2] / qHeads)],
              value.dims[0] == query.dims[0], value.dims[1] == query.dims[1] else {
            throw shapeError("query \(query.dims), key \(key.dims) and value \(value.dims) do not fit \(qHeads) and \(kvHeads) heads")
        }
        guard gated == hasInput(4), delta == hasInput(5) else {
            throw invalid("update_rule=\(rule) \(gated ? "needs" : "forbids") decay and \(delta ? "needs" : "forbids") beta")
        }
        let (b, t, dk, dv, group) = (query.dims[0], query.dims[1], query.dims[2] / qHeads, value.dims[2] / kvHeads, qHeads / kvHeads)
        let given = try float("scale", 0)
        let scale = try scalar(given == 0 ? 1 / Float(dk).squareRoot() : given, "scale")
        let q = try reshapeView(query, to: [b, t, qHeads, dk]), k = try reshapeView(key, to: [b, t, kvHeads, dk])
        let v = try reshapeView(value, to: [b, t, kvHeads, dv])
        var decay: View?, beta: View?
        if gated {
            let g = try floatTensor(4)
            guard g.rank == 3, g.dims[0] == b, g.dims[1] == t, g.dims[2] == kvHeads || g.dims[2] == kvHeads * dk else {
                throw shapeError("decay is \(g.dims); it must be [\(b), \(t), \(kvHeads) or \(kvHeads * dk)]")
            }
            decay = try reshapeView(try apply(.exp, g), to: [b, t, kvHeads, g.dims[2] / kvHeads, 1])
        }
        if delta {
            let given = try floatTensor(5)
            guard given.rank == 3, given.dims[0] == b, given.dims[1] == t, given.dims[2] == kvHeads || given.dims[2] == 1 else {
                throw shapeError("beta is \(given.dims); it must be [\(b), \(t), \(kvHeads) or 1]")
            }
            beta = try reshapeView(given, to: [b, t, given.dims[2], 1])
        }
        var state: View
        if hasInput(3) {
            state = try floatTensor(3)
            guard state.dims == [b, kvHeads, dk, dv] else {
                throw shapeError("past_state is \(state.dims); it must be [\(b), \(kvHeads), \(dk), \(dv)]")
            }
        } else {
            state = try temp(.float32, [b, kvHeads, dk, dv])
            emit(.fill(0), [state])
        }
        let out = try temp(.float32, [b, t, qHeads, dv])
        func step(_ x: View, _ i: Int) throws(NeuronCompilerError) -> View {
            try reshapeView(slab(x, axis: 1, from: i, count: 1), to: [x.dims[0]] + Array(x.dims.dropFirst(2)))
        }
        for i in 0..<t {
            let kt = try step(k, i)                 // [b, kv, dk]
            var vt = try step(v, i)                 // [b, kv, dv]
            if let decay { state = try binary(.mul, state, try step(decay, i)) }   // [b, kv, dk or 1, 1]
            let column = try reshapeView(kt, to: [b, kvHeads, dk, 1])
            if let beta {
                // retrieved[m] = Σ_d state[d, m] k[d]
                let retrieved = try reshapeView(try reduce(.sum, try binary(.mul, state, column).permuted([0, 1, 3, 2]), over: [3]),
                                                to: [b, kvHeads, dv])
                vt = try binary(.mul, try step(beta, i), try binary(.sub, vt, retrieved))
            }
            state = try binary(.add, state, try binary(.mul, column, try reshapeView(vt, to: [b, kvHeads, 1, dv])))
            // Each query head of a group reads its key-value head's state.
            let qt = try reshapeView(try step(q, i), to: [b, kvHeads, group, dk])
            let read = try binary(.mul, try matmul(qt, state), scale)   // [b, kv, group, dv]
            let target = View(buffer: out.buffer, type: out.type, offset: out.offset + i * out.strides[1],
                              dims: [b, kvHeads, group, dv], strides: [out.strides[0], group * dv, dv, 1])
            emit(.copy, [target, read])
        }
        set(0, .tensor(try reshapeView(out, to: [b, t, qHeads * dv])))
        if current.outputs.count > 1 { set(1, .tensor(state)) }
    }
}
