import ArgumentParser
import NeuronCLI
import NeuronDeviceListing
import NeuronDevice

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

@main
struct NeuronLS: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "neuron-ls",
        abstract: "List the Neuron devices, their NeuronCores, memory and links.",
        discussion: """
            Reads the kernel driver's devices (/dev/neuronN). Set NEURON_BACKEND=sim to list \
            the in-process simulator's devices instead (NEURON_SIM_DEVICES, NEURON_SIM_CORES). \
            Works for any member of group neuron.
            """)

    @Flag(name: [.customShort("j"), .customLong("json-output")], help: "Print JSON, with the keys of AWS's neuron-ls.")
    var jsonOutput = false

    @Flag(name: .shortAndLong, help: "Also show the processes using each device.")
    var wide = false

    @Flag(name: .shortAndLong, help: "Draw how the devices link to each other.")
    var topology = false

    func run() throws {
        let listings: [DeviceListing]
        let driver: NeuronDriverInfo
        let backendName: String
        do {
            let backend = try NeuronBackendSelection.fromEnvironment()
            backendName = backend.name
            driver = try backend.driverInfo()
            listings = try DeviceListing.collect(from: backend)
        } catch {
            var stderr = StandardError()
            print("neuron-ls: \(error)", to: &stderr)
            throw ExitCode.failure
        }

        if jsonOutput {
            try printJSON(listings)
            return
        }

        let platforms = Set(listings.map(\.platform)).sorted().joined(separator: ", ")
        print("platform: \(platforms)   backend: \(backendName)   driver: \(driver.version) (API \(driver.apiMajor).\(driver.apiMinor))")
        var headers = [["NEURON", "DEVICE"], ["NEURON", "CORES"], ["NEURON", "CORE IDS"], ["NEURON", "MEMORY"],
                       ["CONNECTED", "DEVICES"], ["PCI", "BDF"], ["NUMA", "NODE"]]
        if wide { headers.append(["NEURON", "PROCESSES"]) }
        var table = TextTable(headers: headers)
        for device in listings {
            var row = [[String(device.neuron_device)], [String(device.nc_count)],
                       [formatIDs(device.neuroncore_ids)], [formatBytes(device.memory_size)],
                       [device.connected_to.map(String.init).joined(separator: ", ")],
                       [device.bdf.isEmpty ? "-" : device.bdf],
                       [device.numa_node < 0 ? "-" : String(device.numa_node)]]
            if wide {
                row.append(device.neuron_processes.isEmpty ? ["-"] : device.neuron_processes.map { process in
                    let cores = process.neuroncore_ids.isEmpty ? "" : " cores \(formatIDs(process.neuroncore_ids))"
                    return "\(process.pid) \(process.command)\(cores) \(formatBytes(process.memory_used))"
                })
            }
            table.append(row)
        }
        print(table.render())
        if topology {
            print()
            print(renderTopology(listings))
        }
    }
}
