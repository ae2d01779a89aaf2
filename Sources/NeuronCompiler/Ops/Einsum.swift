import NeuronISA

/// Einsum: each operand's repeated letters taken as a diagonal (a strided
/// view), letters no one else needs summed out, then operands combined
/// left to right as batched products: [batch, rows, inner] × [batch,
/// inner, columns], one MATMUL for float32 (bfloat16 and float16 widened),
/// a MUL and a REDUCE SUM for float64.
extension ONNXOps {
    static let einsum: [ONNXOp] = [
        ONNXOp("Einsum", takes: floats) { l in try l.lowerEinsum() },
    ]
}

/// One operand of an Einsum: a view and a letter for each of its axes.
private struct Labelled {
    var view: View
    var letters: [Character]
}

extension Lowering {
    func lowerEinsum() throws(NeuronCompilerError) {
        let equation = try string("equation", "")
        guard !equation.isEmpty || current.inputs.count == 1 else { throw invalid("the equation attribute is missing") }
        let inputs = try (0..<current.inputs.count).map { index throws(NeuronCompilerError) in try typedTensor(index) }
        guard !inputs.isEmpty else { throw invalid("Einsum needs at least one input") }
        let type = inputs[0].type
        guard inputs.allSatisfy({ $0.type == type }) else { throw invalid("Einsum's inputs must be of one type") }
        let (terms, given) = try parseEinsum(equation, ranks: inputs.map(\.rank))

        // Each letter's size; an axis of 1 broadcasts against a larger one.
        var size: [Character: Int] = [:]
        for (view, letters) in zip(inputs, terms) {
            for (axis, letter) in letters.enumerated() {
                let dim = view.dims[axis]
                if let known = size[letter], known != dim, known != 1, dim != 1 {
                    throw shapeError("Einsum \"\(equation)\": \(letter) is \(known) in one place and \(dim) in another")
                }
                size[letter] = max(size[letter] ?? 1, dim)
            }
        }
        let output = given ?? implicitOutput(terms)
        for letter in output where size[letter] == nil {
            throw invalid("Einsum \"\(equation)\": the output's \(letter) is in no input")
        }
        var operands = try zip(inputs, terms).map { view, letters throws(NeuronCompilerError) in
            try diagonal(Labelled(view: view, letters: letters), size: size)
        }
        // Sum out what only one operand has and the output does not.
        func needed(_ letter: Character, besides index: Int) -> Bool {
            output.contains(letter) || operands.indices.contains { $0 != index && operands[$0].letters.contains(letter) }
        }
        for index in operands.indices {
            operands[index] = try summed(operands[index]) { !needed($0, besides: index) }
        }
        var result = operands[0]
        for index in operands.indices.dropFirst() {
            let later = Set(output).union(operands[(index + 1)...].flatMap(\.letters))
            result = try product(result, operands[index], keep: later, size: size)
        }
        result = try summed(result) { !output.contains($0) }
        let perm = output.compactMap { result.letters.firstIndex(of: $0) }
        set(0, .tensor(copied(result.view.permuted(perm))))
    }

    /// The letters of each term (an ellipsis as digits, aligned right as
    /// numpy broadcasts) and the output's, nil when implicit.
    func parseEinsum(_ equation: String, ranks: [Int]) throws(NeuronCompilerError) -> ([[Character]], [Character]?) {
        let text = equation.filter { !$0.isWhitespace }
        let sides = text.components(separatedBy: "->")
        guard sides.count <= 2 else { throw invalid("Einsum \"\(equation)\": more than one ->") }
        let terms = sides[0].components(separatedBy: ",")
        guard terms.count == ranks.count else {
            throw invalid("Einsum \"\(equation)\" has \(terms.count) terms for \(ranks.count) inputs")
        }
        var ellipsis = 0
        for (term, rank) in zip(terms, ranks) where term.contains("...") {
            ellipsis = max(ellipsis, rank - term.replacingOccurrences(of: "...", with: "").count)
        }
        guard ellipsis <= 6 else { throw invalid("Einsum \"\(equation)\": the ellipsis spans too many axes") }
        let digits = Array("012345")
        func letters(_ term: String, rank: Int?) throws(NeuronCompilerError) -> [Character] {
            var out: [Character] = []
            let parts = term.components(separatedBy: "...")
            guard parts.count <= 2 else { throw invalid("Einsum \"\(equation)\": two ellipses in one term") }
            for char in parts[0] {
                guard char.isLetter, char.isASCII else { throw invalid("Einsum \"\(equation)\": \(char) is not a letter") }
                out.append(char)
            }
            if parts.count == 2 {
                let span = rank.map { $0 - parts[0].count - parts[1].count } ?? ellipsis
                guard span >= 0 else { throw invalid("Einsum \"\(equation)\": a term has more letters than its input has axes") }
                out += digits[(ellipsis - span)..<ellipsis]
                for char in parts[1] {
                    guard char.isLetter, char.isASCII else { throw invalid("Einsum \"\(equation)\": \(char) is not a letter") }
                    out.append(char)
                }
            }
            if let rank, out.count != rank {
                throw invalid("Einsum \"\(equation)\": a term has \(out.count) letters for an input of \(rank) axes")
            }
            return out
        }
        var parsed: [[Character]] = []
        for (term, rank) in zip(terms, ranks) { parsed.append(try letters(term, rank: rank)) }
        let output = sides.count == 2 ? try letters(sides[1], rank: nil) : nil
        if let output, Set(output).count != output.count {
            throw invalid("Einsum \"\(equation)\": the output names a letter twice")
        }
        return (parsed, output)
    }

    /// numpy's implicit output: the ellipsis, then the letters used once, sorted.
    private func implicitOutput(_ terms: [[Character]]) -> [Character] {
        var count: [Character: Int] = [:]
        for letter in terms.joined() { count[letter, default: 0] += 1 }
        let digits = Set("012345")
        let ellipsis = count.keys.filter { digits.contains($0) }.sorted()
        return ellipsis + count.filter { !digits.contains($0.key) && $0.value == 1 }.keys.sorted()
    }

    /// Repeated letters of one operand as its diagonal: one axis whose
    /// stride is the sum of theirs.
    private func diagonal(_ operand: Labelled, size: [Character: Int]) throws(NeuronCompilerError) -> Labelled {
        var letters: [Character] = [], dims: [Int] = [], strides: [Int] = []
        for (axis, letter) in operand.letters.enumerated() {
            let dim = operand.view.dims[axis], stride = dim == 1 ? 0 : operand.view.strides[axis]
            if let at = letters.firstIndex(of: letter) {
                guard dims[at] == dim else { throw shapeError("Einsum: the diagonal of \(letter) has axes of \(dims[at]) and \(dim)") }
                strides[at] += stride
            } else {
                letters.append(letter)
                dims.append(dim)
                strides.append(stride)
            }
        }
        return Labelled(view: View(buffer: operand.view.buffer, type: operand.view.type, offset: operand.view.offset,
                                   dims: dims, strides: strides), letters: letters)
    }

    /// `operand` with the letters `drop` says summed out.
    private func summed(_ operand: Labelled, drop: (Character) -> Bool) throws(NeuronCompilerError) -> Labelled {
        let axes = Set(operand.letters.indices.filter { drop(operand.letters[$0]) })
        guard !axes.isEmpty else { return operand }
        let kept = operand.letters.indices.filter { !axes.contains($0) }
        let reducedView = try reduce(.sum, operand.view, over: axes)
        return Labelled(view: try reshapeView(reducedView, to: kept.map { operand.view.dims[$0] }),
                        letters: kept.map { operand.letters[$0] })
    }

    /// a × b over the letters they share that `keep` lacks: as [batch,
    /// rows, inner] × [batch, inner, columns].
    private func product(_ a: Labelled, _ b: Labelled, keep: Set<Character>,
                         size: [Character: Int]) throws(NeuronCompilerError) -> Labelled {
        let a = try summed(a) { !keep.contains($0) && !b.letters.contains($0) }
        let b = try summed(b) { !keep.contains($0) && !a.letters.contains($0) }
        let batch = a.letters.filter { b.letters.contains($0) && keep.contains($0) }
        let inner = a.letters.filter { b.letters.contains($0) && !keep.contains($0) }
        let rows = a.letters.filter { !b.letters.contains($0) }
        let columns = b.letters.filter { !a.letters.contains($0) }
        func flat(_ operand: Labelled, _ groups: [[Character]]) throws(NeuronCompilerError) -> View {
            let order = groups.joined().compactMap { operand.letters.firstIndex(of: $0) }
            var view = operand.view.permuted(order)
            // Axes of 1 that meet a larger size broadcast.
            let full = groups.joined().map { size[$0] ?? 1 }
            for (axis, dim) in full.enumerated() where view.dims[axis] != dim {
                view.dims[axis] = dim
                view.strides[axis] = 0
            }
            return try reshapeView(contiguous(view), to: groups.map { $0.map { size[$0] ?? 1 }.reduce(1, *) })
        }
        let count = { (letters: [Character]) in letters.map { size[$0] ?? 1 }.reduce(1, *) }
        let (nb, nm, nk, nn) = (count(batch), count(rows), count(inner), count(columns))
        let x = try flat(a, [batch, rows, inner]), y = try flat(b, [batch, inner, columns])
        var out: View
        if a.view.type == .float32 {
            out = try matmul(x, y)
        } else {
            // [nb, nm, nn, nk] products, then the sum over nk.
            let xs = View(buffer: x.buffer, type: x.type, offset: x.offset, dims: [nb, nm, nn, nk],
                          strides: [x.strides[0], x.strides[1], 0, x.strides[2]])
            let ys = View(buffer: y.buffer, type: y.type, offset: y.offset, dims: [nb, nm, nn, nk],
                          strides: [y.strides[0], 0, y.strides[2], y.strides[1]])
            let products = try temp(x.type, [nb, nm, nn, nk])
            emit(.binary(.mul), [products, xs, ys])
            out = try reshapeView(try reduce(.sum, products, over: [3]), to: [nb, nm, nn])
        }
        let letters = batch + rows + columns
        guard letters.count <= 6 else { throw unsupported("Einsum: a product with more than 6 distinct axes") }
        return Labelled(view: try reshapeView(out, to: letters.map { size[$0] ?? 1 }), letters: letters)
    }
}
