/// A NUL-terminated C character array imported as a tuple, as a String.
func stringFromCArray<T>(_ tuple: T) -> String {
    withUnsafeBytes(of: tuple) { raw in
        let bytes = raw.prefix { $0 != 0 }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// A C array of integers imported as a tuple, as a Swift array.
func arrayFromCArray<T, Element>(_ tuple: T, of: Element.Type) -> [Element] {
    withUnsafeBytes(of: tuple) { raw in
        Array(raw.bindMemory(to: Element.self))
    }
}
