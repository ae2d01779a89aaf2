import Foundation
import NeuronCLI
import NeuronDeviceListing
import NeuronDevice
import Testing
import TestSupport

/// Run against the simulator on the host and against the real module in
/// the VM: the same assertions hold for both. Serialized: the tests count
/// this process's open files on a device, which the kernel shares.
@Suite("Devices, whichever backend", .serialized)
struct BackendTests {
    @Test("every device reports consistent information")
    func devicesAreConsistent() throws {
        let backend = try backendUnderTest()
        let driver = try backend.driverInfo()
        #expect(driver.apiMajor == KernelBackend.supportedAPIMajor)
        let devices = try backend.devices()
        #expect(devices.count == driver.deviceCount)
        for (position, device) in devices.enumerated() {
            #expect(device.index == position)
            #expect((1...8).contains(device.coreCount))
            #expect(device.memorySize > 0)
            #expect(device.memoryUsed <= device.memorySize)
            #expect(device.connectedTo == neuronRingNeighbours(of: position, count: devices.count))
            if device.platform != .inf1 {
                #expect(device.serial == neuronFakeSerial(ordinal: position))
                #expect(device.pciBDF == nil)
            }
        }
        #expect(Set(devices.map(\.serial)).count == devices.count)
    }

    @Test("an open device lists this process; closing releases it")
    func processAccounting() throws {
        let backend = try backendUnderTest()
        let me = getpid()
        let first = try backend.open(device: 0)
        let mine = try first.processes().first { $0.pid == me }
        #expect(mine?.openFiles == 1)
        #expect(mine?.command.isEmpty == false)

        let second = try backend.open(device: 0)
        #expect(try first.processes().first { $0.pid == me }?.openFiles == 2)
        second.close()
        #expect(try first.processes().first { $0.pid == me }?.openFiles == 1)
        first.close()

        let third = try backend.open(device: 0)
        defer { third.close() }
        #expect(try third.processes().first { $0.pid == me }?.openFiles == 1)
    }

    @Test("close is idempotent and a closed device refuses use")
    func closeOnce() throws {
        let device = try backendUnderTest().open(device: 0)
        device.close()
        device.close()
        do {
            _ = try device.info()
            Issue.record("info() on a closed device succeeded")
        } catch {
            guard case .system(_, let errno) = error else {
                Issue.record("unexpected error \(error)")
                return
            }
            #expect(errno == .badFileDescriptor)
        }
    }

    @Test("a device past the last is not found, and says which exist")
    func deviceNotFound() throws {
        let backend = try backendUnderTest()
        let count = try backend.driverInfo().deviceCount
        do {
            _ = try backend.open(device: count)
            Issue.record("device \(count) opened")
        } catch {
            #expect(error == .deviceNotFound(index: count, deviceCount: count))
            #expect(error.description.contains("0...\(count - 1)"))
        }
    }

    @Test("listings number NeuronCores across devices and leave out the lister")
    func listings() throws {
        let backend = try backendUnderTest()
        let listings = try DeviceListing.collect(from: backend)
        var next = 0
        for listing in listings {
            #expect(listing.neuroncore_ids == Array(next..<(next + listing.nc_count)))
            next += listing.nc_count
            #expect(!listing.neuron_processes.contains { $0.pid == getpid() })
        }
    }

    @Test("many devices opened and closed from many tasks")
    func concurrentOpenClose() async throws {
        let backend = try backendUnderTest()
        let count = try backend.driverInfo().deviceCount
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for round in 0..<50 {
                        let device = try backend.open(device: (task + round) % count)
                        _ = try device.info()
                        device.close()
                    }
                }
            }
            try await group.waitForAll()
        }
        let check = try backend.open(device: 0)
        defer { check.close() }
        #expect(try check.processes().first { $0.pid == getpid() }?.openFiles == 1)
    }
}
