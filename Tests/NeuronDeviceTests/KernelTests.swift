import Foundation
import NeuronDevice
import Testing
import TestSupport

/// Only where neuron.ko is loaded: inside scripts/vm-run.
@Suite("Kernel backend", .enabled(if: driverLoaded))
struct KernelTests {
    @Test("udev finds every device node with the driver's count")
    func discovery() throws {
        let records = try NeuronUdev.enumerate()
        let count = try KernelBackend().driverInfo().deviceCount
        #expect(records.count == count)
        #expect(Set(records.compactMap(\.index)) == Set(0..<count))
        for record in records {
            #expect(record.devnode == "/dev/\(record.sysname)")
        }
    }

    @Test("a path that is not a device fails clearly")
    func missingNode() {
        do {
            _ = try KernelDevice.open(path: "/dev/neuron-none", index: 99, deviceCount: 2)
            Issue.record("opened a missing node")
        } catch {
            #expect(error == .deviceNotFound(index: 99, deviceCount: 2))
        }
    }

    @Test("hotplug: a uevent on a device arrives through the AsyncSequence", .enabled(if: isRoot))
    func hotplug() async throws {
        let events = try NeuronUdev.hotplugEvents()
        let trigger = Task {
            try await Task.sleep(for: .milliseconds(300))
            try "change".write(toFile: "/sys/class/neuron_device/neuron0/uevent", atomically: false, encoding: .utf8)
        }
        let received = await withTaskGroup(of: NeuronHotplugEvent?.self) { group in
            group.addTask {
                for await event in events where event.device.sysname == "neuron0" { return event }
                return nil
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(20))
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        try await trigger.value
        #expect(received?.action == .changed)
        #expect(received?.device.devnode == "/dev/neuron0")
    }
}
