import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `value` as the tools print JSON: pretty, keys sorted, one document on
/// standard output.
public func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// Standard error as a `TextOutputStream`: every byte written, across
/// interruptions and short writes.
public struct StandardError: TextOutputStream {
    public init() {}

    public mutating func write(_ string: String) {
        var bytes = Array(string.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            if written <= 0 { return }
            bytes = bytes.dropFirst(written)
        }
    }
}

/// One line on standard error: "tool: message".
public func printError(_ tool: String, _ message: String) {
    var stderr = StandardError()
    print("\(tool): \(message)", to: &stderr)
}

/// Latencies of a run, in any unit, and their percentiles by the
/// nearest-rank method (p50 of 1...100 is 50, p99 is 99).
public struct LatencySummary: Sendable, Equatable {
    /// Sorted.
    public let latencies: [Double]

    public init(_ latencies: [Double]) {
        self.latencies = latencies.sorted()
    }

    /// The smallest latency at or above `p` percent of them (0 with none).
    public func percentile(_ p: Double) -> Double {
        guard !latencies.isEmpty else { return 0 }
        let rank = Int((p / 100 * Double(latencies.count)).rounded(.up))
        return latencies[min(latencies.count - 1, max(0, rank - 1))]
    }

    /// p50, p90 and p99, as the tools' JSON reports them.
    public var percentiles: [String: Double] { ["p50": percentile(50), "p90": percentile(90), "p99": percentile(99)] }
}
