import CNeuronEngine
import Foundation
import NeuronISA
import Testing
import TestSupport

/// MATMUL with relu and an upper bound (ISA 1.13, NEURON_MATMUL_RELU and
/// NEURON_MATMUL_CLAMP): after the bias, CONV2D's relu (NaN kept, anything
/// not above zero +0) and bound (BINARY MIN's bits), on every path of the
/// product (register blocks, rows left over, columns past the panels, B in
/// panels, a transposed B copied into rows, the reference), whole and in
/// slices, with output rows contiguous (by vectors) or not (one by one).
@Suite("Engine: MATMUL with relu and an upper bound")
struct MatmulActivationTests {
    /// (m, k, n): blocks of rows and the rows left over, columns past the
    /// vectors, one row, and few columns.
    static let shapes: [(Int, Int, Int)] = [(37, 53, 29), (13, 40, 71), (1, 300, 100), (40, 64, 96), (6, 9, 5),
                                           (2304, 16, 48)]

    /// Each output of the definition: the product, the bias, relu, the bound.
    static func reference(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int, bias: [Float]?, relu: Bool,
                          clamp: Float?) -> [Float] {
        EngineResultTests().referenceMatmul(a, b, m: m, k: k, n: n, bias: bias).map { value in
            var v = value
            if relu, !(v > 0) { v = v.isNaN ? v : 0 }
            if let clamp, !(v < clamp || v.isNaN) { v = clamp }
            return v
        }
    }

    @Test("relu and the bound follow the bias bit for bit at every width, in panels, transposed, strided and sliced",
          arguments: shapes)
    func activation(_ shape: (Int, Int, Int)) throws {
        let (m, k, n) = shape
        var a = sample(m * k, seed: UInt32(m + 7)), b = sample(k * n, seed: UInt32(n + 3))
        let bias = sample(n, seed: 11)
        if m > 1 { a[0] = .nan }   // row 0: NaN throughout, which relu and the bound keep
        let bound: Float = 0.5
        let widths = [UInt32(NEURON_SIMD_SCALAR.rawValue)] + RowKernelTests.widths.map(\.level)
        var reached = false
        for (relu, clamp, withBias) in [(true, nil, true), (false, bound, true), (true, bound, false), (true, bound, true)] {
            let want = Self.reference(a, b, m: m, k: k, n: n, bias: withBias ? bias : nil, relu: relu, clamp: clamp)
            reached = reached || want.contains(bound)
            // B in rows, in panels, and transposed (stored [n, k]).
            let panels = try #require(NeuronProgram.panelMatmulWeights(b, k: k, n: n, pad: .nan))
            var transposed = [Float](repeating: 0, count: k * n)
            for r in 0..<k { for c in 0..<n { transposed[c * k + r] = b[r * n + c] } }
            for form in ["rows", "panels", "transposed"] {
            for columnStride in [1, 2] where form == "rows" || columnStride == 1 {
            for width in widths where neuron_simd_set_thread(width) == 0 {
            defer { _ = neuron_simd_set_thread(UInt32(NEURON_SIMD_CPU.rawValue)) }
            for sliced in [false, true] {
                let stored = form == "panels" ? panels : form == "transposed" ? transposed : b
                let slots = Slots([a.count * 4, stored.count * 4, n * 4, m * n * columnStride * 4])
                slots.set(0, a); slots.set(1, stored); slots.set(2, bias)
                slots.set(3, [Float](repeating: .nan, count: m * n * columnStride))
                let bView: NeuronTensorView = switch form {
                case "panels": .contiguous(slot: 1, dims: [UInt32((n + 31) / 32), UInt32(k), 32])
                case "transposed": NeuronTensorView(slot: 1, offset: 0, dims: [UInt32(k), UInt32(n)], strides: [1, UInt64(k)])
                default: .contiguous(slot: 1, dims: [UInt32(k), UInt32(n)])
                }
                let out = NeuronTensorView(slot: 3, offset: 0, dims: [UInt32(m), UInt32(n)],
                                           strides: [UInt64(n * columnStride), UInt64(columnStride)])
                var program = NeuronProgram()
                program.matmul(out, .contiguous(slot: 0, dims: [UInt32(m), UInt32(k)]), bView,
                               bias: withBias ? .contiguous(slot: 2, dims: [UInt32(n)]) : nil, bPanels: form == "panels",
                               relu: relu, clamp: clamp)
                if sliced {
                    try NeuronEngine.runSliced(program.image(), slots: slots.buffers, partsPerStep: 1, partWork: 4096)
                } else {
                    try slots.run(program)
                }
                let all = slots.floats(3)
                let got = (0..<(m * n)).map { all[$0 * columnStride] }
                let wrong = zip(got, want).filter { RowKernelTests.bits($0.0) != RowKernelTests.bits($0.1) }.count
                #expect(wrong == 0, "\(form), column stride \(columnStride), width \(width), sliced \(sliced), relu \(relu), bound \(clamp.map { "\($0)" } ?? "none"), bias \(withBias): \(wrong) of \(m * n) differ")
                #expect(m == 1 || got[0].isNaN, "NaN kept")
            }
            }
            }
            }
        }
        #expect(reached, "some outputs reach the bound")
    }

    @Test("relu and the bound are refused over int32, a NaN bound, and a bound without its flag")
    func refusals() throws {
        func refused(_ build: (inout NeuronProgram) -> Void) -> NeuronProgramError? {
            var program = NeuronProgram()
            build(&program)
            do { try Slots([4096, 4096]).run(program); return nil } catch { return error }
        }
        let a = NeuronTensorView.contiguous(slot: 0, dims: [4, 3]), b = NeuronTensorView.contiguous(slot: 0, dims: [3, 5], offset: 20)
        let out = NeuronTensorView.contiguous(slot: 1, dims: [4, 5])
        #expect(refused { $0.matmul(out, a, b, relu: true, clamp: 6) } == nil)
        for (bound, accepted) in [(Float.infinity, true), (-0.0, true), (.nan, false), (Float(bitPattern: 0xffc0_0001), false)] {
            #expect(refused { $0.matmul(out, a, b, clamp: bound) }?.kind == (accepted ? nil : .parameter), "bound \(bound.bitPattern)")
        }
        #expect(refused {
            $0.matmul(out, a, b)
            var bounded = $0.instructions[0]
            bounded.fparam.0 = 6   // a bound without NEURON_MATMUL_CLAMP
            $0.append(bounded)
        } == NeuronProgramError(kind: .parameter, index: 1))
        let ints = { (view: NeuronTensorView) -> NeuronTensorView in var v = view; v.dtype = .int32; return v }
        #expect(refused { $0.matmul(ints(out), ints(a), ints(b)) } == nil)
        #expect(refused { $0.matmul(ints(out), ints(a), ints(b), relu: true) }?.kind == .opcode)
        #expect(refused { $0.matmul(ints(out), ints(a), ints(b), clamp: 1) }?.kind == .opcode)
    }
}
