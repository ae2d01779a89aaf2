import NeuronDevice

#if canImport(FoundationEssentials)
import FoundationEssentials
#endif
import Foundation

/// The backend the integration tests run against: what the environment
/// names (NEURON_BACKEND), else the kernel driver when it is loaded (inside
/// scripts/vm-run), else a simulator of two devices. The tests' choice;
/// the library itself never falls back.
func backendUnderTest() throws -> any NeuronBackend {
    let environment = NeuronBackends.processEnvironment()
    if environment["NEURON_BACKEND"] != nil || KernelBackend.isDriverLoaded {
        return try NeuronBackends.fromEnvironment(environment)
    }
    return SimulatorBackend(configuration: try .init(devices: 2))
}

let driverLoaded = KernelBackend.isDriverLoaded
let isRoot = getuid() == 0

/// A built tool of this package, next to the test bundle.
func toolURL(_ name: String) -> URL? {
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<3 {
        let candidate = directory.appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        directory = directory.deletingLastPathComponent()
    }
    return nil
}

struct ToolResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Run a tool with `environment` replacing NEURON_* variables.
func runTool(_ name: String, _ arguments: [String], environment: [String: String] = [:]) throws -> ToolResult {
    guard let url = toolURL(name) else {
        throw NeuronError.invalidConfiguration("\(name) is not built next to the tests; run swift build first")
    }
    let process = Process()
    process.executableURL = url
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("NEURON_") }
    env.merge(environment) { $1 }
    process.environment = env
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return ToolResult(status: process.terminationStatus,
                      stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self))
}
