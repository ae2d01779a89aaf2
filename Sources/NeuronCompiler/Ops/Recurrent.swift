import NeuronISA

/// RNN, GRU and LSTM, unrolled over their (static) sequence: the input
/// projection of every step as one MATMUL (biases included), then per step
/// a MATMUL of the hidden state and the gates' UNARY and BINARY, gates
/// that take one activation side by side in one instruction, and the new
/// state written straight into Y. Forward, reverse and
/// bidirectional; initial states, peepholes, clip, sequence_lens at run
/// time (a step past a sequence's length keeps its state and outputs 0).
extension ONNXOps {
    static let recurrent: [ONNXOp] = [
        ONNXOp("RNN", takes: [.float32], typedInputs: 4) { l in try l.lowerRecurrent(.rnn) },
        ONNXOp("GRU", takes: [.float32], typedInputs: 4) { l in try l.lowerRecurrent(.gru) },
        ONNXOp("LSTM", takes: [.float32], typedInputs: 4) { l in try l.lowerRecurrent(.lstm) },
        ONNXOp("CausalConvWithState", takes: [.float32]) { l in try l.lowerCausalConv() },
    ]
}

/// Which recurrent cell, and how many gates it has.
enum RecurrentCell {
    case rnn, gru, lstm

    var gates: Int {
        switch self {
        case .rnn: 1
        case .gru: 3
        case .lstm: 4
        }
    }

    /// The default activations, one per function the cell applies.
    var activations: [String] {
        switch self {
        case .rnn: ["Tanh"]
        case .gru: ["Sigmoid", "Tanh"]
        case .lstm: ["Sigmoid", "Tanh", "Tanh"]
        }
    }
}

extension Lowering {
    func lowerRecurrent(_ cell: RecurrentCell) throws(NeuronCompilerError) {
        var x = try floatTensor(0)
        let w = try floatTensor(1), r = try floatTensor(2)
        let hidden = try int("hidden_size", 0)
        let layout = try int("layout", 0)
        guard x.rank == 3, w.rank == 3, r.rank == 3 else {
            throw shapeError("X, W and R must be 3-D; they are \(x.dims), \(w.dims) and \(r.dims)")
        }
        if layout == 1 { x = x.permuted([1, 0, 2]) }   // [batch, sequence, input] to [sequence, batch, input]
        let steps = x.dims[0], batch = x.dims[1], width = x.dims[2]
        let directions: [Bool]   // true: reverse
        switch try string("direction", "forward") {
        case "forward": directions = [false]
        case "reverse": directions = [true]
        case "bidirectional": directions = [false, true]
        case let other: throw invalid("direction=\(other); ONNX defines forward, reverse and bidirectional")
        }
        let g = cell.gates
        guard hidden >= 1, w.dims == [directions.count, g * hidden, width], r.dims == [directions.count, g * hidden, hidden] else {
            throw shapeError("W \(w.dims) and R \(r.dims) must be [\(directions.count), \(g) · hidden_size, input \(width) or hidden_size \(hidden)]")
        }
        let names = try attribute("activations", "a list of strings") { if case .strings(let v) = $0 { v } else { nil } }
            ?? [String](repeating: "", count: 0)
        let perDirection = cell.activations.count
        guard names.isEmpty || names.count == perDirection * directions.count else {
            throw invalid("activations must name \(perDirection) functions per direction")
        }
        let clip = try attribute("clip", "a float") { if case .float(let v) = $0 { v } else { nil } }
        if cell == .lstm, try int("input_forget", 0) != 0 { throw unsupported("input_forget=1") }
        let linearBeforeReset = try int("linear_before_reset", 0) != 0 && cell == .gru

        // sequence_lens (4): at run time, a mask per step and sequence.
        var lengths: View?
        if hasInput(4) {
            var given = try typedTensor(4)
            guard given.count == batch else { throw shapeError("sequence_lens has \(given.count) lengths for a batch of \(batch)") }
            if given.type != .int64 {
                let wide = try temp(.int64, given.dims)
                emit(.cast(wrap: false), [wide, given])
                given = wide
            }
            lengths = try reshapeView(given, to: [batch, 1])
        }
        let wantsY = current.outputs.count > 0 && !current.outputs[0].isEmpty
        let y = try temp(.float32, [steps, directions.count, batch, hidden])
        var lastH: [View] = [], lastC: [View] = []
        let flatX = try reshapeView(x, to: [steps * batch, width])

        for (d, reverse) in directions.enumerated() {
            func slice(_ v: View, _ index: Int) -> View {   // v[index] of its first axis
                var s = v
                s.offset += index * v.strides[0]
                s.dims.removeFirst()
                s.strides.removeFirst()
                return s
            }
            func columns(_ v: View, _ gate: Int, count: Int = 1) -> View {   // gates' columns of [rows, g · hidden]
                var s = v
                s.offset += gate * hidden * v.strides[v.rank - 1]
                s.dims[v.rank - 1] = count * hidden
                return s
            }
            let wd = slice(w, d).permuted([1, 0]), rd = slice(r, d).permuted([1, 0])   // [in, g·H], [H, g·H]
            var inputBias: View?, recurrentBias: View?
            if hasInput(3) {
                let b = slice(try floatTensor(3), d)   // [2 · g · H]
                guard b.dims == [2 * g * hidden] else { throw shapeError("B must be [directions, \(2 * g) · hidden_size]") }
                var wb = b, rb = b
                wb.dims = [g * hidden]
                rb.dims = [g * hidden]
                rb.offset += g * hidden * b.strides[0]
                inputBias = wb
                recurrentBias = rb
            }
            // Every step's input projection at once: [steps · batch, g · H],
            // the biases added by the MATMUL (GRU keeps the recurrent bias
            // of its candidate apart: linear_before_reset).
            var bias = inputBias
            if let inputBias, let recurrentBias, cell != .gru { bias = try binary(.add, inputBias, recurrentBias) }
            let projected = try matmul(flatX, wd, bias: bias)
            func state(_ index: Int) throws(NeuronCompilerError) -> View {
                if hasInput(index) { return slice(try floatTensor(index), d) }
                let zero = try temp(.float32, [batch, hidden])
                emit(.fill(0), [zero])
                return zero
            }
            var h = try state(5)
            var c = cell == .lstm ? try state(6) : h
            let functions = names.isEmpty ? cell.activations : Array(names[(d * perDirection)..<((d + 1) * perDirection)])
            func activate(_ index: Int, _ v: View) throws(NeuronCompilerError) -> View {
                var v = v
                if let clip {
                    v = try binary(.max, try binary(.min, v, try scalar(clip, "clip")), try scalar(-clip, "-clip"))
                }
                switch functions[index].lowercased() {
                case "sigmoid": return try apply(.sigmoid, v)
                case "tanh": return try apply(.tanh, v)
                case "relu": return try apply(.relu, v)
                case let other: throw unsupported("activation \(other); Sigmoid, Tanh and Relu are supported")
                }
            }
            let peepholes: View? = cell == .lstm && hasInput(7) ? slice(try floatTensor(7), d) : nil
            for step in 0..<steps {
                let t = reverse ? steps - 1 - step : step
                var rows = projected
                rows.offset += t * batch * projected.strides[0]
                rows.dims = [batch, g * hidden]
                // The step's output row of Y, where the new state is written
                // straight away when every sequence runs every step.
                var target = y
                target.offset += t * y.strides[0] + d * y.strides[1]
                target.dims = [batch, hidden]
                target.strides = [y.strides[2], y.strides[3]]
                let direct = wantsY && lengths == nil
                /// a op b, into the step's row of Y when `direct`.
                func newState(_ op: NeuronBinaryOp, _ a: View, _ b: View) throws(NeuronCompilerError) -> View {
                    guard direct, a.dims == [batch, hidden], b.dims == [batch, hidden] else { return try binary(op, a, b) }
                    emit(.binary(op), [target, a, b])
                    return target
                }
                let newH: View, newC: View
                switch cell {
                case .rnn:
                    newH = try activate(0, try binary(.add, rows, try matmul(h, rd)))
                    newC = newH
                case .gru:
                    var recurrent = try matmul(h, rd)
                    if let recurrentBias { recurrent = try binary(.add, recurrent, recurrentBias) }
                    // z and r side by side: one add, one activation.
                    let zr = try activate(0, try binary(.add, columns(rows, 0, count: 2), columns(recurrent, 0, count: 2)))
                    let z = columns(zr, 0), reset = columns(zr, 1)
                    let candidateInput: View
                    if linearBeforeReset {
                        candidateInput = try binary(.mul, reset, columns(recurrent, 2))
                    } else {
                        var hr = try matmul(try binary(.mul, reset, h), columns(rd, 2))
                        if var rbh = recurrentBias {
                            rbh.offset += 2 * hidden * rbh.strides[0]
                            rbh.dims = [hidden]
                            hr = try binary(.add, hr, rbh)
                        }
                        candidateInput = hr
                    }
                    let candidate = try activate(1, try binary(.add, columns(rows, 2), candidateInput))
                    // (1 - z) · candidate + z · h
                    newH = try newState(.add, try binary(.mul, try binary(.sub, try scalar(1, "one"), z), candidate), try binary(.mul, z, h))
                    newC = newH
                case .lstm:
                    let gates = try binary(.add, rows, try matmul(h, rd))
                    func peep(_ index: Int, _ cellState: View) throws(NeuronCompilerError) -> View? {
                        guard let peepholes else { return nil }
                        var p = peepholes
                        p.offset += index * hidden * peepholes.strides[0]
                        p.dims = [hidden]
                        return try binary(.mul, p, cellState)
                    }
                    let i: View, f: View, o: View
                    if peepholes == nil {
                        // i, o and f side by side (ONNX's gate order): one activation.
                        let iof = try activate(0, columns(gates, 0, count: 3))
                        (i, o, f) = (columns(iof, 0), columns(iof, 1), columns(iof, 2))
                    } else {
                        var iPre = columns(gates, 0), fPre = columns(gates, 2)
                        if let p = try peep(0, c) { iPre = try binary(.add, iPre, p) }
                        if let p = try peep(2, c) { fPre = try binary(.add, fPre, p) }
                        (i, f) = (try activate(0, iPre), try activate(0, fPre))
                        o = columns(gates, 1)
                    }
                    let candidate = try activate(1, columns(gates, 3))
                    newC = try binary(.add, try binary(.mul, f, c), try binary(.mul, i, candidate))
                    if peepholes == nil {
                        newH = try newState(.mul, o, try activate(2, newC))
                    } else {
                        var oPre = o
                        if let p = try peep(1, newC) { oPre = try binary(.add, oPre, p) }
                        newH = try newState(.mul, try activate(0, oPre), try activate(2, newC))
                    }
                }
                var outH = newH
                if let lengths {
                    // Past a sequence's end: its state stays, its output is 0.
                    let running = try compare(.lt, try weightView(.make(.int64, [], [Double(t)]), name: "\(current.name)#t\(t)"), lengths)
                    h = try select(running, newH, h)
                    if cell == .lstm { c = try select(running, newC, c) }
                    outH = try select(running, newH, try scalar(0, "zero"))
                } else {
                    h = newH
                    c = newC
                }
                if wantsY && outH != target { emit(.copy, [target, outH]) }
            }
            lastH.append(h)
            lastC.append(c)
        }
        // Y [steps, directions, batch, hidden] (layout 1: [batch, steps,
        // directions, hidden]); Y_h and Y_c [directions, batch, hidden]
        // (layout 1: [batch, directions, hidden]).
        if wantsY { set(0, .tensor(layout == 1 ? y.permuted([2, 0, 1, 3]) : y)) }
        for (index, states) in [(1, lastH), (2, lastC)] where current.outputs.count > index && !current.outputs[index].isEmpty {
            guard index == 1 || cell == .lstm else { continue }
            let joined = try concat(try states.map { (s: View) throws(NeuronCompilerError) -> View in
                try reshapeView(s, to: [1, batch, hidden])
            }, axis: 0)
            set(index, .tensor(layout == 1 ? joined.permuted([1, 0, 2]) : joined))
        }
    }

    /// CausalConvWithState: a depthwise 1-D convolution over the input
    /// after the past state (or zeros), as one multiply-add per tap over the
    /// shifted sequence (the weights may be computed); the bias and
    /// SiLU after; the last k − 1 steps of the padded input are the new
    /// state.
    func lowerCausalConv() throws(NeuronCompilerError) {
        let x = try floatTensor(0), w = try floatTensor(1)
        guard x.rank == 3, w.rank == 3, w.dims[0] == x.dims[1], w.dims[1] == 1, w.dims[2] >= 1 else {
            throw shapeError("input \(x.dims) and weight \(w.dims) must be [batch, channels, length] and [channels, 1, k]")
        }
        let (batch, channels, length, k) = (x.dims[0], x.dims[1], x.dims[2], w.dims[2])
        let padded = try temp(.float32, [batch, channels, length + k - 1])
        if k > 1 {
            let head = slab(padded, axis: 2, from: 0, count: k - 1)
            if hasInput(3) {
                let past = try floatTensor(3)
                guard past.dims == [batch, channels, k - 1] else {
                    throw shapeError("past_state is \(past.dims); it must be [\(batch), \(channels), \(k - 1)]")
                }
                emit(.copy, [head, past])
            } else {
                emit(.fill(0), [head])
            }
        }
        emit(.copy, [slab(padded, axis: 2, from: k - 1, count: length), x])
        var out: View?
        for tap in 0..<k {
            let weight = View(buffer: w.buffer, type: w.type, offset: w.offset + tap * w.strides[2], dims: [1, channels, 1],
                              strides: [0, w.strides[0], 0])
            let term = try binary(.mul, slab(padded, axis: 2, from: tap, count: length), weight)
            if let sum = out { out = try binary(.add, sum, term) } else { out = term }
        }
        guard var y = out else { throw invalid("the kernel is empty") }
        if hasInput(2) {
            let bias = try floatTensor(2)
            guard bias.count == channels else { throw shapeError("bias has \(bias.count) values for \(channels) channels") }
            y = try binary(.add, y, try reshapeView(bias, to: [1, channels, 1]))
        }
        switch try string("activation", "none") {
        case "none": break
        case "silu", "swish": y = try binary(.mul, y, try apply(.sigmoid, y))
        case let other: throw unsupported("activation=\(other); none, silu and swish are supported")
        }
        set(0, .tensor(y))
        if current.outputs.count > 1, !current.outputs[1].isEmpty {
            set(1, .tensor(copied(slab(padded, axis: 2, from: length, count: k - 1))))
        }
    }
}
