import Foundation
import NeuronISA

/// Why an array cannot be written as, or read from, a .npy file.
public struct NPYError: Error, CustomStringConvertible, Sendable, Equatable {
    public var message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}

/// NumPy's .npy files, version 1 to 3: little-endian float32, int32 and
/// int64 arrays in C order (bfloat16 travels as float32: numpy has none).
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

    static func descr(_ dtype: NeuronDType) -> String? {
        switch dtype {
        case .float32: "<f4"
        case .int32: "<i4"
        case .int64: "<i8"
        case .bfloat16: nil
        }
    }

    public static func encode(_ array: Array) throws(NPYError) -> [UInt8] {
        guard let descr = descr(array.dtype) else {
            throw NPYError("numpy has no \(array.dtype); convert bfloat16 to float32 first")
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
        let dtype: NeuronDType
        switch descr {
        case "<f4", "|f4": dtype = .float32
        case "<i4", "|i4": dtype = .int32
        case "<i8", "|i8": dtype = .int64
        default:
            // A valid file of another dtype: say which, and what to do.
            let names = ["<f8": "float64", "<f2": "float16", "|i1": "int8", "|u1": "uint8", "|b1": "bool",
                         "<i2": "int16", "<u2": "uint16", "<u4": "uint32", "<u8": "uint64"]
            let what = names[descr].map { "\($0) (\(descr))" } ?? descr
            throw NPYError("\(name) holds \(what) values; float32, int32 and int64 (little-endian) are taken: "
                           + "convert it, as np.save(path, x.astype(np.float32))")
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
