// The NEFF reader under libFuzzer: any bytes are read without a crash, a
// trap or a hang, and whatever it accepts writes back to a file that reads
// the same.
import CFuzzerDriver
import Foundation
import NeuronNEFF

func fuzzNEFF(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    var bytes = Array(UnsafeBufferPointer(start: start, count: count))
    // The header's SHA-256 of the payload would refuse almost every
    // mutation before the archive, metadata and programs are read: make
    // it right, so that the fuzzer explores what is behind it (bytes 24-55
    // are the payload's hash: docs/neff.md).
    let headerSize = NEFFModel.headerSize
    if bytes.count >= headerSize, bytes.starts(with: Array("NEFF".utf8)) {
        let payload = bytes[headerSize...]
        bytes.replaceSubrange(24..<56, with: NEFFModel.sha256(payload))
    }
    guard let model = try? NEFFModel(bytes: bytes) else { return 0 }
    // Accepted: it must write, and read back the same.
    let written: [UInt8]
    do {
        written = try model.serialized()
    } catch {
        fatalError("an accepted NEFF does not write back: \(error)")
    }
    guard let again = try? NEFFModel(bytes: written) else {
        fatalError("a NEFF written from an accepted one is refused")
    }
    precondition(again.name == model.name && again.coreCount == model.coreCount
                 && again.tensors.count == model.tensors.count
                 && again.programs.count == model.programs.count,
                 "a NEFF read back differs from the one written")
    return 0
}

var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzNEFF))
