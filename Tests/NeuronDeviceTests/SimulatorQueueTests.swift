import Foundation
@testable import NeuronDevice
import NeuronISA
import Testing
import TestSupport

/// The simulator's own queue mechanics, which the driver does not share:
/// a job the submitter waits for at once runs on the waiting thread.
@Suite("Simulator queues: jobs run by the thread that waits")
struct SimulatorQueueTests {
    private func fill(_ value: Float) -> [UInt64] {
        var program = NeuronProgram()
        program.fill(.contiguous(slot: 0, dims: [1024]), value: value)
        return program.image()
    }

    @Test("an awaited job of an idle NeuronCore runs on the waiting thread; one queued behind it, or not waited for, on the core's")
    func awaitedJobs() async throws {
        let backend = SimulatorBackend(configuration: try .init(devices: 1))
        let opened = try backend.open(device: 0)
        defer { opened.close() }
        let device = try #require(opened as? SimulatedDevice)
        let queue = try device.queue(core: 0)
        let buffer = try device.allocate(size: 4096)
        func values() throws -> [Float] { try buffer.read(Float.self, count: 1024) }
        // The core's thread, started with the queue, asleep: one still
        // starting finds the job queued and takes it.
        usleep(20_000)

        // Waited for at once, synchronously and asynchronously: run here.
        let first = try queue.submit(image: fill(1), buffers: [buffer], awaited: true)
        #expect(try finish(queue, first).status == .ok)
        #expect(device.queues.callerRuns == 1)
        #expect(try values().allSatisfy { $0 == 1 })
        #expect(try await queue.run({ var p = NeuronProgram(); p.fill(.contiguous(slot: 0, dims: [1024]), value: 2); return p }(),
                                    buffers: [buffer]).status == .ok)
        #expect(device.queues.callerRuns == 2)
        #expect(try values().allSatisfy { $0 == 2 })

        // Another job queued behind it: the core's thread runs both, in order.
        let awaited = try queue.submit(image: fill(3), buffers: [buffer], awaited: true)
        let behind = try queue.submit(image: fill(4), buffers: [buffer])
        #expect(try finish(queue, behind).status == .ok)
        #expect(try finish(queue, awaited).status == .ok)
        #expect(device.queues.callerRuns == 2)
        #expect(try values().allSatisfy { $0 == 4 })

        // Marked awaited but never waited for: the core's thread runs it
        // after its idle wait (a second), and a later wait finds it ended.
        let forgotten = try queue.submit(image: fill(5), buffers: [buffer], awaited: true)
        let deadline = Date().addingTimeInterval(10)
        while try queue.wait(forgotten, timeout: .zero) == nil && Date() < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(try queue.wait(forgotten, timeout: .zero)?.status == .ok)
        #expect(device.queues.callerRuns == 2)
        #expect(try values().allSatisfy { $0 == 5 })

        // Traced, or after another job: never run by the waiter.
        let trace = try device.allocate(size: 4096)
        let traced = try queue.submit(image: fill(6), buffers: [buffer], trace: trace, awaited: true)
        #expect(try finish(queue, traced).status == .ok)
        let dependent = try queue.submit(image: fill(7), buffers: [buffer], after: traced, awaited: true)
        #expect(try finish(queue, dependent).status == .ok)
        #expect(device.queues.callerRuns == 2)
        #expect(try values().allSatisfy { $0 == 7 })
    }

    @Test("an awaited job another NeuronCore's job depends on runs at once when only the dependent one is waited for")
    func awaitedDependency() throws {
        let backend = SimulatorBackend(configuration: try .init(devices: 1))
        let device = try backend.open(device: 0)
        defer { device.close() }
        let first = try device.queue(core: 0)
        let second = try device.queue(core: 1)
        let buffer = try device.allocate(size: 4096)
        let other = try device.allocate(size: 4096)
        // Both cores' threads started, and asleep before each round (past
        // their polling after a job), as on a server between requests.
        #expect(try finish(first, try first.submit(image: fill(0), buffers: [buffer])).status == .ok)
        #expect(try finish(second, try second.submit(image: fill(0), buffers: [other])).status == .ok)
        for round in 0..<5 {
            usleep(20_000)
            let value = Float(round + 1)
            let awaited = try first.submit(image: fill(value), buffers: [buffer], awaited: true)
            let dependent = try second.submit(image: fill(-value), buffers: [other], after: awaited)
            // Before the fix the core's thread took the first job only
            // after its idle wait of a second.
            #expect(try second.wait(dependent, timeout: .milliseconds(500))?.status == .ok,
                    "round \(round): the job depended on was left for a waiter that never came")
            #expect(try first.wait(awaited, timeout: .zero)?.status == .ok)
            #expect(try buffer.read(Float.self, count: 1024).allSatisfy { $0 == value })
            #expect(try other.read(Float.self, count: 1024).allSatisfy { $0 == -value })
        }
    }

    @Test("closing a queue with an awaited job nobody waited for ends it, without hanging")
    func closeWithDeferredJob() throws {
        let backend = SimulatorBackend(configuration: try .init(devices: 1))
        let device = try backend.open(device: 0)
        defer { device.close() }
        let buffer = try device.allocate(size: 4096)
        let started = Date()
        for round in 0..<5 {
            let queue = try device.queue(core: 0)
            _ = try queue.submit(image: fill(Float(round)), buffers: [buffer], awaited: true)
            queue.close()
        }
        // Each close wakes the core's thread to end the job: no idle wait of a second each.
        #expect(Date().timeIntervalSince(started) < 2.5)
        let queue = try device.queue(core: 0)
        #expect(try finish(queue, try queue.submit(image: fill(9), buffers: [buffer], awaited: true)).status == .ok)
        #expect(try buffer.read(Float.self, count: 1024).allSatisfy { $0 == 9 })
    }

    @Test("many threads executing awaited jobs on one NeuronCore all get their own results, in order per thread")
    func concurrentAwaited() async throws {
        let backend = SimulatorBackend(configuration: try .init(devices: 1))
        let device = try backend.open(device: 0)
        defer { device.close() }
        let queue = try device.queue(core: 0)
        let buffers = try (0..<8).map { _ in try device.allocate(size: 4096) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, buffer) in buffers.enumerated() {
                group.addTask {
                    for round in 0..<50 {
                        let value = Float(index * 1000 + round)
                        let result = try await queue.run({ var p = NeuronProgram(); p.fill(.contiguous(slot: 0, dims: [1024]), value: value); return p }(),
                                                         buffers: [buffer])
                        #expect(result.status == .ok)
                        #expect(try buffer.read(Float.self, count: 1024).allSatisfy { $0 == value })
                    }
                }
            }
            try await group.waitForAll()
        }
        let info = try device.queueInfo(core: 0)
        #expect(info.completed == info.submitted && info.queued == 0)
    }
}
