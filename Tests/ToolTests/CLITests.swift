import NeuronCLI
import Testing
import TestSupport

@Suite("What the tools share")
struct CLITests {
    @Test("latency percentiles by nearest rank, whatever the order given")
    func percentiles() {
        let summary = LatencySummary((1...100).reversed().map(Double.init))
        #expect(summary.percentile(50) == 50 && summary.percentile(90) == 90 && summary.percentile(99) == 99)
        #expect(summary.percentile(100) == 100 && summary.percentile(0) == 1)
        #expect(summary.percentiles == ["p50": 50, "p90": 90, "p99": 99])
        let three = LatencySummary([3, 1, 2])
        #expect(three.percentile(50) == 2 && three.percentile(99) == 3)
        #expect(LatencySummary([]).percentile(50) == 0)
    }
}
