import NeuronDevice

#if canImport(FoundationEssentials)
import FoundationEssentials
#endif
import Foundation

/// The backend the integration tests run against: what the environment
/// names (NEURON_BACKEND), else the kernel driver when it is loaded (inside
/// scripts/vm-run), else a simulator of two devices. The tests' choice;
/// the library itself never falls back.
public func backendUnderTest() throws -> any NeuronBackend {
    let environment = NeuronBackendSelection.processEnvironment()
    if environment["NEURON_BACKEND"] != nil || KernelBackend.isDriverLoaded {
        return try NeuronBackendSelection.fromEnvironment(environment)
    }
    return SimulatorBackend(configuration: try .init(devices: 2))
}

public let driverLoaded = KernelBackend.isDriverLoaded
public let isRoot = getuid() == 0

/// A built tool of this package, next to the test bundle.
public func toolURL(_ name: String) -> URL? {
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<3 {
        let candidate = directory.appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        directory = directory.deletingLastPathComponent()
    }
    return nil
}

public struct ToolResult {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Run a tool of this package (or the program at an absolute path) with
/// `environment` replacing NEURON_* variables. Uses
/// posix_spawn with output in temporary files: it works in the VM's
/// minimal guest as well as on the host.
public func runTool(_ name: String, _ arguments: [String], environment: [String: String] = [:]) throws -> ToolResult {
    guard let url = name.hasPrefix("/") ? URL(fileURLWithPath: name) : toolURL(name) else {
        throw NeuronError.invalidConfiguration("\(name) is not built next to the tests; run swift build first")
    }
    var env = NeuronBackendSelection.processEnvironment().filter { !$0.key.hasPrefix("NEURON_") }
    env.merge(environment) { $1 }
    let stem = "/tmp/neuron-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    let outPath = stem + ".out", errPath = stem + ".err"
    defer { unlink(outPath); unlink(errPath) }

    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)

    let argv = ([url.path] + arguments).map { strdup($0) } + [nil]
    let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer { (argv + envp).forEach { free($0) } }
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, url.path, &actions, nil, argv, envp)
    guard spawned == 0 else {
        throw NeuronError.system(operation: "posix_spawn \(name)", errno: .init(rawValue: spawned))
    }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let exited = (status & 0x7f) == 0
    return ToolResult(status: exited ? (status >> 8) & 0xff : 128 + (status & 0x7f),
                      stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
                      stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
}
