import ArgumentParser
import NeuronCLI
import NeuronDevice

import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
}

@main
struct NeuronBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "neuron-bench",
        abstract: "Benchmarks of the Neuron stack, as ratios against a baseline run in the same process.",
        discussion: "Build it in release mode: swift build -c release --product neuron-bench",
        subcommands: [Memory.self, Gemm.self, Conv.self, Submit.self])
}

struct Memory: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy-in, copy-out and mmap write throughput next to memcpy; allocation and free rates.")

    @Option(help: "Buffer sizes in MiB, comma-separated.")
    var sizes = "1,4,16,64,256"

    @Option(help: "The device to allocate on.")
    var device = 0

    @Option(help: "Bytes (MiB) to move per measurement; at least 3 repetitions each.")
    var volume = 512

    @Flag(help: "Print JSON.")
    var json = false

    struct SizeRecord: Codable {
        var size_bytes: Int
        var repetitions: Int
        var memcpy_gbps: Double
        var copy_in_gbps: Double
        var copy_out_gbps: Double
        var mmap_write_gbps: Double
        var copy_in_vs_memcpy: Double
        var copy_out_vs_memcpy: Double
        var mmap_write_vs_memcpy: Double
    }

    struct RateRecord: Codable {
        var size_bytes: Int
        var count: Int
        var allocs_per_second: Double
        var frees_per_second: Double
    }

    struct Report: Codable {
        var backend: String
        var device: Int
        var sizes: [SizeRecord]
        var alloc_free: [RateRecord]
    }

    func run() throws {
        let sizeList = sizes.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !sizeList.isEmpty, sizeList.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("--sizes takes positive whole numbers of MiB, e.g. 1,4,16")
        }
        let backend = try NeuronBackendSelection.fromEnvironment()
        let dev = try backend.open(device: device)
        defer { dev.close() }

        var records: [SizeRecord] = []
        for mib in sizeList {
            let size = mib << 20
            let repetitions = max(3, (volume << 20) / size)
            let source = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 4096)
            let target = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 4096)
            defer { source.deallocate(); target.deallocate() }
            guard let src = source.baseAddress, let dst = target.baseAddress else {
                throw ValidationError("cannot allocate \(mib) MiB")
            }
            for index in stride(from: 0, to: size, by: 64) { source[index] = UInt8(truncatingIfNeeded: index >> 6) }
            memset(dst, 1, size)

            let buffer = try dev.allocate(size: UInt64(size))
            defer { buffer.free() }
            try buffer.write(UnsafeRawBufferPointer(source))       // commit the pages once
            _ = try buffer.withUnsafeMutableBytes { $0.initializeMemory(as: UInt8.self, repeating: 0) }  // map and fault once

            // The four measurements take turns within each repetition, so
            // that drift (other load, an emulator's caches) meets them alike.
            let clock = ContinuousClock()
            var memcpyTime = Double.infinity, copyIn = Double.infinity
            var copyOut = Double.infinity, mmapWrite = Double.infinity
            for _ in 0..<repetitions {
                memcpyTime = min(memcpyTime, seconds(clock.measure { memcpy(dst, src, size) }))
                copyIn = min(copyIn, seconds(try clock.measure { try buffer.write(UnsafeRawBufferPointer(source)) }))
                copyOut = min(copyOut, seconds(try clock.measure { try buffer.read(into: target) }))
                mmapWrite = min(mmapWrite, seconds(try clock.measure {
                    _ = try buffer.withUnsafeMutableBytes { mapped in
                        if let base = mapped.baseAddress { memcpy(base, src, size) }
                    }
                }))
            }
            guard memcmp(dst, src, size) == 0 else {
                throw ValidationError("copy-out returned other bytes than were written")
            }
            let gbps = { (seconds: Double) in Double(size) / seconds / 1e9 }
            records.append(SizeRecord(
                size_bytes: size, repetitions: repetitions,
                memcpy_gbps: gbps(memcpyTime), copy_in_gbps: gbps(copyIn), copy_out_gbps: gbps(copyOut),
                mmap_write_gbps: gbps(mmapWrite),
                copy_in_vs_memcpy: memcpyTime / copyIn, copy_out_vs_memcpy: memcpyTime / copyOut,
                mmap_write_vs_memcpy: memcpyTime / mmapWrite))
        }

        var rates: [RateRecord] = []
        let info = try dev.info()
        let free = Int(info.memorySize - info.memoryUsed)
        for size in [4096, 1 << 20] {
            let count = min(2000, free / size)
            let clock = ContinuousClock()
            var buffers: [NeuronBuffer] = []
            buffers.reserveCapacity(count)
            let allocTime = try clock.measure {
                for _ in 0..<count { buffers.append(try dev.allocate(size: UInt64(size))) }
            }
            let freeTime = clock.measure { for buffer in buffers { buffer.free() } }
            rates.append(RateRecord(size_bytes: size, count: count,
                                    allocs_per_second: Double(count) / seconds(allocTime),
                                    frees_per_second: Double(count) / seconds(freeTime)))
        }

        let report = Report(backend: backend.name, device: device, sizes: records, alloc_free: rates)
        if json {
            try printJSON(report)
            return
        }
        print("neuron-bench memory: backend \(report.backend), device \(device); GB/s, best of the repetitions")
        print("size MiB  memcpy   copy-in (x)        copy-out (x)       mmap write (x)")
        for r in records {
            func cell(_ v: Double, _ x: Double) -> String {
                String(format: "%7.2f (%4.2fx)     ", v, x)
            }
            print(String(format: "%8d  %6.2f  ", r.size_bytes >> 20, r.memcpy_gbps)
                  + cell(r.copy_in_gbps, r.copy_in_vs_memcpy) + cell(r.copy_out_gbps, r.copy_out_vs_memcpy)
                  + cell(r.mmap_write_gbps, r.mmap_write_vs_memcpy))
        }
        for r in rates {
            print(String(format: "alloc/free of %d bytes: %.0f allocs/s, %.0f frees/s",
                         r.size_bytes, r.allocs_per_second, r.frees_per_second))
        }
    }
}

