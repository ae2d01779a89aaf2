import NeuronISA

/// If, Loop and Scan, inlined at compile time (a NeuronCore program has no
/// branches): If takes its branch when the condition is known, else computes
/// both branches and SELECTs each output; Loop is unrolled when its trip
/// count and each iteration's condition are known (they fold); Scan is
/// unrolled over its inputs' sequence axis, whose length the shapes give.
/// A subgraph reads the values around it by name, as ONNX allows.
extension ONNXOps {
    static let controlFlow: [ONNXOp] = [
        ONNXOp("If") { l in try l.lowerIf() },
        ONNXOp("Loop") { l in try l.lowerLoop() },
        ONNXOp("Scan") { l in try l.lowerScan() },
    ]
}

extension Lowering {
    /// Most nodes the unrolled bodies of a model may add, and most iterations of one loop.
    static let maxInlinedNodes = 200_000
    static let maxIterations = 65_536

    /// The graph attribute `name` of the current node.
    func subgraph(_ name: String) throws(NeuronCompilerError) -> Graph {
        guard case .graph(let body)? = current.attributes[name] else {
            throw invalid("the graph attribute \(name) is missing")
        }
        return body
    }

    /// `body`'s nodes lowered here, its inputs bound to `arguments` in
    /// order; the values of its outputs. Its own names are kept apart from
    /// the enclosing graph's; names it does not define are the enclosing
    /// graph's values.
    func inline(_ body: Graph, _ arguments: [LoweredValue]) throws(NeuronCompilerError) -> [LoweredValue] {
        guard arguments.count == body.inputs.count else {
            throw invalid("the subgraph takes \(body.inputs.count) inputs; \(arguments.count) are given")
        }
        let outer = current
        defer { current = outer }
        inlined += 1
        let scope = "\u{1}\(inlined)/"
        var renamed: [String: String] = [:]
        for (info, value) in zip(body.inputs, arguments) {
            renamed[info.name] = scope + info.name
            values[scope + info.name] = value
        }
        for (name, constant) in body.constants {
            renamed[name] = scope + name
            values[scope + name] = .constant(constant)
        }
        inlineBudget -= body.nodes.count
        guard inlineBudget >= 0 else {
            throw unsupported("unrolling the model's control flow takes more than \(Self.maxInlinedNodes) nodes")
        }
        for node in body.nodes {
            var inner = node
            inner.name = "\(outer.name)/\(node.name)"
            inner.inputs = node.inputs.map { renamed[$0] ?? $0 }
            for (key, attribute) in node.attributes {
                if case .graph(let nested) = attribute { inner.attributes[key] = .graph(nested.renamingCaptured(renamed)) }
            }
            for output in node.outputs where !output.isEmpty { renamed[output] = scope + output }
            inner.outputs = node.outputs.map { $0.isEmpty ? $0 : scope + $0 }
            current = inner
            try step(inner)
            for output in inner.outputs where !output.isEmpty && values[output] == nil {
                throw unsupported("output \(output) of \(inner.op) is not supported")
            }
        }
        var results: [LoweredValue] = []
        for output in body.outputs {
            guard let value = values[renamed[output.name] ?? output.name] else {
                throw invalid("the subgraph's output \(output.name) has no value")
            }
            results.append(value)
        }
        return results
    }

    /// A value as a view of its own type.
    func view(of value: LoweredValue, name: String) throws(NeuronCompilerError) -> View {
        switch value {
        case .tensor(let view): return view
        case .constant(let tensor): return try weightView(tensor, name: name, as: tensor.type)
        }
    }

    /// The one boolean of a known condition, or nil when it is computed at run time.
    func knownCondition(_ value: LoweredValue?) throws(NeuronCompilerError) -> Bool? {
        guard case .constant(let tensor)? = value else { return nil }
        guard tensor.count == 1 else { throw invalid("the condition has \(tensor.count) values; it must have one") }
        return tensor.doubles()[0] != 0
    }

    /// `parts` (values of one type and shape) stacked along a new axis `axis`.
    func stack(_ parts: [LoweredValue], axis: Int, what: String) throws(NeuronCompilerError) -> LoweredValue {
        var views: [View] = []
        for (index, part) in parts.enumerated() { views.append(try view(of: part, name: "\(current.name)#\(what)\(index)")) }
        guard let first = views.first else { throw unsupported("\(what) of no iterations has no shape") }
        guard views.allSatisfy({ $0.dims == first.dims && $0.type == first.type }) else {
            throw shapeError("\(what) changes shape or type between iterations (\(views.map(\.dims)))")
        }
        let a = try self.axis(axis, rank: first.rank + 1)
        var parted: [View] = []
        for view in views {
            var dims = view.dims
            dims.insert(1, at: a)
            parted.append(try reshapeView(contiguous(view), to: dims))
        }
        return .tensor(try concat(parted, axis: a))
    }

    func lowerIf() throws(NeuronCompilerError) {
        let thenBranch = try subgraph("then_branch"), elseBranch = try subgraph("else_branch")
        if let taken = try knownCondition(value(0)) {
            for (index, value) in try inline(taken ? thenBranch : elseBranch, []).enumerated() { set(index, value) }
            return
        }
        // Known only at run time: both branches, then a SELECT per output.
        let condition = try typedTensor(0)
        guard condition.type == .bool, condition.count == 1 else {
            throw invalid("the condition is \(condition.type.name) \(condition.dims); it must be one bool")
        }
        let a = try inline(thenBranch, []), b = try inline(elseBranch, [])
        guard a.count == b.count, a.count >= current.outputs.count else {
            throw invalid("the branches give \(a.count) and \(b.count) outputs for \(current.outputs.count)")
        }
        let flag = try reshapeView(condition, to: [])
        for index in current.outputs.indices {
            let x = try view(of: a[index], name: "\(current.name)#then\(index)")
            let y = try view(of: b[index], name: "\(current.name)#else\(index)")
            guard x.dims == y.dims, x.type == y.type else {
                throw unsupported("output \(index) is \(x.type.name) \(x.dims) in then_branch and \(y.type.name) \(y.dims) in else_branch; with a condition known only at run time both branches are computed and must agree")
            }
            set(index, .tensor(try select(flag, x, y)))
        }
    }

    /// Loop: inputs M (trip count), cond, then the loop-carried values; the
    /// body takes (iteration, cond, carried...) and gives (cond, carried...,
    /// scan outputs...). Unrolled while the trip count allows and the
    /// condition holds, each known at compile time.
    func lowerLoop() throws(NeuronCompilerError) {
        let body = try subgraph("body")
        let carried = max(0, current.inputs.count - 2)
        guard body.inputs.count == 2 + carried, body.outputs.count >= 1 + carried else {
            throw invalid("the body takes \(body.inputs.count) inputs and gives \(body.outputs.count) outputs for \(carried) loop-carried values")
        }
        var trips: Int?
        if hasInput(0) {
            guard let m = constant(0)?.integers(), m.count == 1 else {
                throw unsupported("the trip count M is computed at run time; neuron-cc unrolls a Loop whose trip count is known at compile time")
            }
            trips = max(0, m[0])
        }
        var running = true
        if hasInput(1) {
            guard let known = try knownCondition(value(1)) else {
                throw unsupported("the condition is computed at run time; neuron-cc unrolls a Loop whose condition is known at compile time")
            }
            running = known
        }
        var state: [LoweredValue] = []
        for index in 0..<carried {
            guard let value = value(2 + index) else { throw invalid("loop-carried input \(index) is missing") }
            state.append(value)
        }
        var scans = [[LoweredValue]](repeating: [], count: body.outputs.count - 1 - carried)
        var iteration = 0
        while running, trips.map({ iteration < $0 }) ?? true {
            guard iteration < Self.maxIterations else {
                throw unsupported("the Loop runs past \(Self.maxIterations) iterations at compile time")
            }
            let flag = ConstantTensor(type: .bool, shape: [], bytes: [1])
            let outputs = try inline(body, [.constant(.integers([iteration], shape: [])), .constant(flag)] + state)
            guard let next = try knownCondition(outputs[0]) else {
                throw unsupported("the condition the body gives in iteration \(iteration) is computed at run time; neuron-cc unrolls a Loop whose condition is known at compile time")
            }
            running = next
            state = Array(outputs[1..<(1 + carried)])
            for index in scans.indices { scans[index].append(outputs[1 + carried + index]) }
            iteration += 1
        }
        for (index, value) in state.enumerated() { set(index, value) }
        for (index, parts) in scans.enumerated() { set(carried + index, try stack(parts, axis: 0, what: "scan output \(index)")) }
    }

    /// Scan: the states, then num_scan_inputs sequences; the body takes
    /// (states..., one element of each sequence) and gives (states...,
    /// elements of the scan outputs). Unrolled over the sequence axis.
    func lowerScan() throws(NeuronCompilerError) {
        let body = try subgraph("body")
        let scanCount = try int("num_scan_inputs", 0)
        let stateCount = current.inputs.count - scanCount
        guard scanCount >= 1, stateCount >= 0, body.inputs.count == stateCount + scanCount,
              body.outputs.count >= stateCount else {
            throw invalid("num_scan_inputs \(scanCount) does not fit \(current.inputs.count) inputs and a body of \(body.inputs.count) inputs")
        }
        let directions = try ints("scan_input_directions") ?? [Int](repeating: 0, count: scanCount)
        let inputAxes = try ints("scan_input_axes") ?? [Int](repeating: 0, count: scanCount)
        let outputCount = body.outputs.count - stateCount
        let outputDirections = try ints("scan_output_directions") ?? [Int](repeating: 0, count: outputCount)
        let outputAxes = try ints("scan_output_axes") ?? [Int](repeating: 0, count: outputCount)
        guard directions.count == scanCount, inputAxes.count == scanCount, outputDirections.count == outputCount,
              outputAxes.count == outputCount else {
            throw invalid("the scan axes and directions must have one entry per scan input and output")
        }
        var sequences: [(view: View, axis: Int, reverse: Bool)] = []
        for index in 0..<scanCount {
            let x = try typedTensor(stateCount + index, as: constant(stateCount + index)?.type)
            sequences.append((x, try axis(inputAxes[index], rank: x.rank), directions[index] == 1))
        }
        let length = sequences[0].view.dims[sequences[0].axis]
        guard sequences.allSatisfy({ $0.view.dims[$0.axis] == length }) else {
            throw shapeError("the scan inputs' sequences differ in length (\(sequences.map { $0.view.dims[$0.axis] }))")
        }
        var state: [LoweredValue] = []
        for index in 0..<stateCount {
            guard let value = value(index) else { throw invalid("state input \(index) is missing") }
            state.append(value)
        }
        var scans = [[LoweredValue]](repeating: [], count: outputCount)
        for step in 0..<length {
            var elements: [LoweredValue] = []
            for (x, a, reverse) in sequences {
                var element = x
                element.offset += (reverse ? length - 1 - step : step) * x.strides[a]
                element.dims.remove(at: a)
                element.strides.remove(at: a)
                elements.append(.tensor(element))
            }
            let outputs = try inline(body, state + elements)
            state = Array(outputs[..<stateCount])
            for index in scans.indices { scans[index].append(outputs[stateCount + index]) }
        }
        for (index, value) in state.enumerated() { set(index, value) }
        for (index, parts) in scans.enumerated() {
            let ordered = outputDirections[index] == 1 ? Array(parts.reversed()) : parts
            set(stateCount + index, try stack(ordered, axis: outputAxes[index], what: "scan output \(index)"))
        }
    }
}

extension Graph {
    /// This subgraph with the names it reads from around it renamed by `map`
    /// (an enclosing body's values, which inlining renames), nested too.
    func renamingCaptured(_ map: [String: String]) -> Graph {
        var copy = self
        var defined = Set(inputs.map(\.name)).union(constants.keys)
        copy.nodes = nodes.map { node in
            var renamed = node
            renamed.inputs = node.inputs.map { defined.contains($0) ? $0 : map[$0] ?? $0 }
            for (key, attribute) in node.attributes {
                if case .graph(let nested) = attribute {
                    renamed.attributes[key] = .graph(nested.renamingCaptured(map.filter { !defined.contains($0.key) }))
                }
            }
            defined.formUnion(node.outputs)
            return renamed
        }
        copy.outputs = outputs.map { output in
            var renamed = output
            if !defined.contains(output.name), let name = map[output.name] { renamed.name = name }
            return renamed
        }
        return copy
    }
}
