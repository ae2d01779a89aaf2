import ArgumentParser
import Foundation
import NeuronCompiler
import NeuronDevice
import NeuronNEFF

@main
struct NeuronCC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "neuron-cc",
        abstract: "The Neuron compiler: ONNX models into NEFF files for NeuronCores.",
        subcommands: [Inspect.self])
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print what a NEFF (or an ONNX model) holds.",
        discussion: """
            A NEFF: its name, UUID, NeuronCores, tensors (kind, dtype, shape, bytes) and, per \
            program, its NeuronCore, dependency, slots and instructions with their work. An ONNX \
            model: its opset, inputs, outputs, constants and the ops it uses.
            """)

    @Argument(help: "A .neff or .onnx file.")
    var file: String

    @Flag(help: "List every instruction of every program.")
    var instructions = false

    func run() throws {
        let head = (try? FileHandle(forReadingFrom: URL(fileURLWithPath: file)).read(upToCount: 4)) ?? nil
        if head.map(Array.init) == NEFFModel.magic {
            try inspectNEFF()
        } else {
            try inspectONNX()
        }
    }

    func inspectNEFF() throws {
        let model = try NEFFModel(contentsOf: file)
        print("NEFF \(file): model \(model.name), uuid \(model.uuid.map { String(format: "%02x", $0) }.joined())")
        print("  NeuronCores \(model.coreCount), programs \(model.programs.count), weights \(model.weightBytes) bytes")
        print("  tensors:")
        for tensor in model.tensors {
            let shape = tensor.shape.map(String.init).joined(separator: "x")
            print("    \(tensor.kind.rawValue.padding(toLength: 7, withPad: " ", startingAt: 0)) \(tensor.name): \(tensor.dtype) \(shape), \(tensor.byteCount ?? 0) bytes")
        }
        for (index, program) in model.programs.enumerated() {
            let sizes = program.slots.map { name in UInt64(name.flatMap { model.tensor(named: $0)?.byteCount } ?? 0) }
            let list = try NeuronEngine.instructions(program.image, slotSizes: sizes)
            let after = program.after.map { ", after program \($0)" } ?? ""
            let work = list.reduce(UInt64(0)) { $0 &+ $1.cost }
            print("  program \(index): NeuronCore \(program.core)\(after), \(program.image.count * 8) bytes, \(list.count) instructions, \(work) element operations")
            print("    slots: " + program.slots.enumerated().map { "\($0.offset)=\($0.element ?? "-")" }.joined(separator: " "))
            let counts = list.reduce(into: [String: Int]()) { $0[$1.name, default: 0] += 1 }
            print("    ops: " + counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            if instructions {
                for (at, insn) in list.enumerated() { print("      \(at): \(insn.name) (\(insn.cost))") }
            }
        }
    }

    func inspectONNX() throws {
        let graph = try ONNXImporter.load(contentsOf: file)
        func describe(_ info: ValueInfo) -> String {
            "\(info.name): \(info.type) " + (info.shape.map { $0.map(\.description).joined(separator: "x") } ?? "(no shape)")
        }
        print("ONNX \(file): graph \(graph.name.isEmpty ? "(unnamed)" : graph.name), opset \(graph.opset)")
        print("  nodes \(graph.nodes.count), constants \(graph.constants.count) (\(graph.constantBytes) bytes)")
        for input in graph.inputs { print("  input  \(describe(input))") }
        for output in graph.outputs { print("  output \(describe(output))") }
        print("  ops: " + graph.opCounts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
    }
}
