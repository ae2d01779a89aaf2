import NeuronISA
import NeuronNEFF

/// What a node's value is while lowering: known at compile time, or a
/// view of a buffer the program computes.
enum LoweredValue {
    case constant(ConstantTensor)
    case tensor(View)

    var shape: [Int] {
        switch self {
        case .constant(let tensor): tensor.shape
        case .tensor(let view): view.dims
        }
    }
}

/// How a convolution's weights are laid out for the engine.
enum ConvWeights: Equatable {
    case given          // [Co, Ci/g, Kh, Kw], as the model has them
    case packed         // NEURON_CONV_PACKED: [ceil(Co/6), Ci, Kh, Kw, 6]
    case winograd(tile: Int)    // NEURON_CONV_WINOGRAD: U, [(tile + 2)², ceil(Co/6), Ci, 6]
    case bf16Pairs      // NEURON_CONV_BF16_PAIRS: [Co, Ci/g, Kh, Kw] in bf16 (--auto-cast all)

    /// The output tile of a Winograd layout (2 or 4), nil for the others.
    var winogradTile: Int? {
        if case .winograd(let tile) = self { return tile }
        return nil
    }
}

/// One instruction before buffers have addresses; operands[0] is the output.
struct AbstractOp {
    enum Kind {
        case copy
        case fill(Float)
        case unary(NeuronUnaryOp, alpha: Float)
        case binary(NeuronBinaryOp)
        /// `pairs`: in bfloat16 pairs (--auto-cast; ISA 1.9); `relu` and
        /// `clamp` after the bias, as CONV2D's (ISA 1.13).
        case matmul(bias: Bool, pairs: Bool = false, panels: Bool = false, relu: Bool = false, clamp: Float? = nil)
        case reduce(NeuronReduceOp)
        /// ARGMAX or ARGMIN into int64, the last of equal extremes when `last`.
        case reduceIndex(NeuronReduceOp, last: Bool)
        /// The indices (int64) of each row's first k, in order (ISA 1.7).
        case topK(NeuronTopKOp)
        case compare(NeuronCompareOp)
        case select
        case softmax
        /// Into float8, `saturate` false overflows to infinity or NaN; into E8M0, rounded by `e8m0`.
        case cast(wrap: Bool, saturate: Bool = true, e8m0: NeuronE8M0Rounding = .nearest)
        case gather
        /// operands[0][operands[1][i]] op= operands[2][i] in order; it reads operands[0] too.
        case scatter(NeuronScatterOp)
        case layerNorm(epsilon: Float)
        case conv(NeuronWindow, bias: Bool, relu: Bool, clamp: Float?, weights: ConvWeights, accumulate: Bool)
        case pool(NeuronPoolOp, kernel: (h: Int, w: Int), window: NeuronWindow, countPadding: Bool)
    }
    var kind: Kind
    var operands: [View]
    /// The node it came from, for reports.
    var node: String
    /// That node's index in `Lowering.layers` (the NEFF's debug section).
    var layer: Int
}

/// A buffer the program reads or writes.
struct CompilerBuffer {
    enum Kind: Equatable {
        case weights            // the weight blob (one NEFF weight tensor)
        case input(String)
        case output(String)
        case temp               // planned into the scratch arena
    }
    var kind: Kind
    var bytes: Int
}

/// Lowers a graph, node by node, to abstract instructions over buffers:
/// shape inference and constant folding happen on the way (every shape
/// is known once the inputs' are).
final class Lowering {
    let graph: Graph
    var values: [String: LoweredValue] = [:]
    var buffers: [CompilerBuffer] = [CompilerBuffer(kind: .weights, bytes: 0)]
    var weightBlob: [UInt8] = []
    /// Constants already in the blob, by value name and engine type.
    var weightViews: [String: View] = [:]
    /// (byte offset, bytes) of every constant in the blob.
    var weightEntries: [(offset: Int, bytes: Int)] = []
    /// bf16 copies of f32 entries, by the entry's byte offset.
    var bf16Entries: [Int: Int] = [:]
    /// Matmul operands in bfloat16 (--auto-cast).
    var autoCast = AutoCast.none
    var autoCastOps = 0
    var autoCastConvolutions = 0
    /// Told of each 16th node lowered.
    var progress: (@Sendable (CompileProgress) -> Void)?
    var ops: [AbstractOp] = []
    /// Set by emit when an instruction would compute a non-empty result
    /// from an empty operand (step() refuses the node).
    var emptyOperand: String?
    /// Subgraphs inlined so far (each gets its own names), and how many
    /// more nodes they may add (Ops/ControlFlow.swift).
    var inlined = 0
    var inlineBudget = Lowering.maxInlinedNodes
    var folded = 0
    /// The node being lowered, for error messages.
    var current = Node(name: "", op: "", inputs: [], outputs: [])

    static let alignment = 64
    init(graph: Graph) {
        self.graph = graph
    }

    // MARK: Errors

    /// The most elements of a tensor (a NEFF's limit: 1 TiB of 8-byte elements).
    static let maxTensorElements = 1 << 37
    /// The most elements the compiler computes itself at compile time (a
    /// constant it folds or makes); larger ones are refused.
    static let maxFoldedElements = 1 << 26

    /// Elements of a constant of `shape` the compiler is about to make, or
    /// a clear refusal when there are too many to compute here.
    func foldedCount(_ shape: [Int], what: String) throws(NeuronCompilerError) -> Int {
        guard let count = NEFFTensor.elementCount(of: shape), count <= Self.maxFoldedElements else {
            throw unsupported("\(what) of shape \(shape) would be computed at compile time, and has more than \(Self.maxFoldedElements) elements")
        }
        return count
    }

    func unsupported(_ message: String) -> NeuronCompilerError {
        NeuronCompilerError(.unsupported, "node \(current.label): \(message)")
    }

    func shapeError(_ message: String) -> NeuronCompilerError {
        NeuronCompilerError(.shape, "node \(current.label): \(message)")
    }

    func invalid(_ message: String) -> NeuronCompilerError {
        NeuronCompilerError(.invalidModel, "node \(current.label): \(message)")
    }

    // MARK: Buffers and values

    /// A new tensor: every dimension 1 to 2^32-1 (an instruction's field),
    /// at most `maxTensorElements` in all. Shapes that ops compute from the
    /// model's bytes (Expand, Pad, Tile, Resize, broadcasts, windows) end
    /// here, so that none is bigger than a NeuronCore tensor can be.
    func newBuffer(_ kind: CompilerBuffer.Kind, type: NeuronDType, dims: [Int]) throws(NeuronCompilerError) -> View {
        if dims.contains(0), dims.allSatisfy({ (0...Int(UInt32.max)).contains($0) }) {
            // Empty: no instruction writes or reads it (emit drops them).
            buffers.append(CompilerBuffer(kind: kind, bytes: 0))
            return View(buffer: buffers.count - 1, type: type, dims: dims)
        }
        let count = try checkShape(dims, what: "a tensor")
        buffers.append(CompilerBuffer(kind: kind, bytes: count * type.size))
        return View(buffer: buffers.count - 1, type: type, dims: dims)
    }

    /// The elements of a tensor of shape `dims`, when a NeuronCore tensor
    /// can have it: every dimension 1 to 2^32-1, at most `maxTensorElements`.
    @discardableResult
    func checkShape(_ dims: [Int], what: String) throws(NeuronCompilerError) -> Int {
        guard dims.allSatisfy({ (1...Int(UInt32.max)).contains($0) }),
              let count = NEFFTensor.elementCount(of: dims), count <= Self.maxTensorElements else {
            throw shapeError("\(what) of shape \(dims) is needed: NeuronCore tensors have dimensions of 1 to \(UInt32.max) and at most \(Self.maxTensorElements) elements")
        }
        return count
    }

    func temp(_ type: NeuronDType, _ dims: [Int]) throws(NeuronCompilerError) -> View {
        try newBuffer(.temp, type: type, dims: dims)
    }

    /// A new tensor of `dims` for an elementwise result: channels last
    /// ([N, C, H, W] with strides [H·W·C, 1, W·C, C]) when an operand of
    /// those dims is (its axes of one element, which broadcasting gives
    /// stride 0, aside), so that the op runs over contiguous memory and
    /// its readers get the layout its producers chose; else row-major.
    func temp(_ type: NeuronDType, _ dims: [Int], layoutOf operands: [View]) throws(NeuronCompilerError) -> View {
        var out = try temp(type, dims)
        guard dims.count == 4, dims[1] > 1, dims[2] * dims[3] > 1 else { return out }
        let last = [dims[1] * dims[2] * dims[3], 1, dims[3] * dims[1], dims[1]]
        if operands.contains(where: { view in
            view.dims == dims && dims.indices.allSatisfy { dims[$0] == 1 || view.strides[$0] == last[$0] }
        }) {
            out.strides = last
        }
        return out
    }

    /// A new tensor of `view`'s shape (one that exists, so within bounds).
    func temp(_ type: NeuronDType, like view: View) -> View {
        buffers.append(CompilerBuffer(kind: .temp, bytes: max(1, view.count) * type.size))
        return View(buffer: buffers.count - 1, type: type, dims: view.dims)
    }

    /// One instruction. Over an empty result there is nothing to do, and
    /// it is dropped; a non-empty one from an empty operand (a MATMUL over
    /// an empty axis, ...) is refused by step().
    func emit(_ kind: AbstractOp.Kind, _ operands: [View]) {
        if operands.contains(where: { $0.dims.contains(0) }) {
            if let out = operands.first, !out.dims.contains(0) {
                emptyOperand = emptyOperand ?? "an operand of shape \(operands.first(where: { $0.dims.contains(0) })?.dims ?? [])"
            }
            return
        }
        ops.append(AbstractOp(kind: kind, operands: operands, node: current.name, layer: layer(of: current)))
    }

    /// The layers instructions came from, in the order they first emitted:
    /// a node of the graph (fused nodes as one), an input or an output.
    var layers: [NEFFDebugInfo.Layer] = []
    private var layerIndex: [String: Int] = [:]
    /// The layers each value's data comes from (through nodes that emit
    /// nothing, a Reshape, say): the edges of the debug section's graph.
    private var valueLayers: [String: Set<Int>] = [:]

    private func layer(of node: Node) -> Int {
        let key = node.op + "\u{0}" + node.name
        if let known = layerIndex[key] { return known }
        let origins = node.op == "input" || node.op == "output" ? [] : node.origins
        // An output's copy or cast reads the value of its name.
        let inputs = node.op == "output" ? (valueLayers[node.name] ?? []).sorted() : []
        layers.append(NEFFDebugInfo.Layer(name: node.name, op: node.op,
                                          nodes: origins.map { NEFFDebugInfo.Node(name: $0.name, op: $0.op) },
                                          inputs: inputs))
        layerIndex[key] = layers.count - 1
        return layers.count - 1
    }

    /// After `node` was lowered (its instructions from `firstOp` on): its
    /// layer reads the layers its inputs come from, and its outputs come
    /// from its layer, or, when it emitted nothing, from where its inputs do.
    private func recordEdges(_ node: Node, firstOp: Int) {
        let sources = node.reads.reduce(into: Set<Int>()) { $0.formUnion(valueLayers[$1] ?? []) }
        var produced = sources
        if ops.count > firstOp, let layer = ops.last?.layer {
            layers[layer].inputs = Array(Set(layers[layer].inputs).union(sources).subtracting([layer])).sorted()
            produced = [layer]
        }
        for output in node.outputs where !output.isEmpty { valueLayers[output] = produced }
    }

    /// The engine type of an element type: since ISA 1.4 each is its own.
    func engineType(_ type: ElementType, what: String) throws(NeuronCompilerError) -> NeuronDType {
        type
    }

    /// A constant placed in the weight blob: as `type` when given, else
    /// widened to what the float32 and integer ops take (float16 and
    /// float64 to float32, small integers and bool to int32, uint32 and
    /// uint64 to int64).
    func weightView(_ tensor: ConstantTensor, name: String, as wanted: NeuronDType? = nil) throws(NeuronCompilerError) -> View {
        if tensor.shape.contains(0) {   // empty: nothing is placed, nothing reads it
            return try newBuffer(.temp, type: wanted ?? tensor.type, dims: tensor.shape)
        }
        if !tensor.shape.isEmpty { try checkShape(tensor.shape, what: "the constant \(name)") }
        let type: NeuronDType
        if let wanted {
            type = wanted
        } else {
            switch tensor.type {
            case .float32, .float64, .float16: type = .float32
            case .bfloat16: type = .bfloat16
            case .int32, .int16, .int8, .uint8, .uint16, .bool: type = .int32
            case .int64, .uint32, .uint64: type = .int64
            case .float8E4M3FN, .float8E4M3FNUZ, .float8E5M2, .float8E5M2FNUZ, .float8E8M0, .float4E2M1: type = .float32
            case .int4, .uint4, .int2, .uint2: type = .int32
            }
        }
        let key = "\(name)#\(type.name)"
        let converted = tensor.type == type ? tensor : .make(type, tensor.shape, tensor.doubles())
        let bytes = converted.bytes
        // The same name reuses the entry only with the same values (a
        // lowering may name two different constants alike).
        if let view = weightViews[key], view.dims == tensor.shape {
            let start = view.offset * type.size
            if start + bytes.count <= weightBlob.count, weightBlob[start..<(start + bytes.count)].elementsEqual(bytes) { return view }
        }
        let view = View(buffer: 0, type: type, offset: appendWeight(bytes, size: type.size) / type.size,
                        dims: tensor.shape)
        weightViews[key] = view
        return view
    }

    /// Append bytes to the weight blob, aligned; their byte offset.
    func appendWeight(_ bytes: [UInt8], size: Int) -> Int {
        while weightBlob.count % Lowering.alignment != 0 { weightBlob.append(0) }
        let offset = weightBlob.count
        weightBlob += bytes.isEmpty ? [UInt8](repeating: 0, count: size) : bytes
        weightEntries.append((offset, max(bytes.count, size)))
        return offset
    }

    /// The weight entry holding byte `byte` of the blob.
    func weightEntry(containing byte: Int) -> (offset: Int, bytes: Int)? {
        weightEntries.last { $0.offset <= byte && byte < $0.offset + $0.bytes }
    }

    /// A strided view of a constant as a row-major copy in the blob, so
    /// that the engine reads it in rows (a Gemm's transposed weights take
    /// the vector kernel); other views as they are.
    func contiguousWeight(_ view: View) -> View {
        guard view.buffer == 0, view.strides != View.rowMajor(view.dims), view.count > 0 else { return view }
        let key = "#contiguous \(view.offset) \(view.dims) \(view.strides) \(view.type.name)"
        if let cached = weightViews[key] { return cached }
        let size = view.type.size
        var bytes = [UInt8](repeating: 0, count: view.count * size)
        weightBlob.withUnsafeBytes { source in
            bytes.withUnsafeMutableBytes { target in
                var index = [Int](repeating: 0, count: view.rank)
                for element in 0..<view.count {
                    var at = view.offset
                    for axis in 0..<view.rank { at += index[axis] * view.strides[axis] }
                    for byte in 0..<size { target[element * size + byte] = source[at * size + byte] }
                    var axis = view.rank - 1
                    while axis >= 0 {
                        index[axis] += 1
                        if index[axis] < view.dims[axis] { break }
                        index[axis] = 0
                        axis -= 1
                    }
                }
            }
        }
        let copy = View(buffer: 0, type: view.type, offset: appendWeight(bytes, size: size) / size, dims: view.dims)
        weightViews[key] = copy
        return copy
    }

    /// A constant matmul B `[K, N]` (float32, any strides) laid out in
    /// panels of 32 columns (ISA 1.11, `matmul(bPanels:)`):
    /// `[ceil(N/32), K, 32]`, zeros in the lanes past N, so that the engine
    /// reads each panel's rows in order. Once per view.
    func panelWeight(_ view: View) -> View {
        let key = "#panels \(view.offset) \(view.dims) \(view.strides)"
        if let cached = weightViews[key] { return cached }
        let (k, n) = (view.dims[0], view.dims[1]), width = NeuronProgram.matmulPanel
        let panels = (n + width - 1) / width
        var bytes = [UInt8](repeating: 0, count: panels * k * width * 4)
        weightBlob.withUnsafeBytes { source in
            bytes.withUnsafeMutableBytes { target in
                for row in 0..<k {
                    for column in 0..<n {
                        let from = (view.offset + row * view.strides[0] + column * view.strides[1]) * 4
                        let to = ((column / width * k + row) * width + column % width) * 4
                        for byte in 0..<4 { target[to + byte] = source[from + byte] }
                    }
                }
            }
        }
        let laid = View(buffer: 0, type: .float32, offset: appendWeight(bytes, size: 4) / 4, dims: [panels, k, width])
        weightViews[key] = laid
        return laid
    }

    /// A constant matmul B `[K, N]` (float32, any strides, K even) as
    /// bfloat16 pairs in panels of 32 columns (ISA 1.14,
    /// `matmul(bf16Pairs: true, bPanels: true)`): `[ceil(N/32), K/2, 64]`,
    /// element (k, n) at `[n / 32][k / 2][2·(n % 32) + k % 2]`, zeros past
    /// N, so that the engine reads its pairs in place (VDPBF16PS's and
    /// AMX's words) instead of packing them on every run. Once per view.
    func pairPanelWeight(_ view: View) -> View {
        let key = "#pair panels \(view.offset) \(view.dims) \(view.strides)"
        if let cached = weightViews[key] { return cached }
        let (k, n) = (view.dims[0], view.dims[1]), width = NeuronProgram.matmulPanel
        let panels = (n + width - 1) / width, pairs = (k + 1) / 2
        var bytes = [UInt8](repeating: 0, count: panels * pairs * 2 * width * 2)
        weightBlob.withUnsafeBytes { source in
            bytes.withUnsafeMutableBytes { target in
                for row in 0..<k {
                    for column in 0..<n {
                        let from = (view.offset + row * view.strides[0] + column * view.strides[1]) * 4
                        let bits = BFloat16.bits(Float(bitPattern: source.loadUnaligned(fromByteOffset: from, as: UInt32.self)))
                        let to = ((column / width * pairs + row / 2) * 2 * width + 2 * (column % width) + row % 2) * 2
                        target.storeBytes(of: bits.littleEndian, toByteOffset: to, as: UInt16.self)
                    }
                }
            }
        }
        let laid = View(buffer: 0, type: .bfloat16, offset: appendWeight(bytes, size: 4) / 2, dims: [panels, pairs, 2 * width])
        weightViews[key] = laid
        return laid
    }

    /// `view` with bfloat16 elements (auto-cast): a constant's bf16 copy in
    /// the blob (same geometry), or a cast of a computed tensor.
    func bfloat16(_ view: View) -> View {
        guard view.type == .float32 else { return view }
        if view.buffer == 0, let entry = weightEntry(containing: view.offset * 4) {
            let base: Int
            if let cached = bf16Entries[entry.offset] {
                base = cached
            } else {
                var halves: [UInt8] = []
                halves.reserveCapacity(entry.bytes / 2)
                weightBlob[entry.offset..<(entry.offset + entry.bytes)].withUnsafeBytes { raw in
                    for i in 0..<(entry.bytes / 4) {
                        let bits = BFloat16.bits(Float(bitPattern: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)))
                        withUnsafeBytes(of: bits.littleEndian) { halves += $0 }
                    }
                }
                base = appendWeight(halves, size: 2)
                bf16Entries[entry.offset] = base
            }
            var cast = view
            cast.type = .bfloat16
            cast.offset = base / 2 + (view.offset - entry.offset / 4)
            return cast
        }
        let out = temp(.bfloat16, like: view)
        emit(.cast(wrap: false), [out, view])
        return out
    }

    /// Input `index` of the current node as a view (constants go to the weight blob).
    func tensor(_ index: Int) throws(NeuronCompilerError) -> View {
        guard index < current.inputs.count, !current.inputs[index].isEmpty else {
            throw invalid("input \(index) is missing")
        }
        let name = current.inputs[index]
        switch values[name] {
        case .tensor(let view)?: return view
        case .constant(let tensor)?: return try weightView(tensor, name: name)
        case nil: throw invalid("input \(name) has no value")
        }
    }

    /// Input `index` as a view of its own type (a constant keeps its type,
    /// or takes `type` when given: the type of the tensor it meets).
    func typedTensor(_ index: Int, as type: NeuronDType? = nil) throws(NeuronCompilerError) -> View {
        guard index < current.inputs.count, !current.inputs[index].isEmpty else {
            throw invalid("input \(index) is missing")
        }
        let name = current.inputs[index]
        switch values[name] {
        case .tensor(let view)?: return view
        case .constant(let tensor)?: return try weightView(tensor, name: name, as: type ?? tensor.type)
        case nil: throw invalid("input \(name) has no value")
        }
    }

    /// Inputs `first` and `second` of one element type: a constant takes
    /// the type of the computed tensor it meets; two of different types
    /// are refused.
    func sameTyped(_ first: Int, _ second: Int) throws(NeuronCompilerError) -> (View, View) {
        let a: View, b: View
        if constant(first) != nil, constant(second) == nil {
            b = try typedTensor(second)
            a = try typedTensor(first, as: b.type)
        } else {
            a = try typedTensor(first)
            b = try typedTensor(second, as: a.type)
        }
        guard a.type == b.type else {
            throw invalid("inputs \(current.inputs[first]) and \(current.inputs[second]) are \(a.type.name) and \(b.type.name); \(current.op) takes one type")
        }
        return (a, b)
    }

    /// `view` as `type`: itself, or a CAST of it (saturating).
    func converted(_ view: View, to type: NeuronDType) -> View {
        guard view.type != type else { return view }
        let out = temp(type, like: view)
        emit(.cast(wrap: false), [out, view])
        return out
    }

    /// Input `index` as float32: float16 and bfloat16 widened (exactly).
    func widenedFloat(_ index: Int) throws(NeuronCompilerError) -> View {
        let view = try typedTensor(index, as: constant(index) != nil ? .float32 : nil)
        guard view.type == .float16 || view.type == .bfloat16 else { return try floatTensor(index) }
        let wide = temp(.float32, like: view)
        emit(.cast(wrap: false), [wide, view])
        return wide
    }

    /// Input `index` as a float32 view.
    func floatTensor(_ index: Int) throws(NeuronCompilerError) -> View {
        let view = try tensor(index)
        guard view.type == .float32 else {
            throw unsupported("input \(current.inputs[index]) is \(view.type.name); \(current.op) runs on float32 tensors")
        }
        return view
    }

    func value(_ index: Int) -> LoweredValue? {
        guard index < current.inputs.count, !current.inputs[index].isEmpty else { return nil }
        return values[current.inputs[index]]
    }

    func constant(_ index: Int) -> ConstantTensor? {
        if case .constant(let tensor)? = value(index) { return tensor }
        return nil
    }

    func hasInput(_ index: Int) -> Bool { index < current.inputs.count && !current.inputs[index].isEmpty }

    /// Integer constant input `index` (axes, shapes, pads), or an error.
    func integers(_ index: Int, what: String) throws(NeuronCompilerError) -> [Int] {
        guard let tensor = constant(index), let values = tensor.integers() else {
            throw unsupported("\(what) (input \(index)) must be a constant integer tensor, known at compile time")
        }
        return values
    }

    func shape(_ index: Int) throws(NeuronCompilerError) -> [Int] {
        guard let value = value(index) else { throw invalid("input \(index) is missing") }
        return value.shape
    }

    /// Output `output` of the current node is `value`; an empty view is
    /// an empty constant (nothing to compute, and every reader folds).
    func set(_ output: Int, _ value: LoweredValue) {
        guard output < current.outputs.count, !current.outputs[output].isEmpty else { return }
        if case .tensor(let view) = value, view.dims.contains(0) {
            values[current.outputs[output]] = .constant(ConstantTensor(type: view.type, shape: view.dims, bytes: []))
            return
        }
        values[current.outputs[output]] = value
    }

    /// A contiguous copy of `view` when it is not contiguous already.
    func contiguous(_ view: View) -> View {
        view.isContiguous ? view : copied(view)
    }

    /// A copy of `view` in a fresh buffer (an op whose result must not alias its input).
    func copied(_ view: View) -> View {
        let out = temp(view.type, like: view)
        emit(.copy, [out, view])
        return out
    }

    // MARK: Attributes

    /// Attribute `name` of the current node through `extract`, nil when
    /// absent, an error naming it when it has another type.
    func attribute<T>(_ name: String, _ kind: String, _ extract: (AttributeValue) -> T?) throws(NeuronCompilerError) -> T? {
        guard let value = current.attributes[name] else { return nil }
        guard let typed = extract(value) else { throw invalid("attribute \(name) must be \(kind)") }
        return typed
    }

    func int(_ name: String, _ fallback: Int) throws(NeuronCompilerError) -> Int {
        try attribute(name, "an int") { if case .int(let v) = $0 { v } else { nil } } ?? fallback
    }

    func float(_ name: String, _ fallback: Float) throws(NeuronCompilerError) -> Float {
        try attribute(name, "a float") { if case .float(let v) = $0 { v } else { nil } } ?? fallback
    }

    func ints(_ name: String) throws(NeuronCompilerError) -> [Int]? {
        try attribute(name, "a list of ints") { if case .ints(let v) = $0 { v } else { nil } }
    }

    func string(_ name: String, _ fallback: String) throws(NeuronCompilerError) -> String {
        try attribute(name, "a string") { if case .string(let v) = $0 { v } else { nil } } ?? fallback
    }

    /// `axis` of a tensor of `rank`, negative counting from the end.
    func axis(_ axis: Int, rank: Int, what: String = "axis") throws(NeuronCompilerError) -> Int {
        let resolved = axis < 0 ? axis + rank : axis
        guard (0..<rank).contains(resolved) else {
            throw invalid("\(what) \(axis) is outside a tensor of rank \(rank)")
        }
        return resolved
    }

    // MARK: The graph

    func run(inputShapes: [String: [Int]]) throws(NeuronCompilerError) {
        // The inputs' and outputs' names become the NEFF's tensor names as
        // they are: any text, once each.
        var named = Set<String>()
        for (what, value) in graph.inputs.map({ ("input", $0) }) + graph.outputs.map({ ("output", $0) }) {
            if let problem = NEFFModel.tensorNameProblem(value.name) {
                throw NeuronCompilerError(.unsupported, "the \(what) named \(value.name.debugDescription) \(problem); a NEFF tensor's name is 1 to \(NEFFModel.maxTensorNameBytes) bytes of UTF-8 without NUL")
            }
            guard named.insert(value.name).inserted else {
                throw NeuronCompilerError(.invalidModel, "the name \(value.name.debugDescription) is given to more than one of the graph's inputs and outputs (an output that is an input, or one listed twice); each needs its own name")
            }
        }
        for (name, constant) in graph.constants { values[name] = .constant(constant) }
        for name in inputShapes.keys where !graph.inputs.contains(where: { $0.name == name }) {
            throw NeuronCompilerError(.shape, "--input-shape names \(name), which is not an input; the inputs are \(graph.inputs.map(\.name).joined(separator: ", "))")
        }
        for input in graph.inputs {
            current = Node(name: input.name, op: "input", inputs: [], outputs: [])
            let type = try engineType(input.type, what: "input \(input.name)")
            var dims: [Int] = []
            if let given = inputShapes[input.name] {
                if let declared = input.shape {
                    guard declared.count == given.count else {
                        throw NeuronCompilerError(.shape, "--input-shape gives \(input.name) \(given.count) dimensions; the model declares \(declared.count) (\(declared.map(\.description).joined(separator: "x")))")
                    }
                    for (axis, dim) in declared.enumerated() {
                        if case .fixed(let fixed) = dim, fixed != given[axis] {
                            throw NeuronCompilerError(.shape, "--input-shape gives \(input.name) dimension \(axis) = \(given[axis]); the model fixes it at \(fixed)")
                        }
                    }
                }
                dims = given
            } else if let declared = input.shape {
                for dim in declared {
                    guard case .fixed(let value) = dim else {
                        throw NeuronCompilerError(.shape, "input \(input.name) has the open dimension \(dim) (\(declared.map(\.description).joined(separator: "x"))): give its shape with --input-shape \(input.name)=\(declared.map { if case .fixed(let v) = $0 { "\(v)" } else { "N" } }.joined(separator: "x"))")
                    }
                    dims.append(value)
                }
            } else {
                throw NeuronCompilerError(.shape, "input \(input.name) has no shape in the model: give it with --input-shape \(input.name)=DxDx...")
            }
            guard dims.count <= 6 else {
                throw NeuronCompilerError(.shape, "input \(input.name) is \(dims); NeuronCore tensors have at most 6 dimensions")
            }
            // An empty input holds nothing to read: it is known, and every
            // op that reads it folds (its type and shape still matter).
            if dims.contains(0) {
                guard dims.allSatisfy({ (0...Int(UInt32.max)).contains($0) }) else {
                    throw NeuronCompilerError(.shape, "input \(input.name) is \(dims); NeuronCore tensors have dimensions of at most \(UInt32.max)")
                }
                values[input.name] = .constant(ConstantTensor(type: type, shape: dims, bytes: []))
                continue
            }
            values[input.name] = .tensor(try newBuffer(.input(input.name), type: type, dims: dims))
        }
        for (index, node) in graph.nodes.enumerated() {
            if index % 16 == 0 { progress?(CompileProgress(stage: .lowering, done: index, total: graph.nodes.count)) }
            current = node
            let firstOp = ops.count
            try step(node)
            for output in node.outputs where !output.isEmpty && values[output] == nil {
                throw unsupported("output \(output) of \(node.op) is not supported")
            }
            recordEdges(node, firstOp: firstOp)
        }
        try bindOutputs()
    }

    /// One node: evaluated at compile time when its entry folds and its
    /// inputs are known (Folding.swift), else lowered by its entry.
    func step(_ node: Node) throws(NeuronCompilerError) {
        guard let op = ONNXOps.byName[node.op] else {
            throw NeuronCompilerError(.unsupported, "node \(node.label): neuron-cc does not compile \(node.op) yet; it compiles \(ONNXOps.names.joined(separator: ", "))")
        }
        if try fold(op) { return }
        guard let lower = op.lower else { throw unsupported("\(node.op) needs its inputs known at compile time") }
        // float16 and bfloat16 inputs of an op that computes in float32 are
        // widened for it (exactly), and its float32 results rounded back
        // to their type, as numpy and onnxruntime compute them. So are
        // bool and the integers of 16 bits and less, which float32 holds
        // exactly too (MaxPool of uint8, ReduceMax of bool); their results
        // go back by CAST (toward zero, saturating; nonzero is true).
        var widened: [String: LoweredValue] = [:]
        var narrow: NeuronDType?
        if !op.takes.isEmpty {
            for name in node.inputs.prefix(op.typedInputs) where !name.isEmpty {
                guard case .tensor(let view)? = values[name], !op.takes.contains(view.type) else { continue }
                if Self.exactInFloat32.contains(view.type), op.takes.contains(.float32) {
                    if widened[name] == nil {
                        widened[name] = values[name]
                        let wide = temp(.float32, like: view)
                        emit(.cast(wrap: false), [wide, view])
                        values[name] = .tensor(wide)
                    }
                    narrow = narrow ?? view.type
                    continue
                }
                let hint = view.type == .float64
                    ? " (NeuronCores compute float64 only in arithmetic, reductions, Exp, Log and Sqrt: cast it to float32 in the model, or export in float32)" : ""
                throw unsupported("input \(name) is \(view.type.name); \(node.op) runs on \(op.takes.map(\.name).joined(separator: " or ")) tensors\(hint)")
            }
        }
        emptyOperand = nil
        try checked { try lower(self) }
        if let emptyOperand {
            throw NeuronCompilerError(.shape, "node \(node.label): a non-empty result from \(emptyOperand) (empty tensors take part only where the result is empty too, or where the op folds)")
        }
        for (name, original) in widened { values[name] = original }
        guard let narrow else { return }
        for output in node.outputs where !output.isEmpty {
            guard case .tensor(let view)? = values[output], view.type == .float32 else { continue }
            let rounded = temp(narrow, like: view)
            emit(.cast(wrap: false), [rounded, view])
            values[output] = .tensor(rounded)
        }
    }

    /// The types other than float32 whose every value float32 holds
    /// exactly: those of 16 bits or fewer (float32's 24-bit significand
    /// and 8-bit exponent hold every value of each).
    static let exactInFloat32 = Set(NeuronDType.allCases.filter { $0.bitWidth <= 16 })

    /// Each buffer's first and last instruction (Int.max and -1 when none uses it).
    func lifetimes() -> (first: [Int], last: [Int]) {
        var first = [Int](repeating: Int.max, count: buffers.count), last = [Int](repeating: -1, count: buffers.count)
        for (index, op) in ops.enumerated() {
            for view in op.operands {
                first[view.buffer] = min(first[view.buffer], index)
                last[view.buffer] = max(last[view.buffer], index)
            }
        }
        return (first, last)
    }

    /// Every graph output gets its own buffer: the buffer that computed it
    /// when it is a whole temp, else a copy.
    func bindOutputs() throws(NeuronCompilerError) {
        var taken = Set<Int>()
        for output in graph.outputs {
            current = Node(name: output.name, op: "output", inputs: [], outputs: [])
            guard let value = values[output.name] else {
                throw NeuronCompilerError(.invalidModel, "the output \(output.name) has no value")
            }
            var view: View
            switch value {
            case .constant(let tensor) where tensor.shape.contains(0):
                // An empty output: declared in the NEFF, bound to no slot.
                values[output.name] = .constant(ConstantTensor(type: output.type, shape: tensor.shape, bytes: []))
                continue
            case .constant(let tensor): view = try weightView(tensor, name: output.name, as: output.type)
            case .tensor(let tensor): view = tensor
            }
            // The type the model declares (a float16 model computed in
            // float32, an Equal folded to bool, ...).
            if view.type != output.type {
                let cast = try newBuffer(.output(output.name), type: output.type, dims: view.dims)
                emit(.cast(wrap: true), [cast, view])
                values[output.name] = .tensor(cast)
                continue
            }
            guard view.rank <= 6, view.dims.allSatisfy({ $0 >= 1 }) else {
                throw shapeError("output \(output.name) is \(view.dims); NeuronCore tensors have at most 6 dimensions, each at least 1 (empty tensors are not supported)")
            }
            let buffer = buffers[view.buffer]
            if buffer.kind == .temp, view.offset == 0, View.rowMajor(view.dims) == view.strides,
               buffer.bytes == max(1, view.count) * view.type.size, !taken.contains(view.buffer) {
                buffers[view.buffer].kind = .output(output.name)
                taken.insert(view.buffer)
                values[output.name] = .tensor(view)
                continue
            }
            let out = try newBuffer(.output(output.name), type: view.type, dims: view.dims)
            emit(.copy, [out, view])
            values[output.name] = .tensor(out)
        }
    }
}
