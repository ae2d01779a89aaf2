// swift-tools-version:6.0
// The libFuzzer targets of the Swift userspace: the NEFF reader and the
// ONNX importer with the compiler behind it. Built only by scripts/fuzz
// with AddressSanitizer and libFuzzer's coverage, never by the main
// package. Each target's top-level code hands its one-input function to
// libFuzzer's driver (CFuzzerDriver declares it; scripts/fuzz links it).
import PackageDescription

let package = Package(
    name: "neuron-fuzz",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(name: "neuron", path: "../../.."),
    ],
    targets: [
        .target(name: "CFuzzerDriver"),
        .executableTarget(
            name: "fuzz-neff",
            dependencies: [
                "CFuzzerDriver",
                .product(name: "NeuronNEFF", package: "neuron"),
            ]
        ),
        .executableTarget(
            name: "fuzz-onnx",
            dependencies: [
                "CFuzzerDriver",
                .product(name: "NeuronCompiler", package: "neuron"),
                .product(name: "NeuronNEFF", package: "neuron"),
            ]
        ),
    ]
)
