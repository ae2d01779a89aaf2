import Foundation
import NeuronCLI
import NeuronDeviceListing
import NeuronDevice
import Testing
import TestSupport

@Suite("neuron-ls, the built tool")
struct NeuronLSTests {
    static let awsKeys: Set<String> = ["neuron_device", "bdf", "connected_to", "nc_count", "memory_size",
                                       "neuroncore_ids", "numa_node", "neuron_processes"]

    func decode(_ text: String) throws -> [[String: Any]] {
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8))
        return try #require(object as? [[String: Any]])
    }

    @Test("--json-output on the simulator has AWS's keys")
    func jsonOnSimulator() throws {
        let result = try runTool("neuron-ls", ["--json-output"],
                                 environment: ["NEURON_BACKEND": "sim", "NEURON_SIM_DEVICES": "3"])
        #expect(result.status == 0, "\(result.stderr)")
        let devices = try decode(result.stdout)
        #expect(devices.count == 3)
        for (index, device) in devices.enumerated() {
            #expect(Self.awsKeys.isSubset(of: Set(device.keys)))
            #expect(device["neuron_device"] as? Int == index)
            #expect(device["nc_count"] as? Int == 4)
            #expect((device["neuroncore_ids"] as? [Int]) == Array((index * 4)..<(index * 4 + 4)))
        }
    }

    @Test("the table, --wide and --topology on the simulator")
    func tableOnSimulator() throws {
        let result = try runTool("neuron-ls", ["--wide", "--topology"],
                                 environment: ["NEURON_BACKEND": "sim", "NEURON_SIM_DEVICES": "4"])
        #expect(result.status == 0, "\(result.stderr)")
        for column in ["DEVICE", "CORES", "CORE IDS", "MEMORY", "CONNECTED", "BDF", "NUMA", "PROCESSES"] {
            #expect(result.stdout.contains(column))
        }
        #expect(result.stdout.contains("platform: sim"))
        #expect(result.stdout.contains("| 12-15"))
        #expect(result.stdout.contains("[0] <-> [1] <-> [2] <-> [3]"))
    }

    @Test("without a driver and without NEURON_BACKEND it fails and says how to load one",
          .enabled(if: !driverLoaded))
    func noDriver() throws {
        let result = try runTool("neuron-ls", [])
        #expect(result.status != 0)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.contains("insmod driver/neuron.ko"))
        #expect(result.stderr.contains("scripts/vm-run"))
    }

    @Test("a bad NEURON_BACKEND fails with a message")
    func badBackend() throws {
        let result = try runTool("neuron-ls", ["-j"], environment: ["NEURON_BACKEND": "quantum"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("NEURON_BACKEND=quantum"))
    }

    @Test("on the driver: devices, cores, and a process holding a device in --wide",
          .enabled(if: driverLoaded))
    func onDriver() throws {
        let backend = KernelBackend()
        let expected = try backend.devices()
        let holder = try backend.open(device: expected.count - 1)
        defer { holder.close() }
        let buffer = try holder.allocate(size: 1 << 20)
        defer { buffer.free() }

        let result = try runTool("neuron-ls", ["--json-output"])
        #expect(result.status == 0, "\(result.stderr)")
        let devices = try decode(result.stdout)
        #expect(devices.count == expected.count)
        for (device, info) in zip(devices, expected) {
            #expect(device["nc_count"] as? Int == info.coreCount)
            #expect(device["memory_size"] as? Int == Int(info.memorySize))
            #expect(device["platform"] as? String == "fake")
            #expect(device["serial"] as? String == info.serial)
        }
        let processes = try #require(devices.last?["neuron_processes"] as? [[String: Any]])
        let mine = try #require(processes.first { $0["pid"] as? Int == Int(getpid()) })
        #expect(mine["memory_used"] as? Int == 1 << 20)

        let wide = try runTool("neuron-ls", ["--wide"])
        #expect(wide.status == 0)
        #expect(wide.stdout.contains("\(getpid()) "))
        #expect(wide.stdout.contains("1 MiB"))
    }
}
