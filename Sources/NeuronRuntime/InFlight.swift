import Foundation
import NeuronProfile
import NeuronDevice
import Dispatch

/// How a model is loaded.
public struct NeuronLoadOptions: Sendable, Equatable {
    /// Profile every execution into this recorder (each job traced by the
    /// engine, API 1.8); nil: no profiling, at no cost.
    public var profiler: NeuronProfileRecorder?
    /// Profile every execution and write a capture into this directory
    /// when the model is unloaded (`NEURON_RT_PROFILE`), unless `profiler`
    /// is given.
    public var profileDirectory: String?

    public static func == (a: NeuronLoadOptions, b: NeuronLoadOptions) -> Bool {
        a.maxInFlight == b.maxInFlight && a.profiler === b.profiler && a.profileDirectory == b.profileDirectory
    }

    /// Requests of one loaded model submitted and not yet finished, at
    /// most; a further `execute` waits (the synchronous one blocks, the
    /// asynchronous one suspends) until one finishes. Each request in
    /// flight of a model that spans several NeuronCores gets its own
    /// scratch tensors (allocated on first use), so that requests overlap
    /// in its pipeline.
    public var maxInFlight: Int

    public static let defaultMaxInFlight = 16

    public init(maxInFlight: Int = NeuronLoadOptions.defaultMaxInFlight) {
        self.maxInFlight = maxInFlight
    }

    /// From `NEURON_RT_ASYNC_EXEC_MAX_INFLIGHT_REQUESTS` (the name AWS's
    /// runtime gave the same knob), else the default.
    public init(environment: [String: String]) throws(NeuronRuntimeError) {
        self.init()
        let name = "NEURON_RT_ASYNC_EXEC_MAX_INFLIGHT_REQUESTS"
        if let text = environment[name], !text.isEmpty {
            guard let value = Int(text), (1...1024).contains(value) else {
                throw NeuronRuntimeError(.invalid, "\(name)=\(text): expected a whole number from 1 to 1024")
            }
            maxInFlight = value
        }
        if let dir = environment["NEURON_RT_PROFILE"], !dir.isEmpty {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory), isDirectory.boolValue,
                  FileManager.default.isWritableFile(atPath: dir) else {
                throw NeuronRuntimeError(.invalid, "NEURON_RT_PROFILE=\(dir): not a writable directory; create it (mkdir -p \(dir)) or unset NEURON_RT_PROFILE")
            }
            profileDirectory = dir
        }
    }
}

/// The request slots of a loaded model: a request takes one before it is
/// submitted and gives it back when all its jobs ended. Waiters are served
/// first come, first served.
final class RequestSlots: Sendable {
    private struct State {
        var free: [Int]
        var waiters: [@Sendable (Int?) -> Void] = []
        var closed = false
    }
    private let state: Locked<State>

    init(count: Int) {
        state = Locked(State(free: Array((0..<max(1, count)).reversed())))
    }

    /// A free slot now, or the place in line.
    private func take(or waiter: @escaping @Sendable (Int?) -> Void) -> Int?? {
        state.withLock { state -> Int?? in
            if state.closed { return .some(nil) }
            if let slot = state.free.popLast() { return .some(slot) }
            state.waiters.append(waiter)
            return .none
        }
    }

    /// Block until a slot is free; nil once closed.
    func acquire() -> Int? {
        final class Box: @unchecked Sendable {
            var slot: Int?
            let done = DispatchSemaphore(value: 0)
        }
        let box = Box()
        if let now = take(or: { slot in
            box.slot = slot
            box.done.signal()
        }) {
            return now
        }
        box.done.wait()
        return box.slot
    }

    /// Suspend until a slot is free; nil once closed.
    func acquire() async -> Int? {
        await withCheckedContinuation { (continuation: CheckedContinuation<Int?, Never>) in
            if let now = take(or: { continuation.resume(returning: $0) }) {
                continuation.resume(returning: now)
            }
        }
    }

    /// Give `slot` back: to the first waiter, or to the free list.
    func release(_ slot: Int) {
        let waiter = state.withLock { state -> (@Sendable (Int?) -> Void)? in
            if state.waiters.isEmpty {
                state.free.append(slot)
                return nil
            }
            return state.waiters.removeFirst()
        }
        waiter?(slot)
    }

    /// Wake every waiter with nil; later acquisitions get nil too.
    func close() {
        let waiters = state.withLock { state -> [@Sendable (Int?) -> Void] in
            state.closed = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter(nil) }
    }
}
