// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "neuron",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "NeuronISA", targets: ["NeuronISA"]),
        .library(name: "NeuronDevice", targets: ["NeuronDevice"]),
        .library(name: "NeuronNEFF", targets: ["NeuronNEFF"]),
        .library(name: "NeuronRuntime", targets: ["NeuronRuntime"]),
        .library(name: "NeuronCompiler", targets: ["NeuronCompiler"]),
        .executable(name: "neuron-ls", targets: ["neuron-ls"]),
        .executable(name: "neuron-bench", targets: ["neuron-bench"]),
        .executable(name: "neuron-run", targets: ["neuron-run"]),
        .executable(name: "neuron-cc", targets: ["neuron-cc"]),
        .executable(name: "neuron-profile", targets: ["neuron-profile"]),
        // libnrt.so: the C API (Sources/CNRT/include/nrt.h).
        .library(name: "nrt", type: .dynamic, targets: ["NeuronRT"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // The driver's uapi header (driver/include/uapi/neuron.h, included in
        // place, never copied) plus the ioctl request codes and a
        // non-variadic ioctl(2) that Swift can call.
        .target(name: "CNeuronUAPI"),
        // The engine: the very C sources neuron.ko builds (driver/engine),
        // with the same float semantics, so simulator and driver agree bit
        // for bit; optimised as the kernel builds it, in debug builds too.
        .target(
            name: "CNeuronEngine",
            path: "driver/engine",
            sources: ["engine_validate.c", "engine_exec.c", "engine_typed.c", "engine_math.c", "engine_gemm.c", "engine_conv.c", "engine_pool.c", "engine_winograd.c", "engine_split.c", "engine_insn.c", "engine_run.c"],
            publicHeadersPath: "include",
            cSettings: [.unsafeFlags(["-O2", "-ffp-contract=off", "-fno-math-errno", "-std=gnu11"])]
        ),
        // libudev, found with pkg-config (libudev-dev; scripts/setup installs it).
        .systemLibrary(
            name: "CLibudev",
            pkgConfig: "libudev",
            providers: [.apt(["libudev-dev"])]
        ),
        // The ISA in Swift: dtypes, bfloat16, the program builder, the
        // engine run in this process, weight layouts. No device needed.
        .target(name: "NeuronISA", dependencies: ["CNeuronEngine"]),
        .target(
            name: "NeuronDevice",
            dependencies: [
                "NeuronISA",
                "CNeuronUAPI",
                "CNeuronEngine",
                "CLibudev",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // NEFF: the compiled-model file format (docs/neff.md), reader and writer.
        .target(
            name: "NeuronNEFF",
            dependencies: [
                "NeuronISA",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The runtime: visible NeuronCores, loading NEFFs on core groups,
        // shared weights, tensors, execution.
        .target(name: "NeuronRuntime", dependencies: ["NeuronDevice", "NeuronNEFF", "NeuronProfile"]),
        // Profiles: the capture format (job traces with the NEFF's layer
        // names), its summaries and its Perfetto and TensorBoard views.
        .target(name: "NeuronProfile", dependencies: ["NeuronDevice", "NeuronNEFF", "NeuronISA", "NeuronCLI"]),
        // The C API: its header and the C side of its data structures ...
        .target(name: "CNRT"),
        // ... and its implementation over the runtime.
        .target(name: "NeuronRT", dependencies: ["CNRT", "NeuronRuntime", "NeuronNEFF", "NeuronDevice"]),
        // The compiler: ONNX import (ONNX/onnx.pb.swift is generated from
        // onnx.proto by scripts/gen-onnx-proto and committed), the graph IR.
        .target(
            name: "NeuronCompiler",
            dependencies: [
                "NeuronISA", "NeuronNEFF",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        // What the command-line tools share: JSON, standard error, latency
        // percentiles, tables, .npy files (no device: neuron-cc uses it too) ...
        .target(name: "NeuronCLI", dependencies: ["NeuronISA", "NeuronNEFF"]),
        // ... and device listings and topology (neuron-ls, later neuron-top).
        .target(name: "NeuronDeviceListing", dependencies: ["NeuronDevice", "NeuronCLI"]),
        .executableTarget(
            name: "neuron-ls",
            dependencies: [
                "NeuronDevice",
                "NeuronCLI",
                "NeuronDeviceListing",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "neuron-bench",
            dependencies: [
                "NeuronDevice", "NeuronCompiler", "NeuronCLI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "neuron-run",
            dependencies: [
                "NeuronDevice", "NeuronNEFF", "NeuronRuntime", "NeuronCLI", "NeuronProfile",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "neuron-cc",
            dependencies: [
                "NeuronCompiler", "NeuronISA", "NeuronNEFF", "NeuronCLI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "neuron-profile",
            dependencies: [
                "NeuronNEFF", "NeuronRuntime", "NeuronProfile", "NeuronCLI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Tests, one target per layer they test; TestSupport holds what
        // several share (the backend under test, running the built tools,
        // engine slots, the tiny model).
        .target(
            name: "TestSupport",
            dependencies: ["NeuronDevice", "NeuronNEFF"],
            path: "Tests/TestSupport"
        ),
        .testTarget(name: "NeuronISATests", dependencies: ["NeuronISA", "NeuronDevice", "TestSupport"]),
        .testTarget(
            name: "NeuronDeviceTests",
            dependencies: ["NeuronDevice", "NeuronCLI", "NeuronDeviceListing", "TestSupport"]
        ),
        .testTarget(
            name: "NeuronNEFFTests",
            dependencies: [
                "NeuronNEFF", "NeuronDevice", "TestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .testTarget(name: "NeuronRuntimeTests", dependencies: ["NeuronRuntime", "NeuronNEFF", "NeuronDevice", "TestSupport"]),
        .testTarget(
            name: "NeuronCompilerTests",
            dependencies: [
                "NeuronCompiler", "NeuronRuntime", "NeuronNEFF", "NeuronDevice", "NeuronProfile", "TestSupport",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        .testTarget(
            name: "ToolTests",
            dependencies: ["NeuronCLI", "NeuronDeviceListing", "NeuronDevice", "NeuronNEFF", "NeuronRuntime", "TestSupport"]
        ),
        .testTarget(name: "SwiftMirrorTests", dependencies: ["NeuronDevice", "NeuronRuntime"]),
    ],
    swiftLanguageModes: [.v6]
)
