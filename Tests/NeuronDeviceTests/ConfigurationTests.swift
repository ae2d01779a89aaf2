import CNeuronEngine
import NeuronDevice
import Testing
import TestSupport

@Suite("Backend selection and configuration")
struct ConfigurationTests {
    @Test("NEURON_BACKEND picks the backend; the default is the kernel")
    func selection() throws {
        #expect(try NeuronBackendSelection.fromEnvironment([:]).name == "kernel")
        #expect(try NeuronBackendSelection.fromEnvironment(["NEURON_BACKEND": "kernel"]).name == "kernel")
        let sim = try NeuronBackendSelection.fromEnvironment(
            ["NEURON_BACKEND": "sim", "NEURON_SIM_DEVICES": "3", "NEURON_SIM_CORES": "2"])
        #expect(sim.name == "sim")
        let devices = try sim.devices()
        #expect(devices.count == 3)
        #expect(devices.allSatisfy { $0.coreCount == 2 && $0.platform == .simulator })
        #expect(devices[0].connectedTo == [2, 1])
    }

    @Test("bad values are refused with the variable and its range", arguments: [
        ["NEURON_BACKEND": "gpu"],
        ["NEURON_BACKEND": "sim", "NEURON_SIM_DEVICES": "seventeen"],
        ["NEURON_BACKEND": "sim", "NEURON_SIM_DEVICES": "17"],
        ["NEURON_BACKEND": "sim", "NEURON_SIM_DEVICES": "-1"],
        ["NEURON_BACKEND": "sim", "NEURON_SIM_CORES": "0"],
        ["NEURON_BACKEND": "sim", "NEURON_SIM_CORES": "9"],
        ["NEURON_BACKEND": "sim", "NEURON_SIM_MEMORY_MB": "0"],
        ["NEURON_BACKEND": "sim", "NEURON_SIM_CORES": "4\u{0}"],
        ["NEURON_BACKEND": "sim", "NEURON_SIM_SIMD": "sse9"],
    ])
    func badValues(_ environment: [String: String]) {
        do {
            _ = try NeuronBackendSelection.fromEnvironment(environment)
            Issue.record("accepted \(environment)")
        } catch {
            guard case .invalidConfiguration(let message) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            let variable = environment.keys.filter { $0 != "NEURON_BACKEND" }.first ?? "NEURON_BACKEND"
            #expect(message.contains(variable))
        }
    }

    /// Only parsed here: a backend made with it would set the whole test
    /// process's vector paths.
    @Test("NEURON_SIM_SIMD names the engine's vector paths; the default is the CPU's widest")
    func vectorPaths() throws {
        #expect(try SimulatorBackend.Configuration.fromEnvironment([:]).vectorPaths == nil)
        #expect(try SimulatorBackend.Configuration.fromEnvironment(["NEURON_SIM_SIMD": "scalar"]).vectorPaths == .scalar)
        #expect(SimulatorBackend.VectorPaths(rawValue: "avx512-bf16") == .avx512BF16)
    }

    /// Only parsed here, as NEURON_SIM_SIMD.
    @Test("NEURON_SIM_BF16 chooses exact or AMX products; amx only where the CPU and kernel allow it")
    func bf16Products() throws {
        #expect(try SimulatorBackend.Configuration.fromEnvironment([:]).bf16Products == .exact)
        #expect(try SimulatorBackend.Configuration.fromEnvironment(["NEURON_SIM_BF16": "exact"]).bf16Products == .exact)
        do {
            _ = try SimulatorBackend.Configuration.fromEnvironment(["NEURON_SIM_BF16": "fast"])
            Issue.record("NEURON_SIM_BF16=fast was taken")
        } catch {
            #expect(error.description.contains("use exact") && error.description.contains("amx"))
        }
        let amx = neuron_amx_can_run(UInt32(NEURON_AMX_NATIVE.rawValue)) != 0
        do {
            let configuration = try SimulatorBackend.Configuration.fromEnvironment(["NEURON_SIM_BF16": "amx"])
            #expect(amx && configuration.bf16Products == .amx)
        } catch {
            #expect(!amx && error.description.contains("AMX-BF16") && error.description.contains("unset it"))
        }
        print("NEURON_SIM_BF16=amx: \(amx ? "taken (AMX-BF16 here)" : "refused (no AMX-BF16 here)")")
    }

    @Test("a simulator without devices says so")
    func noDevices() throws {
        let sim = try NeuronBackendSelection.fromEnvironment(["NEURON_BACKEND": "sim", "NEURON_SIM_DEVICES": "0"])
        #expect(throws: NeuronError.noDevices) { try sim.devices() }
    }

    @Test("errors say what to do")
    func guidance() {
        let notLoaded = NeuronError.driverNotLoaded.description
        #expect(notLoaded.contains("insmod driver/neuron.ko"))
        #expect(notLoaded.contains("scripts/vm-run"))
        #expect(notLoaded.contains("NEURON_BACKEND=sim"))
        #expect(NeuronError.permissionDenied(path: "/dev/neuron0").description.contains("usermod -aG neuron"))
        let mismatch = NeuronError.apiVersionMismatch(driverMajor: 2, driverMinor: 1, supportedMajor: 1).description
        #expect(mismatch.contains("2.1") && mismatch.contains("1.x"))
        #expect(NeuronError.noDevices.description.contains("fake_devices="))
    }

    @Test("fake serials follow the driver's formula")
    func serials() {
        // Values the driver printed for fake devices 0 and 1 (driver/neuron_fake.c).
        #expect(neuronFakeSerial(ordinal: 0) == "FAKEc9ec9a64b610")
        #expect(neuronFakeSerial(ordinal: 1) == "FAKE83ddf149f29e")
        #expect(Set((0..<16).map(neuronFakeSerial)).count == 16)
    }

    @Test("the ring links i to i-1 and i+1")
    func ring() {
        #expect(neuronRingNeighbours(of: 0, count: 1) == [])
        #expect(neuronRingNeighbours(of: 0, count: 2) == [1])
        #expect(neuronRingNeighbours(of: 0, count: 5) == [4, 1])
        #expect(neuronRingNeighbours(of: 4, count: 5) == [3, 0])
    }
}
