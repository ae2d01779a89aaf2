import CNeuronEngine
import Foundation
import NeuronISA
import Testing
import TestSupport

/// MATMUL with B in panels (ISA 1.11, NEURON_MATMUL_B_PANELS): B laid out
/// `[ceil(N/32), K, 32]` gives the product of B in rows, bit for bit, on
/// every path: register blocks with B read in place panel by panel, a few
/// rows through the tiles of 8, 4 and 2 vectors, the columns past the
/// last panel, the reference (a panel's rows not 32 apart), batches and
/// slices; the lanes past N are never read (they hold NaN here).
@Suite("Engine: MATMUL with B in panels")
struct MatmulPanelsTests {
    /// (batch, m, k, n): tails of 1 to 31 columns, few rows and many, K past
    /// a block of 256.
    static let shapes: [(Int, Int, Int, Int)] = [
        (1, 1, 300, 2100), (1, 2, 70, 300), (1, 3, 45, 100), (1, 4, 9, 48), (1, 9, 1344, 192), (1, 13, 40, 71),
        (1, 33, 17, 129), (1, 40, 600, 96), (1, 7, 50, 33), (1, 5, 3, 1), (2, 6, 30, 40), (1, 128, 300, 64),
        (1, 14, 70, 64), (1, 27, 33, 100), (1, 11, 50, 40),
    ]

    /// The program (bias on every other shape) and the definition's output.
    func run(_ shape: (Int, Int, Int, Int), panelRowStride: Int = NeuronProgram.matmulPanel,
             partWork: UInt64? = nil) throws -> (got: [UInt32], want: [UInt32]) {
        let (batch, m, k, n) = shape
        let width = NeuronProgram.matmulPanel, panels = (n + width - 1) / width
        let a = sample(batch * m * k, seed: UInt32(m + k)), b = sample(k * n, seed: UInt32(n)), bias = sample(n, seed: 3)
        let withBias = (m + n) % 2 == 1
        // Panels with rows `panelRowStride` apart: NaN in every lane the product must not read.
        let laid = try #require(NeuronProgram.panelMatmulWeights(b, k: k, n: n, pad: .nan))
        var strided = [Float](repeating: .nan, count: panels * k * panelRowStride)
        for index in laid.indices {
            let (panel, row, lane) = (index / (k * width), index / width % k, index % width)
            strided[(panel * k + row) * panelRowStride + lane] = laid[index]
        }
        let slots = Slots([a.count * 4, strided.count * 4, n * 4, batch * m * n * 4])
        slots.set(0, a); slots.set(1, strided); slots.set(2, bias)
        slots.set(3, [Float](repeating: .nan, count: batch * m * n))
        let out: NeuronTensorView = batch == 1 ? .contiguous(slot: 3, dims: [UInt32(m), UInt32(n)])
                                               : .contiguous(slot: 3, dims: [UInt32(batch), UInt32(m), UInt32(n)])
        let x: NeuronTensorView = batch == 1 ? .contiguous(slot: 0, dims: [UInt32(m), UInt32(k)])
                                             : .contiguous(slot: 0, dims: [UInt32(batch), UInt32(m), UInt32(k)])
        let bView = NeuronTensorView(slot: 1, offset: 0, dims: [UInt32(panels), UInt32(k), UInt32(width)],
                                     strides: [UInt64(k * panelRowStride), UInt64(panelRowStride), 1])
        var program = NeuronProgram()
        program.matmul(out, x, bView, bias: withBias ? .contiguous(slot: 2, dims: [UInt32(n)]) : nil, bPanels: true)
        if let partWork {
            try NeuronEngine.runSliced(program.image(), slots: slots.buffers, partsPerStep: 1, partWork: partWork)
        } else {
            try slots.run(program)
        }
        var want: [Float] = []
        for index in 0..<batch {
            want += EngineResultTests().referenceMatmul(Array(a[(index * m * k)..<((index + 1) * m * k)]), b,
                                                        m: m, k: k, n: n, bias: withBias ? bias : nil)
        }
        return (slots.floats(3).map(RowKernelTests.bits), want.map(RowKernelTests.bits))
    }

    @Test("B in panels gives the product's bits at every width this CPU runs, whole and in slices")
    func everyWidth() throws {
        var ran: [String] = []
        for (name, level) in [("scalar", NEURON_SIMD_SCALAR), ("avx2", NEURON_SIMD_AVX2), ("avx512", NEURON_SIMD_AVX512)] {
            guard neuron_simd_set_thread(UInt32(level.rawValue)) == 0 else { continue }
            defer { _ = neuron_simd_set_thread(UInt32(NEURON_SIMD_CPU.rawValue)) }
            for shape in Self.shapes {
                let (got, want) = try run(shape)
                #expect(got == want, "\(shape) at \(name): \(zip(got, want).filter { $0 != $1 }.count) of \(got.count) differ")
            }
            ran.append(name)
        }
        // A panel's rows 33 floats apart: the reference reads them.
        for shape in Self.shapes.prefix(4) {
            let (got, want) = try run(shape, panelRowStride: 33)
            #expect(got == want, "\(shape) with rows 33 apart")
        }
        for shape in Self.shapes where shape.1 * shape.2 * shape.3 > 20_000 {
            let (got, want) = try run(shape, partWork: 5000)
            #expect(got == want, "\(shape) in slices")
        }
        print("matmul panels: compared at \(ran.joined(separator: ", ")) (this CPU's own width: \(RowKernelTests.name(neuron_simd_level())))")
        #expect(ran.count >= 1)
    }

    @Test("B in panels is refused in bf16 pairs, with bf16 or integer operands, or of the wrong shape")
    func refused() {
        let out = NeuronTensorView.contiguous(slot: 2, dims: [4, 40])
        let a = NeuronTensorView.contiguous(slot: 0, dims: [4, 8])
        func panels(_ dims: [UInt32], dtype: NeuronDType = .float32) -> NeuronTensorView {
            .contiguous(slot: 1, dims: dims, dtype: dtype)
        }
        var cases: [NeuronProgram] = []
        func add(_ build: (inout NeuronProgram) -> Void) { var p = NeuronProgram(); build(&p); cases.append(p) }
        add { $0.matmul(out, a, panels([2, 8, 32]), bf16Pairs: true, bPanels: true) }
        add { $0.matmul(out, a, panels([2, 8, 32], dtype: .bfloat16), bPanels: true) }
        add { $0.matmul(out, .contiguous(slot: 0, dims: [4, 8], dtype: .bfloat16), panels([2, 8, 32]), bPanels: true) }
        add { $0.matmul(.contiguous(slot: 2, dims: [4, 40], dtype: .int32), .contiguous(slot: 0, dims: [4, 8], dtype: .int32),
                        panels([2, 8, 32], dtype: .int32), bPanels: true) }
        add { $0.matmul(out, a, panels([1, 8, 32]), bPanels: true) }      // too few panels for 40 columns
        add { $0.matmul(out, a, panels([3, 8, 32]), bPanels: true) }      // too many
        add { $0.matmul(out, a, panels([2, 8, 16]), bPanels: true) }      // panels of 16
        add { $0.matmul(out, a, panels([2, 9, 32]), bPanels: true) }      // K differs
        add { $0.matmul(out, a, panels([8, 40]), bPanels: true) }         // B in rows with the flag
        add { $0.matmul(out, a, panels([2, 8, 32]), bias: .contiguous(slot: 3, dims: [32]), bPanels: true) }
        for program in cases {
            #expect(throws: NeuronProgramError.self) { try Slots([4096, 8192, 4096, 4096]).run(program) }
        }
        var good = NeuronProgram()
        good.matmul(out, a, panels([2, 8, 32]), bias: .contiguous(slot: 3, dims: [40]), bPanels: true)
        #expect(throws: Never.self) { try Slots([4096, 8192, 4096, 4096]).run(good) }
    }
}
