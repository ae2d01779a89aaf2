import Foundation
import NeuronISA

/// Why an array cannot be written as, or read from, a .npy file.
public struct NPYError: Error, CustomStringConvertible, Sendable, Equatable {
    public var message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}

/// NumPy's .npy files, version 1 to 3: little-endian arrays in C order of
/// every element type the engine has (bfloat16, float8 and float4 travel as
/// float32, int4 and int2 as int8, uint4 and uint2 as uint8: numpy has none).
public enum NPY {
    public struct Array: Equatable, Sendable {
        public var dtype: NeuronDType
        public var shape: [Int]
        /// Raw little-endian element bytes.
        public var bytes: [UInt8]

        public init(dtype: NeuronDType, shape: [Int], bytes: [UInt8]) {
            self.dtype = dtype
            self.shape = shape
            self.bytes = bytes
        }
    }

    /// numpy's type strings for each element type (bfloat16, float8, float4
    /// and the sub-byte integers have none: see NeuronDType.npyCarrier).
    static let descrs: [NeuronDType: String] = [
        .float32: "<f4", .float64: "<f8", .float16: "<f2", .int8: "|i1", .uint8: "|u1", .int16: "<i2",
        .uint16: "<u2", .int32: "<i4", .uint32: "<u4", .int64: "<i8", .uint64: "<u8", .bool: "|b1",
    ]

    static func descr(_ dtype: NeuronDType) -> String? { descrs[dtype] }

    /// The element type of a numpy type string: little-endian, or of one
    /// byte ('<', '|' or '=' on this little-endian machine).
    static func dtype(descr: String) -> NeuronDType? {
        guard let order = descr.first, "<|=".contains(order) else { return nil }
        let code = descr.dropFirst()
        return descrs.first { $0.value.dropFirst() == code }?.key
    }

    public static func encode(_ array: Array) throws(NPYError) -> [UInt8] {
        guard let descr = descr(array.dtype) else {
            throw NPYError("numpy has no \(array.dtype); convert it to \(array.dtype.npyCarrier) first")
        }
        let shape = array.shape.count == 1 ? "(\(array.shape[0]),)" : "(\(array.shape.map(String.init).joined(separator: ", ")))"
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shape), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var out: [UInt8] = [0x93] + Swift.Array("NUMPY".utf8) + [1, 0]
        let length = UInt16(header.utf8.count)
        out += [UInt8(length & 0xff), UInt8(length >> 8)]
        out += Swift.Array(header.utf8)
        return out + array.bytes
    }

    public static func decode(_ bytes: [UInt8], name: String = "array") throws(NPYError) -> Array {
        func bad(_ why: String) -> NPYError {
            NPYError("\(name) is not a usable .npy file: \(why)")
        }
        guard bytes.count >= 10, bytes[0] == 0x93, Swift.Array(bytes[1..<6]) == Swift.Array("NUMPY".utf8) else {
            throw bad("no .npy magic")
        }
        let major = bytes[6]
        let headerLength: Int
        let start: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            start = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw bad("truncated header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            start = 12
        default:
            throw bad("format version \(major)")
        }
        guard headerLength <= bytes.count - start else { throw bad("truncated header") }
        let header = String(decoding: bytes[start..<(start + headerLength)], as: UTF8.self)
        func value(of key: String) -> String? {
            guard let range = header.range(of: "'\(key)':") else { return nil }
            return String(header[range.upperBound...]).trimmingCharacters(in: .whitespaces)
        }
        guard let descrText = value(of: "descr"), let quote = descrText.dropFirst().firstIndex(of: "'") else {
            throw bad("no descr")
        }
        let descr = String(descrText[descrText.index(after: descrText.startIndex)..<quote])
        guard let dtype = dtype(descr: descr) else {
            // A valid file of a type the engine has not: say which, and what to do.
            let what = descr.hasPrefix(">") ? "big-endian \(descr)" : descr
            let hint = descr.dropFirst() == "V1"
                ? " (one-byte records: ml_dtypes' float8, float4 and int4 save so; numpy cannot read them back as such): "
                  + "save float8 and float4 as float32, int4 and int2 as int8, uint4 and uint2 as uint8"
                : ""
            throw NPYError("\(name) holds \(what) values\(hint); little-endian float16, float32, float64, int8 to int64, "
                           + "uint8 to uint64 and bool are taken: convert it, as np.save(path, x.astype(np.float32))")
        }
        guard let order = value(of: "fortran_order"), order.hasPrefix("False") else {
            throw bad("Fortran order; save it in C order (np.ascontiguousarray)")
        }
        guard let shapeText = value(of: "shape"), let open = shapeText.firstIndex(of: "("),
              let close = shapeText.firstIndex(of: ")") else { throw bad("no shape") }
        let dims = shapeText[shapeText.index(after: open)..<close].split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        var shape: [Int] = []
        for dim in dims {
            guard let number = Int(dim), number >= 0 else { throw bad("shape \(shapeText)") }
            shape.append(number)
        }
        var count = dtype.size
        for dim in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: dim)
            guard !overflow else { throw bad("shape \(shape) overflows") }
            count = product
        }
        let dataStart = start + headerLength
        guard bytes.count - dataStart == count else {
            throw bad("\(bytes.count - dataStart) data bytes for shape \(shape) of \(dtype) (\(count) expected)")
        }
        return Array(dtype: dtype, shape: shape, bytes: Swift.Array(bytes[dataStart...]))
    }
}
