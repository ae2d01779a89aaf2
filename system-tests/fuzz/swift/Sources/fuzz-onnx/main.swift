// The ONNX importer and the compiler behind it under libFuzzer: any bytes
// are imported (or refused with an error) and whatever imports compiles
// (or is refused with an error), without a crash, a trap or a hang, and
// what compiles is a NEFF that reads back.
import CFuzzerDriver
import Foundation
import NeuronCompiler
import NeuronNEFF

func fuzzONNX(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let data = Data(UnsafeBufferPointer(start: start, count: count))
    guard let graph = try? ONNXImporter.load(data, name: "fuzz.onnx") else { return 0 }
    guard let (model, _) = try? NeuronCompiler.compile(graph) else { return 0 }
    do {
        _ = try NEFFModel(bytes: try model.serialized())
    } catch {
        fatalError("the compiler wrote a NEFF that does not read back: \(error)")
    }
    return 0
}

var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzONNX))
