import Foundation
import Testing
import TestSupport

/// neuron-bench runs and reports what it promises (its figures are
/// measured in release builds, never asserted here).
@Suite("neuron-bench, the built tool")
struct BenchToolTests {
    @Test("memory --json has one record per size with the promised keys")
    func memoryJSON() throws {
        let result = try runTool("neuron-bench", ["memory", "--json", "--sizes", "1,2", "--volume", "2"],
                                 environment: ["NEURON_BACKEND": "sim", "NEURON_SIM_MEMORY_MB": "64"])
        #expect(result.status == 0, "\(result.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8))
        let report = try #require(object as? [String: Any])
        let sizes = try #require(report["sizes"] as? [[String: Any]])
        #expect(sizes.map { $0["size_bytes"] as? Int } == [1 << 20, 2 << 20])
        for record in sizes {
            for key in ["memcpy_gbps", "copy_in_gbps", "copy_out_gbps", "mmap_write_gbps"] {
                #expect((record[key] as? Double ?? 0) > 0, "\(key)")
            }
        }
        let rates = try #require(report["alloc_free"] as? [[String: Any]])
        #expect(rates.count == 2)
        #expect(rates.allSatisfy { ($0["allocs_per_second"] as? Double ?? 0) > 0 })
    }

    /// Every element type of the product runs (bf16 pairs with B in
    /// rows and in panels, on whatever path this CPU takes); a bad one is
    /// refused with the ones it takes.
    @Test("gemm runs every --dtype and refuses others")
    func gemmDtypes() throws {
        for dtype in ["fp32", "bf16", "bf16-pairs", "bf16-pair-panels"] {
            let result = try runTool("neuron-bench", ["gemm", "--size", "64,70", "--dtype", dtype, "--no-baseline", "--json"],
                                     environment: ["NEURON_BACKEND": "sim"])
            #expect(result.status == 0, "\(dtype): \(result.stderr)")
            let records = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
            #expect(records.map { $0["size"] as? Int } == [64, 70] && records.allSatisfy { ($0["gflops"] as? Double ?? 0) > 0 },
                    "\(dtype): \(result.stdout)")
        }
        let bad = try runTool("neuron-bench", ["gemm", "--dtype", "fp8"], environment: ["NEURON_BACKEND": "sim"])
        #expect(bad.status != 0 && bad.stderr.contains("bf16-pair-panels"), "\(bad.stderr)")
    }

    @Test("bad sizes are refused")
    func badSizes() throws {
        let result = try runTool("neuron-bench", ["memory", "--sizes", "0,x"], environment: ["NEURON_BACKEND": "sim"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("--sizes"))
    }
}
