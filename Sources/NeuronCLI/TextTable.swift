/// A boxed text table in the style of AWS's neuron-ls: headers over two
/// lines, cells of one or more lines.
public struct TextTable: Sendable {
    public var headers: [[String]]
    public var rows: [[[String]]] = []
    /// A rule after every row (else only around the header and at the end).
    public var rulesBetweenRows = true
    /// Columns whose cells are right-aligned (numbers).
    public var rightAligned: Set<Int> = []

    public init(headers: [[String]]) {
        self.headers = headers
    }

    public mutating func append(_ row: [[String]]) {
        rows.append(row)
    }

    public func render() -> String {
        let columns = headers.count
        var widths = headers.map { $0.map(\.count).max() ?? 0 }
        for row in rows {
            for (column, cell) in row.enumerated() where column < columns {
                widths[column] = max(widths[column], cell.map(\.count).max() ?? 0)
            }
        }
        let rule = "+" + widths.map { String(repeating: "-", count: $0 + 2) }.joined(separator: "+") + "+"
        func lines(_ cells: [[String]]) -> [String] {
            let height = cells.map(\.count).max() ?? 1
            return (0..<max(height, 1)).map { line in
                "|" + (0..<columns).map { column in
                    let cell = column < cells.count ? cells[column] : []
                    let text = line < cell.count ? cell[line] : ""
                    let pad = String(repeating: " ", count: widths[column] - text.count)
                    return " " + (rightAligned.contains(column) ? pad + text : text + pad) + " "
                }.joined(separator: "|") + "|"
            }
        }
        var out = [rule] + lines(headers) + [rule]
        for row in rows {
            out += lines(row)
            if rulesBetweenRows { out.append(rule) }
        }
        if !rulesBetweenRows && !rows.isEmpty { out.append(rule) }
        return out.joined(separator: "\n")
    }
}

/// "8 GiB", "512 MiB", in the largest unit that keeps a whole number.
public func formatBytes(_ bytes: UInt64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = bytes
    var unit = 0
    while unit < units.count - 1, value >= 1024, value % 1024 == 0 {
        value /= 1024
        unit += 1
    }
    return "\(value) \(units[unit])"
}

/// "0-3" for a contiguous range, "0, 2" otherwise.
public func formatIDs(_ ids: [Int]) -> String {
    guard let first = ids.first, let last = ids.last else { return "" }
    if ids.count > 1, ids == Array(first...last) { return "\(first)-\(last)" }
    return ids.map(String.init).joined(separator: ", ")
}
