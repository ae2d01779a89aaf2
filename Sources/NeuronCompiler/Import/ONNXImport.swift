import Foundation
import SwiftProtobuf

/// Reads an ONNX model (protobuf, opset 13 and newer) into a `Graph`:
/// initializers and Constant nodes become constants (external data files
/// read from the model's directory), attributes are typed, and every
/// node's inputs must exist before it. Errors name the node, the
/// attribute or the tensor, and say what is wrong.
public enum ONNXImporter {
    /// The oldest default-domain opset taken.
    public static let minimumOpset = 13

    /// Import the model at `path`.
    public static func load(contentsOf path: String) throws(NeuronCompilerError) -> Graph {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw NeuronCompilerError(.unreadable, "cannot read \(path): \(error.localizedDescription)")
        }
        let directory = (path as NSString).deletingLastPathComponent
        return try load(data, name: path, directory: directory.isEmpty ? "." : directory)
    }

    /// Import a serialized model; external data is looked up in `directory`.
    public static func load(_ data: Data, name: String = "the model", directory: String? = nil)
        throws(NeuronCompilerError) -> Graph {
        let model: Onnx_ModelProto
        do {
            model = try Onnx_ModelProto(serializedBytes: data)
        } catch BinaryDecodingError.invalidUTF8 {
            // A protobuf string field (a value name, a node name, a string
            // attribute) holds bytes that are not UTF-8, which ONNX requires.
            throw NeuronCompilerError(.invalidModel, "\(name) holds a name or string attribute that is not UTF-8 text; ONNX strings must be UTF-8: rename the value in the exporting code (or with onnx.helper) and export again")
        } catch {
            throw NeuronCompilerError(.unreadable, "\(name) is not an ONNX model (\(error)); neuron-cc reads the .onnx files that torch.onnx.export and tf2onnx write")
        }
        guard model.hasGraph else {
            throw NeuronCompilerError(.invalidModel, "\(name) has no graph")
        }
        var opset: Int?
        for entry in model.opsetImport where entry.domain.isEmpty || entry.domain == "ai.onnx" {
            opset = Int(entry.version)
        }
        guard let opset else {
            throw NeuronCompilerError(.invalidModel, "\(name) imports no opset of the default ONNX domain")
        }
        guard opset >= minimumOpset else {
            throw NeuronCompilerError(.unsupported, "\(name) uses opset \(opset); neuron-cc takes opset \(minimumOpset) and newer: convert it with onnx.version_converter.convert_version(model, \(minimumOpset)), or export again with opset_version=\(minimumOpset) or later")
        }
        return try GraphReader(directory: directory, opset: opset).read(model.graph, subgraphOf: nil)
    }
}

/// The conversion of one GraphProto.
struct GraphReader {
    var directory: String?
    var opset: Int

    /// The model's graph (`subgraphOf` nil), or a subgraph (an attribute's)
    /// that may read the values its enclosing graphs name.
    func read(_ proto: Onnx_GraphProto, subgraphOf enclosing: Set<String>?) throws(NeuronCompilerError) -> Graph {
        let outer = enclosing ?? []
        var constants: [String: ConstantTensor] = [:]
        for tensor in proto.initializer {
            guard !tensor.name.isEmpty else {
                throw NeuronCompilerError(.invalidModel, "an initializer has no name")
            }
            constants[tensor.name] = try constant(tensor, what: "initializer \(tensor.name)")
        }
        var inputs: [ValueInfo] = []
        for info in proto.input where constants[info.name] == nil {
            inputs.append(try valueInfo(info, what: "input"))
        }
        var outputs: [ValueInfo] = []
        for info in proto.output { outputs.append(try valueInfo(info, what: "output")) }

        var known = Set(inputs.map(\.name)).union(constants.keys)
        // A subgraph's own formal inputs count even when an initializer shares the name.
        if enclosing != nil { known.formUnion(proto.input.map(\.name)) }
        var nodes: [Node] = []
        for (index, proto) in proto.node.enumerated() {
            var node = Node(name: proto.name.isEmpty ? "#\(index)" : proto.name, op: proto.opType,
                            domain: proto.domain, inputs: proto.input, outputs: proto.output)
            for attribute in proto.attribute {
                node.attributes[attribute.name] = try value(of: attribute, in: node, scope: known.union(outer))
            }
            guard node.domain.isEmpty || node.domain == "ai.onnx" else {
                throw NeuronCompilerError(.unsupported, "node \(node.label) is in domain \(node.domain); neuron-cc compiles the default ONNX domain only")
            }
            for input in node.inputs where !input.isEmpty && !known.contains(input) && !outer.contains(input) {
                throw NeuronCompilerError(.invalidModel, "node \(node.label) reads \(input), which no input, initializer or earlier node provides (the nodes must be in topological order)")
            }
            for output in node.outputs where !output.isEmpty {
                guard !known.contains(output) else {
                    throw NeuronCompilerError(.invalidModel, "node \(node.label) writes \(output), which already has a value")
                }
                known.insert(output)
            }
            // A Constant node is a constant.
            if node.op == "Constant" {
                guard let output = node.outputs.first else {
                    throw NeuronCompilerError(.invalidModel, "node \(node.label) has no output")
                }
                constants[output] = try constantValue(of: node)
                continue
            }
            nodes.append(node)
        }
        for output in outputs where !known.contains(output.name) && !outer.contains(output.name) {
            throw NeuronCompilerError(.invalidModel, "the graph output \(output.name) is produced by no node")
        }
        return Graph(name: proto.name, opset: opset, inputs: inputs, outputs: outputs, constants: constants, nodes: nodes)
    }

    /// The value of a Constant node, from whichever attribute it uses.
    func constantValue(of node: Node) throws(NeuronCompilerError) -> ConstantTensor {
        guard node.attributes.count == 1, let (name, value) = node.attributes.first else {
            throw NeuronCompilerError(.invalidModel, "node \(node.label) must have exactly one value attribute")
        }
        func bytes<T>(_ values: [T]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }
        switch (name, value) {
        case ("value", .tensor(let tensor)):
            return tensor
        case ("value_float", .float(let value)):
            return ConstantTensor(type: .float32, shape: [], bytes: bytes([value]))
        case ("value_floats", .floats(let values)):
            return ConstantTensor(type: .float32, shape: [values.count], bytes: bytes(values))
        case ("value_int", .int(let value)):
            return ConstantTensor(type: .int64, shape: [], bytes: bytes([Int64(value)]))
        case ("value_ints", .ints(let values)):
            return ConstantTensor(type: .int64, shape: [values.count], bytes: bytes(values.map(Int64.init)))
        default:
            throw NeuronCompilerError(.unsupported, "node \(node.label): attribute \(name) of this kind is not supported (value, value_float, value_floats, value_int and value_ints are)")
        }
    }

    func value(of attribute: Onnx_AttributeProto, in node: Node, scope: Set<String> = []) throws(NeuronCompilerError) -> AttributeValue {
        let what = "attribute \(attribute.name) of node \(node.label)"
        switch attribute.type {
        case .float: return .float(attribute.f)
        case .int: return .int(Int(attribute.i))
        case .string: return .string(String(decoding: attribute.s, as: UTF8.self))
        case .tensor: return .tensor(try constant(attribute.t, what: what))
        case .floats: return .floats(attribute.floats)
        case .ints: return .ints(attribute.ints.map { Int($0) })
        case .strings: return .strings(attribute.strings.map { String(decoding: $0, as: UTF8.self) })
        case .graph: return .graph(try read(attribute.g, subgraphOf: scope))
        case .graphs: return .graphs
        default:
            throw NeuronCompilerError(.unsupported, "\(what) has type \(attribute.type), which neuron-cc does not take")
        }
    }

    func valueInfo(_ info: Onnx_ValueInfoProto, what: String) throws(NeuronCompilerError) -> ValueInfo {
        guard case .tensorType(let tensorType)? = info.type.value else {
            throw NeuronCompilerError(.unsupported, "\(what) \(info.name) is not a tensor (sequences, maps and optionals are not supported)")
        }
        let type = try elementType(tensorType.elemType, what: "\(what) \(info.name)")
        guard tensorType.hasShape else { return ValueInfo(name: info.name, type: type, shape: nil) }
        var shape: [Dimension] = []
        for dim in tensorType.shape.dim {
            switch dim.value {
            case .dimValue(let value)?:
                guard value >= 0 else {
                    throw NeuronCompilerError(.invalidModel, "\(what) \(info.name) has dimension \(value)")
                }
                shape.append(.fixed(Int(value)))
            case .dimParam(let name)?: shape.append(.open(name))
            case nil: shape.append(.open(""))
            }
        }
        return ValueInfo(name: info.name, type: type, shape: shape)
    }

    func elementType(_ code: Int32, what: String) throws(NeuronCompilerError) -> ElementType {
        switch Onnx_TensorProto.DataType(rawValue: Int(code)) {
        case .float?: return .float32
        case .float16?: return .float16
        case .bfloat16?: return .bfloat16
        case .double?: return .float64
        case .int8?: return .int8
        case .uint8?: return .uint8
        case .int16?: return .int16
        case .uint16?: return .uint16
        case .int32?: return .int32
        case .uint32?: return .uint32
        case .int64?: return .int64
        case .uint64?: return .uint64
        case .bool?: return .bool
        case .float8E4M3Fn?: return .float8E4M3FN
        case .float8E4M3Fnuz?: return .float8E4M3FNUZ
        case .float8E5M2?: return .float8E5M2
        case .float8E5M2Fnuz?: return .float8E5M2FNUZ
        case .float8E8M0?: return .float8E8M0
        case .float4E2M1?: return .float4E2M1
        case .int4?: return .int4
        case .uint4?: return .uint4
        case .int2?: return .int2
        case .uint2?: return .uint2
        default:
            let name = Onnx_TensorProto.DataType(rawValue: Int(code)).map { "\($0)" } ?? "\(code)"
            throw NeuronCompilerError(.unsupported, "\(what) has element type \(name); neuron-cc takes float, float16, bfloat16, double, bool, the integer types (of 2 to 64 bits), float8 and float4")
        }
    }

    /// A TensorProto's elements, from its typed field, raw_data or an external file.
    func constant(_ tensor: Onnx_TensorProto, what: String) throws(NeuronCompilerError) -> ConstantTensor {
        let type = try elementType(tensor.dataType, what: what)
        var shape: [Int] = []
        var count = 1
        for dim in tensor.dims {
            guard dim >= 0, dim <= Int64(Int32.max) else {
                throw NeuronCompilerError(.invalidModel, "\(what) has dimension \(dim)")
            }
            let (product, overflow) = count.multipliedReportingOverflow(by: Int(dim))
            guard !overflow, product <= 1 << 34 else {
                throw NeuronCompilerError(.invalidModel, "\(what) has \(tensor.dims) elements, too many")
            }
            count = product
            shape.append(Int(dim))
        }
        // Four- and two-bit types are packed in the file, the first element
        // in the low bits of a byte; here they take a byte each.
        let perByte = type == .int4 || type == .uint4 || type == .float4E2M1 ? 2 : type == .int2 || type == .uint2 ? 4 : 1
        let expected = perByte == 1 ? count * type.size : (count + perByte - 1) / perByte
        var bytes: [UInt8]
        if tensor.dataLocation == .external {
            bytes = try externalBytes(tensor, what: what, expected: expected)
        } else if !tensor.rawData.isEmpty {
            bytes = Array(tensor.rawData)
        } else {
            switch type {
            case .float32: bytes = tensor.floatData.withUnsafeBytes { Array($0) }
            case .float64: bytes = tensor.doubleData.withUnsafeBytes { Array($0) }
            case .int64: bytes = tensor.int64Data.withUnsafeBytes { Array($0) }
            case .uint32: bytes = tensor.uint64Data.map { UInt32(truncatingIfNeeded: $0) }.withUnsafeBytes { Array($0) }
            case .uint64: bytes = tensor.uint64Data.withUnsafeBytes { Array($0) }
            case .int32: bytes = tensor.int32Data.withUnsafeBytes { Array($0) }
            case .int16, .uint16, .float16, .bfloat16:
                bytes = tensor.int32Data.map { UInt16(truncatingIfNeeded: $0) }.withUnsafeBytes { Array($0) }
            case .int8, .uint8, .bool, .float8E4M3FN, .float8E4M3FNUZ, .float8E5M2, .float8E5M2FNUZ, .float8E8M0,
                 .float4E2M1, .int4, .uint4, .int2, .uint2:
                bytes = tensor.int32Data.map { UInt8(truncatingIfNeeded: $0) }
            }
        }
        guard bytes.count == expected else {
            throw NeuronCompilerError(.invalidModel, "\(what) holds \(bytes.count) bytes; \(type) \(shape) takes \(expected)")
        }
        if perByte > 1 { bytes = Self.unpack(bytes, count: count, type: type) }
        return ConstantTensor(type: type, shape: shape, bytes: bytes)
    }

    /// `count` elements of four or two bits, packed low bits first, one
    /// per byte (a signed integer sign-extended, as the engine keeps them).
    static func unpack(_ packed: [UInt8], count: Int, type: ElementType) -> [UInt8] {
        let bits = type.bitWidth, perByte = 8 / bits
        return (0..<count).map { index in
            UInt8(truncatingIfNeeded: type.extendedBits(UInt64(packed[index / perByte] >> UInt8(index % perByte * bits))))
        }
    }

    /// The bytes of a tensor stored outside the model (`location`, `offset`, `length`).
    func externalBytes(_ tensor: Onnx_TensorProto, what: String, expected: Int) throws(NeuronCompilerError) -> [UInt8] {
        var fields: [String: String] = [:]
        for entry in tensor.externalData { fields[entry.key] = entry.value }
        guard let location = fields["location"], !location.isEmpty else {
            throw NeuronCompilerError(.invalidModel, "\(what) is stored externally but names no location")
        }
        guard !location.hasPrefix("/"), !location.split(separator: "/").contains("..") else {
            throw NeuronCompilerError(.invalidModel, "\(what) is stored in \(location); external data must be a relative path inside the model's directory")
        }
        guard let directory else {
            throw NeuronCompilerError(.unreadable, "\(what) is stored in \(location), and the model was not read from a file: load it with its path")
        }
        let offset = Int(fields["offset"] ?? "0"), length = fields["length"].map { Int($0) } ?? expected
        guard let offset, let length, offset >= 0, length >= 0 else {
            throw NeuronCompilerError(.invalidModel, "\(what): external offset \(fields["offset"] ?? "") or length \(fields["length"] ?? "") is not a byte count")
        }
        let path = "\(directory)/\(location)"
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw NeuronCompilerError(.unreadable, "\(what) is stored in \(path), which cannot be opened; keep the data file next to the model")
        }
        defer { try? handle.close() }
        do {
            let size = try handle.seekToEnd()
            guard UInt64(offset) + UInt64(length) <= size else {
                throw NeuronCompilerError(.invalidModel, "\(what) is \(length) bytes at offset \(offset) of \(path), which has \(size)")
            }
            try handle.seek(toOffset: UInt64(offset))
            return Array(try handle.read(upToCount: length) ?? Data())
        } catch let error as NeuronCompilerError {
            throw error
        } catch {
            throw NeuronCompilerError(.unreadable, "reading \(what) from \(path): \(error.localizedDescription)")
        }
    }
}
