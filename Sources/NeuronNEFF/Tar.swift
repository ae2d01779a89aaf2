/// A minimal ustar archive: regular files only, names up to 100 bytes,
/// what `tar` lists and extracts. The NEFF payload is one, so that any
/// tar can inspect a model (`tail -c +257 model.neff | tar tv`).
enum Tar {
    static let block = 512

    /// The archive of `files`, in order.
    static func write(_ files: [(name: String, bytes: [UInt8])]) -> [UInt8] {
        var out: [UInt8] = []
        for file in files {
            var header = [UInt8](repeating: 0, count: block)
            func put(_ text: String, at offset: Int, width: Int) {
                for (i, byte) in text.utf8.prefix(width).enumerated() { header[offset + i] = byte }
            }
            func octal(_ value: Int, at offset: Int, width: Int) {
                let digits = String(value, radix: 8)
                put(String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits, at: offset, width: width - 1)
            }
            put(file.name, at: 0, width: 100)
            octal(0o644, at: 100, width: 8)
            octal(0, at: 108, width: 8)
            octal(0, at: 116, width: 8)
            octal(file.bytes.count, at: 124, width: 12)
            octal(0, at: 136, width: 12)
            header[156] = UInt8(ascii: "0")
            put("ustar", at: 257, width: 6)
            put("00", at: 263, width: 2)
            for i in 148..<156 { header[i] = UInt8(ascii: " ") }
            let sum = header.reduce(0) { $0 + Int($1) }
            octal(sum, at: 148, width: 7)
            header[155] = UInt8(ascii: " ")
            out += header
            out += file.bytes
            out += [UInt8](repeating: 0, count: (block - file.bytes.count % block) % block)
        }
        out += [UInt8](repeating: 0, count: 2 * block)
        return out
    }

    /// The files of an archive, checked: header checksums, octal fields,
    /// sizes inside the archive, regular files, safe unique names.
    static func read(_ bytes: ArraySlice<UInt8>) throws(NEFFError) -> [(name: String, bytes: ArraySlice<UInt8>)] {
        var files: [(name: String, bytes: ArraySlice<UInt8>)] = []
        var names = Set<String>()
        var at = bytes.startIndex
        while true {
            guard bytes.endIndex - at >= block else {
                throw NEFFError(.payload, "the archive ends at byte \(at - bytes.startIndex) inside a header (truncated)")
            }
            let header = bytes[at..<(at + block)]
            if header.allSatisfy({ $0 == 0 }) { break }
            func field(_ offset: Int, _ width: Int) -> ArraySlice<UInt8> {
                header[(header.startIndex + offset)..<(header.startIndex + offset + width)]
            }
            func octal(_ offset: Int, _ width: Int, _ what: String) throws(NEFFError) -> Int {
                let text = String(decoding: field(offset, width).prefix { $0 != 0 && $0 != 0x20 }, as: UTF8.self)
                guard !text.isEmpty, text.count <= 11, let value = Int(text, radix: 8) else {
                    throw NEFFError(.payload, "archive entry at byte \(at - bytes.startIndex): bad \(what) field")
                }
                return value
            }
            let stored = try octal(148, 8, "checksum")
            var sum = 0
            for (i, byte) in header.enumerated() { sum += (148..<156).contains(i) ? 0x20 : Int(byte) }
            guard sum == stored else {
                throw NEFFError(.payload, "archive entry at byte \(at - bytes.startIndex): header checksum \(stored) is not \(sum)")
            }
            let name = String(decoding: field(0, 100).prefix { $0 != 0 }, as: UTF8.self)
            let type = header[header.startIndex + 156]
            guard type == UInt8(ascii: "0") || type == 0 else {
                throw NEFFError(.payload, "archive entry \(name) is not a regular file")
            }
            guard !name.isEmpty, !name.hasPrefix("/"), !name.split(separator: "/").contains(".."),
                  names.insert(name).inserted else {
                throw NEFFError(.payload, "archive entry name \"\(name)\" is empty, absolute, escapes, or repeats")
            }
            let size = try octal(124, 12, "size")
            let start = at + block
            guard size <= bytes.endIndex - start else {
                throw NEFFError(.payload, "archive entry \(name) claims \(size) bytes; \(bytes.endIndex - start) remain (truncated)")
            }
            files.append((name, bytes[start..<(start + size)]))
            let padded = (size + block - 1) / block * block
            guard padded <= bytes.endIndex - start else {
                throw NEFFError(.payload, "archive entry \(name) is not padded to 512 bytes (truncated)")
            }
            at = start + padded
        }
        return files
    }
}
