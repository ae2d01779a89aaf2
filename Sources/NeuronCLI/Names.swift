/// Tensor names as the tools show them and store them. A model's names are
/// its own text (`gpu_0/data_0`, `onnx::Conv_3`, `input_1:0`, anything an
/// exporter wrote), so a tool neither prints them raw to a terminal when
/// they hold control characters nor makes a path of them.

/// `name` as printed: as it is when every character is visible and not a
/// space; else quoted, with escapes (`"a b"`, `"bell\u{7}"`), so that a name
/// never moves the cursor or hides where it ends.
public func displayName(_ name: String) -> String {
    let plain = !name.isEmpty && name.unicodeScalars.allSatisfy { scalar in
        switch scalar.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned, .spaceSeparator, .lineSeparator,
             .paragraphSeparator:
            false
        default:
            scalar != "\"" && scalar != "\\"
        }
    }
    return plain ? name : name.debugDescription
}

/// The file name (in one folder) that holds tensor `name`, then
/// `suffix`: the name's UTF-8 bytes, with every byte other than an ASCII
/// letter, digit, `_`, `-` or a `.` that does not start it written as
/// `%XX`. Different names give different files, none of them leaves the
/// folder (`/` and a leading `.` are escaped). A name whose file name
/// would pass 255 bytes is stored as `%tensor-INDEX` (`INDEX`, the
/// tensor's place among the model's outputs), which no escaped name can be.
public func tensorFileName(_ name: String, index: Int, suffix: String = ".npy") -> String {
    var escaped = ""
    for (offset, byte) in name.utf8.enumerated() {
        let character = Character(Unicode.Scalar(byte))
        let kept = (byte < 0x80 && (character.isLetter || character.isNumber)) || byte == UInt8(ascii: "_")
            || byte == UInt8(ascii: "-") || (byte == UInt8(ascii: ".") && offset > 0)
        if kept {
            escaped.append(character)
        } else {
            let hex = String(byte, radix: 16, uppercase: true)
            escaped += "%" + (hex.count == 1 ? "0" + hex : hex)
        }
    }
    guard !escaped.isEmpty, escaped.utf8.count + suffix.utf8.count <= 255 else { return "%tensor-\(index)\(suffix)" }
    return escaped + suffix
}
