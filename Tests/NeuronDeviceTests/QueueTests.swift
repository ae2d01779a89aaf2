import CNeuronEngine
import Foundation
import NeuronDevice
import Testing
import TestSupport

/// One program over two buffers: slot 0 holds inputs (random), slot 1 the
/// outputs. `indices` are int32 values written at element `at` of slot 0.
struct QueueCase: Sendable, CustomStringConvertible {
    var name: String
    var inputs: Int               // floats in slot 0
    var outputs: Int              // floats in slot 1
    var indices: (at: Int, values: [Int32])? = nil
    var build: @Sendable (inout NeuronProgram) -> Void

    var description: String { name }

    static func input(_ dims: [Int], at offset: Int = 0, dtype: NeuronDType = .float32) -> NeuronTensorView {
        .contiguous(slot: 0, dims: dims.map(UInt32.init), dtype: dtype, offset: UInt64(offset))
    }

    static func output(_ dims: [Int], at offset: Int = 0, dtype: NeuronDType = .float32) -> NeuronTensorView {
        .contiguous(slot: 1, dims: dims.map(UInt32.init), dtype: dtype, offset: UInt64(offset))
    }

    /// Every opcode and sub-operation, and instructions large enough to be
    /// run in slices by a queue.
    static let all: [QueueCase] = {
        var cases: [QueueCase] = [
            QueueCase(name: "fill", inputs: 1, outputs: 63) { $0.fill(output([7, 9]), value: 3.25) },
            QueueCase(name: "copy transposed", inputs: 63, outputs: 63) {
                $0.copy(output([9, 7]), from: input([7, 9]).swapping(0, 1))
            },
            QueueCase(name: "matmul with bias", inputs: 37 * 29 + 29 * 41 + 41, outputs: 37 * 41) {
                $0.matmul(output([37, 41]), input([37, 29]), input([29, 41], at: 37 * 29),
                          bias: input([41], at: 37 * 29 + 29 * 41))
            },
            QueueCase(name: "batched matmul, b transposed", inputs: 3 * 8 * 16 * 2, outputs: 3 * 8 * 8) {
                $0.matmul(output([3, 8, 8]), input([3, 8, 16]), input([3, 8, 16], at: 384).swapping(1, 2))
            },
            QueueCase(name: "bf16 matmul", inputs: 2048, outputs: 24 * 20) {
                $0.matmul(output([24, 20]), input([24, 32], dtype: .bfloat16),
                          input([32, 20], at: 24 * 32, dtype: .bfloat16))
            },
            // ISA 1.9: bf16 pairs, f32 A rounded as read, bf16 B, odd K.
            QueueCase(name: "matmul in bf16 pairs", inputs: 24 * 33 + 330 + 20, outputs: 24 * 20) {
                $0.matmul(output([24, 20]), input([24, 33]), input([33, 20], at: 2 * 24 * 33, dtype: .bfloat16),
                          bias: input([20], at: 24 * 33 + 330), bf16Pairs: true)
            },
            QueueCase(name: "large matmul in bf16 pairs, run in slices", inputs: 300 * 160 + 160 * 90, outputs: 300 * 90) {
                $0.matmul(output([300, 90]), input([300, 160]), input([160, 90], at: 300 * 160), bf16Pairs: true)
            },
            // ISA 1.11: B in panels of 32 columns (a tail of 4), few rows and many.
            QueueCase(name: "matmul with B in panels and bias", inputs: 9 * 70 + 4 * 70 * 32 + 100, outputs: 9 * 100) {
                $0.matmul(output([9, 100]), input([9, 70]), input([4, 70, 32], at: 9 * 70),
                          bias: input([100], at: 9 * 70 + 4 * 70 * 32), bPanels: true)
            },
            QueueCase(name: "large matmul with B in panels, run in slices", inputs: 300 * 160 + 3 * 160 * 32,
                      outputs: 300 * 90) {
                $0.matmul(output([300, 90]), input([300, 160]), input([3, 160, 32], at: 300 * 160), bPanels: true)
            },
            QueueCase(name: "large matmul, run in slices", inputs: 300 * 160 + 160 * 90, outputs: 300 * 90) {
                $0.matmul(output([300, 90]), input([300, 160]), input([160, 90], at: 300 * 160))
            },
            QueueCase(name: "wide matmul with bias, sliced by columns", inputs: 4 * 512 + 512 * 1500 + 1500,
                      outputs: 4 * 1500) {
                $0.matmul(output([4, 1500]), input([4, 512]), input([512, 1500], at: 2048),
                          bias: input([1500], at: 2048 + 512 * 1500))
            },
            QueueCase(name: "softmax", inputs: 330, outputs: 330) { $0.softmax(output([10, 33]), input([10, 33])) },
            QueueCase(name: "layernorm", inputs: 330 + 66, outputs: 330) {
                $0.layerNorm(output([10, 33]), input([10, 33]), scale: input([33], at: 330),
                             bias: input([33], at: 363), epsilon: 1e-5)
            },
            // ISA 1.8: sums in lanes (the driver's table takes the flag).
            QueueCase(name: "softmax in lanes", inputs: 330, outputs: 330) {
                $0.softmax(output([10, 33]), input([10, 33]), laneSums: true)
            },
            QueueCase(name: "layernorm in lanes", inputs: 330 + 66, outputs: 330) {
                $0.layerNorm(output([10, 33]), input([10, 33]), scale: input([33], at: 330),
                             bias: input([33], at: 363), epsilon: 1e-5, laneSums: true)
            },
            QueueCase(name: "casts", inputs: 64, outputs: 64 * 4) {
                $0.cast(output([64], dtype: .bfloat16), input([64]))
                $0.cast(output([32], at: 32), input([32], dtype: .bfloat16))
                $0.cast(output([64], at: 64, dtype: .int32), input([64]))
                $0.cast(output([32], at: 128), input([32], at: 0, dtype: .int32))
                $0.cast(output([32], at: 80, dtype: .int64), input([32]))
            },
            QueueCase(name: "gather", inputs: 160 + 8, outputs: 5 * 8, indices: (160, [3, 0, 19, 7, 3])) {
                $0.gather(output([5, 8]), table: input([20, 8]), indices: input([5], at: 160, dtype: .int32))
            },
            QueueCase(name: "conv2d groups, stride, padding, bias, relu", inputs: 2 * 4 * 81 + 6 * 2 * 9 + 6,
                      outputs: 2 * 6 * 25) {
                $0.conv2d(output([2, 6, 5, 5]), input([2, 4, 9, 9]), weight: input([6, 2, 3, 3], at: 648),
                          bias: input([6], at: 648 + 108),
                          window: NeuronWindow(stride: (2, 2), padding: (1, 1, 1, 1)), relu: true)
            },
            QueueCase(name: "large conv2d, run in slices of channels", inputs: 32 * 576 + 64 * 288 + 64,
                      outputs: 64 * 576) {
                $0.conv2d(output([1, 64, 24, 24]), input([1, 32, 24, 24]), weight: input([64, 32, 3, 3], at: 18432),
                          bias: input([64], at: 18432 + 18432), window: NeuronWindow(padding: (1, 1, 1, 1)))
            },
            QueueCase(name: "grouped conv2d, sliced by groups", inputs: 1024 * 576 + 1024 * 4 * 25,
                      outputs: 1024 * 576) {
                $0.conv2d(output([1, 1024, 24, 24]), input([1, 1024, 24, 24]),
                          weight: input([1024, 4, 5, 5], at: 1024 * 576), window: NeuronWindow(padding: (2, 2, 2, 2)))
            },
            // ISA 1.12: ReLU6 in the convolution (relu and an upper bound),
            // depthwise of stride 2 on rows in blocks of four, and packed.
            QueueCase(name: "depthwise conv2d with relu and a bound, stride 2", inputs: 48 * 48 * 48 + 48 * 9 + 48,
                      outputs: 48 * 24 * 24) {
                $0.conv2d(output([1, 48, 24, 24]), input([1, 48, 48, 48]), weight: input([48, 1, 3, 3], at: 48 * 48 * 48),
                          bias: input([48], at: 48 * 48 * 48 + 48 * 9),
                          window: NeuronWindow(stride: (2, 2), padding: (0, 0, 1, 1)), relu: true, clamp: 0.5)
            },
            QueueCase(name: "conv2d with packed weights and a bound", inputs: 20 * 14 * 14 + 2 * 20 * 6,
                      outputs: 12 * 14 * 14) {
                $0.conv2d(output([1, 12, 14, 14]), input([1, 20, 14, 14]), weight: input([2, 20, 1, 1, 6], at: 20 * 14 * 14),
                          relu: true, clamp: 0.25, packedWeights: true)
            },
            QueueCase(name: "conv2d, sliced by output rows", inputs: 32 * 128 * 128 + 32 * 16 * 9 + 32,
                      outputs: 32 * 64 * 64) {
                $0.conv2d(output([1, 32, 64, 64]), input([1, 32, 128, 128]),
                          weight: input([32, 16, 3, 3], at: 32 * 128 * 128),
                          bias: input([32], at: 32 * 128 * 128 + 32 * 16 * 9),
                          window: NeuronWindow(stride: (2, 2), padding: (3, 1, 0, 1), dilation: (2, 1)), relu: true)
            },
            // ISA 1.10: convolutions in bf16 pairs, a 1x1 read in place
            // and a strided 3x3 whose windows are gathered.
            QueueCase(name: "1x1 conv2d in bf16 pairs, sliced", inputs: 40 * 30 * 30 + 48 * 20 + 48,
                      outputs: 48 * 30 * 30) {
                $0.conv2d(output([1, 48, 30, 30]), input([1, 40, 30, 30]),
                          weight: input([48, 40, 1, 1], at: 2 * 40 * 30 * 30, dtype: .bfloat16),
                          bias: input([48], at: 40 * 30 * 30 + 48 * 20), relu: true, bf16Pairs: true)
            },
            QueueCase(name: "strided conv2d in bf16 pairs, gathered windows", inputs: 24 * 41 * 41 + 36 * 24 * 9,
                      outputs: 36 * 21 * 21) {
                $0.conv2d(output([1, 36, 21, 21]), input([1, 24, 41, 41]),
                          weight: input([36, 24, 3, 3], at: 24 * 41 * 41),
                          window: NeuronWindow(stride: (2, 2), padding: (1, 1, 1, 1)), bf16Pairs: true)
            },
            QueueCase(name: "conv2d with packed weights, sliced by output rows", inputs: 40 * 30 * 30 + 6 * 40 * 9 * 6,
                      outputs: 36 * 30 * 30) {
                $0.conv2d(output([1, 36, 30, 30]), input([1, 40, 30, 30]),
                          weight: input([6, 40, 3, 3, 6], at: 40 * 30 * 30),
                          window: NeuronWindow(padding: (1, 1, 1, 1)), relu: true, packedWeights: true)
            },
            QueueCase(name: "Winograd conv2d, sliced by pairs of rows", inputs: 24 * 31 * 29 + 16 * 5 * 24 * 6 + 30,
                      outputs: 30 * 31 * 29) {
                $0.conv2d(output([1, 30, 31, 29]), input([1, 24, 31, 29]),
                          weight: input([16, 5, 24, 6], at: 24 * 31 * 29),
                          bias: input([30], at: 24 * 31 * 29 + 16 * 5 * 24 * 6),
                          window: NeuronWindow(padding: (1, 1, 1, 1)), relu: true, winograd: true)
            },
            QueueCase(name: "Winograd F(4x4, 3x3) conv2d, sliced by rows of four",
                      inputs: 24 * 31 * 29 + 36 * 5 * 24 * 6 + 30, outputs: 30 * 31 * 29) {
                $0.conv2d(output([1, 30, 31, 29]), input([1, 24, 31, 29]),
                          weight: input([36, 5, 24, 6], at: 24 * 31 * 29),
                          bias: input([30], at: 24 * 31 * 29 + 36 * 5 * 24 * 6),
                          window: NeuronWindow(padding: (1, 1, 1, 1)), relu: true, winograd: true)
            },
            QueueCase(name: "conv2d with packed weights, accumulating into its output",
                      inputs: 40 * 30 * 30 + 6 * 40 * 9 * 6, outputs: 36 * 30 * 30) {
                $0.copy(output([1, 36, 30, 30]), from: input([1, 36, 30, 30]))
                $0.conv2d(output([1, 36, 30, 30]), input([1, 40, 30, 30]),
                          weight: input([6, 40, 3, 3, 6], at: 40 * 30 * 30),
                          window: NeuronWindow(padding: (1, 1, 1, 1)), relu: true, packedWeights: true, accumulate: true)
            },
            QueueCase(name: "conv2d with packed weights, one output row, sliced by blocks of channels",
                      inputs: 64 * 2 * 300 + 50 * 64 * 6 * 6 + 299, outputs: 299 * 300) {
                $0.conv2d(output([1, 299, 1, 300]), input([1, 64, 2, 300]),
                          weight: input([50, 64, 2, 3, 6], at: 64 * 2 * 300),
                          bias: input([299], at: 64 * 2 * 300 + 50 * 64 * 6 * 6),
                          window: NeuronWindow(padding: (0, 1, 0, 1)), packedWeights: true)
            },
            QueueCase(name: "pool2d, sliced by output rows", inputs: 3 * 400 * 400, outputs: 3 * 400 * 400) {
                $0.pool2d(.avg, output([1, 3, 400, 400]), input([1, 3, 400, 400]), kernel: (7, 7),
                          window: NeuronWindow(padding: (3, 3, 3, 3)))
            },
        ]
        for op in NeuronBinaryOp.allCases where ![.and, .or, .xor, .shl, .shr].contains(op) {
            cases.append(QueueCase(name: "binary \(op)", inputs: 16 * 33 + 33, outputs: 16 * 33) {
                var row = input([16, 33], at: 16 * 33)
                row.strides[0] = 0
                $0.binary(op, output([16, 33]), input([16, 33]), row)
            })
        }
        for op in NeuronUnaryOp.allCases where op != .not {
            cases.append(QueueCase(name: "unary \(op)", inputs: 200, outputs: 200) {
                $0.unary(op, output([8, 25]), input([8, 25]), alpha: 0.1)
            })
        }
        for op in NeuronReduceOp.allCases where op != .argmax && op != .argmin {
            cases.append(QueueCase(name: "reduce \(op)", inputs: 600, outputs: 12) {
                $0.reduce(op, output([12, 1]), input([12, 50]))
            })
        }
        // ISA 1.4: the other element types, over the same bytes seen as
        // each type (every bit pattern is a value of an integer type).
        for op in NeuronBinaryOp.allCases where op != .pow {
            for type in [NeuronDType.int32, .uint8, .int64] {
                cases.append(QueueCase(name: "binary \(op) of \(type)", inputs: 64 * 33, outputs: 64 * 33) {
                    var row = input([16, 33], at: 16 * 33, dtype: type)
                    row.strides[0] = 0
                    $0.binary(op, output([16, 33], dtype: type), input([16, 33], dtype: type), row)
                })
            }
        }
        for op in NeuronCompareOp.allCases {
            cases.append(QueueCase(name: "compare \(op)", inputs: 2 * 300, outputs: 300) {
                $0.compare(op, output([12, 25], dtype: .bool), input([12, 25]), input([12, 25], at: 300))
            })
        }
        cases += [
            QueueCase(name: "select of int16", inputs: 600, outputs: 300) {
                $0.select(output([20, 15], dtype: .int16), condition: input([20, 15], dtype: .bool),
                          input([20, 15], at: 300, dtype: .int16), input([20, 15], at: 600, dtype: .int16))
            },
            QueueCase(name: "not of bool and of uint16", inputs: 300, outputs: 300) {
                $0.unary(.not, output([20, 15], dtype: .bool), input([20, 15], dtype: .bool))
                $0.unary(.not, output([10, 15], at: 150, dtype: .uint16), input([10, 15], dtype: .uint16))
            },
            QueueCase(name: "argmax and argmin, first and last", inputs: 600, outputs: 48) {
                $0.reduce(.argmax, output([12, 1], dtype: .int64), input([12, 50]))
                $0.reduce(.argmin, output([12, 1], at: 12, dtype: .int64), input([12, 50]), lastIndex: true)
            },
            QueueCase(name: "cast float32 to float16, int8, bool and float64, and back", inputs: 300, outputs: 1200) {
                $0.cast(output([300], dtype: .float16), input([300]))
                $0.cast(output([300], at: 300, dtype: .int8), input([300]))
                $0.cast(output([300], at: 900, dtype: .bool), input([300]))
                $0.cast(output([100], at: 400, dtype: .float64), input([100]))
                $0.cast(output([100], at: 0), input([100], dtype: .int32), wrap: true)
            },
        ]
        // ISA 1.5: float64 arithmetic (inputs and outputs counted in floats, two per element).
        for op in NeuronBinaryOp.allCases where op.rawValue <= NeuronBinaryOp.fmod.rawValue && op != .pow {
            cases.append(QueueCase(name: "binary \(op) of float64", inputs: 400, outputs: 200) {
                $0.binary(op, output([10, 10], dtype: .float64), input([10, 10], dtype: .float64),
                          input([10, 10], at: 100, dtype: .float64))
            })
        }
        cases.append(QueueCase(name: "float64 exp, log, sqrt, floor, round and reductions", inputs: 200, outputs: 1040) {
            for (index, op) in [NeuronUnaryOp.exp, .log, .sqrt, .floor, .round].enumerated() {
                $0.unary(op, output([100], at: index * 100, dtype: .float64), input([100], dtype: .float64))
            }
            for (index, op) in [NeuronReduceOp.sum, .mean, .max, .min, .prod].enumerated() {
                $0.reduce(op, output([2, 1], at: 500 + index * 2, dtype: .float64), input([2, 50], dtype: .float64))
            }
        })
        for op in NeuronScatterOp.allCases {
            cases.append(QueueCase(name: "scatter \(op) of float32, repeated and negative indices", inputs: 16 + 6, outputs: 16,
                                   indices: (16, [3, 0, 15, -1, 3, 7])) {
                $0.copy(output([16]), from: input([16]))
                $0.scatter(op, output([16]), indices: input([6], at: 16, dtype: .int32), updates: input([6]))
            })
        }
        // ISA 1.7: TOPK, a few indices of rows, and a whole sort (k = n) of rows read down columns.
        cases.append(QueueCase(name: "top 17 largest of 40 rows of 300, and a whole sort smallest first of 300 rows read down columns",
                               inputs: 40 * 300, outputs: 2 * (40 * 17 + 300 * 40)) {
            $0.topK(.largest, output([40, 17], dtype: .int64), input([40, 300]))
            $0.topK(.smallest, output([300, 40], at: 40 * 17, dtype: .int64), input([40, 300]).swapping(0, 1))
        })
        // ISA 1.6: into each storage type from float64 of random bits (huge, tiny, NaN) and int32, and
        // every code of each back to float32 (outputs counted in floats: 300 bytes per narrowing).
        let small: [NeuronDType] = [.float8E4M3FN, .float8E4M3FNUZ, .float8E5M2, .float8E5M2FNUZ, .float8E8M0, .float4E2M1,
                                    .int4, .uint4, .int2, .uint2]
        cases.append(QueueCase(name: "cast into and out of float8, float4 and the sub-byte integers", inputs: 300,
                               outputs: 2 * 75 * small.count + 256 * small.count) {
            for (k, type) in small.enumerated() {
                $0.cast(output([150], at: 300 * k, dtype: type), input([150], dtype: .float64))
                $0.cast(output([150], at: 300 * k + 150, dtype: type), input([150], dtype: .int32),
                        wrap: k % 2 == 0, saturate: k > 4 || k % 2 == 1, e8m0: k == 4 ? .up : .nearest)
                $0.cast(output([256], at: 150 * small.count + 256 * k), input([256], dtype: type))
            }
        })
        cases.append(QueueCase(name: "int32 matmul with a bias, wrapping", inputs: 3 * 40 + 40 * 7 + 7, outputs: 21) {
            $0.matmul(output([3, 7], dtype: .int32), input([3, 40], dtype: .int32), input([40, 7], at: 120, dtype: .int32),
                      bias: input([7], at: 400, dtype: .int32))
        })
        for op in NeuronPoolOp.allCases {
            cases.append(QueueCase(name: "pool2d \(op)", inputs: 2 * 3 * 20, outputs: 2 * 3 * 6 + 6) {
                let x = input([2, 3, 5, 4])
                $0.pool2d(op, output([2, 3, 3, 2]), x, kernel: (3, 3),
                          window: NeuronWindow(stride: (2, 2), padding: (1, 1, 1, 0)))
                $0.pool2d(op, output([2, 3, 1, 1], at: 36), x, kernel: (5, 4))
            })
        }
        return cases
    }()
}

@Suite("Queues: the engine behind a NeuronCore's queue")
struct QueueEngineTests {
    @Test("every instruction gives the same bits through a queue as in this process", arguments: QueueCase.all)
    func sameBits(_ testCase: QueueCase) throws {
        let backend = try backendUnderTest()
        let device = try backend.open(device: 0)
        defer { device.close() }
        var inputs = sample(testCase.inputs, seed: UInt32(testCase.name.utf8.count * 7919))
        if let (at, values) = testCase.indices {
            for (i, value) in values.enumerated() { inputs[at + i] = Float(bitPattern: UInt32(bitPattern: value)) }
        }
        var program = NeuronProgram()
        testCase.build(&program)

        // In this process.
        let host = Slots([testCase.inputs * 4, testCase.outputs * 4])
        host.set(0, inputs)
        try host.run(program)

        // Through the backend's queue: the simulator's core thread, or the driver's.
        let queue = try device.queue(core: 1)
        defer { queue.close() }
        let a = try device.allocate(size: UInt64(testCase.inputs * 4))
        let b = try device.allocate(size: UInt64(testCase.outputs * 4))
        try a.write(inputs)
        let job = try queue.submit(program, buffers: [a, b])
        let result = try finish(queue, job)
        #expect(result.status == .ok)
        let got = try b.read(UInt32.self, count: testCase.outputs)
        let want = host.floats(1).map(\.bitPattern)
        #expect(got == want, "\(zip(got, want).filter { $0 != $1 }.count) of \(want.count) outputs differ")
        #expect(try a.read(UInt32.self, count: testCase.inputs) == inputs.map(\.bitPattern))
    }
}

@Suite("Engine: slices", .enabled(if: !driverLoaded))  // engine only: the host covers it; TCG is slow
struct SliceTests {
    @Test("every instruction run one slice at a time, or three, gives the whole run's bits", arguments: QueueCase.all)
    func slices(_ testCase: QueueCase) throws {
        var inputs = sample(testCase.inputs, seed: UInt32(testCase.name.utf8.count * 31))
        if let (at, values) = testCase.indices {
            for (i, value) in values.enumerated() { inputs[at + i] = Float(bitPattern: UInt32(bitPattern: value)) }
        }
        var program = NeuronProgram()
        testCase.build(&program)
        let image = program.image()
        let whole = Slots([testCase.inputs * 4, testCase.outputs * 4])
        whole.set(0, inputs)
        try NeuronEngine.run(image, slots: whole.buffers)
        // The engine's parts, then parts of at most a few element operations: the
        // splits huge instructions get (several axes, fewer rows and columns).
        for partWork: UInt64 in [0, 64, 1] {
            for step in [1, 3] {
                let sliced = Slots([testCase.inputs * 4, testCase.outputs * 4])
                sliced.set(0, inputs)
                let parts = try NeuronEngine.runSliced(image, slots: sliced.buffers, partsPerStep: step,
                                                       partWork: partWork)
                #expect(sliced.floats(1).map(\.bitPattern) == whole.floats(1).map(\.bitPattern),
                        "in slices of \(step) of \(parts), parts of \(partWork) operations")
            }
        }
    }

    @Test("an instruction whose slice would be too large is refused, and one of any size that splits is not")
    func sliceBound() throws {
        let slots = Slots([64, 4096])
        func validate(_ build: (inout NeuronProgram) -> Void) throws(NeuronProgramError) {
            var program = NeuronProgram()
            program.nop()
            build(&program)
            try NeuronEngine.validate(program.image(), slotSizes: slots.buffers.map { UInt64($0.count) })
        }
        // Dot products of 2^31 multiply-adds over broadcast operands: no split shortens them.
        #expect(throws: NeuronProgramError(kind: .operand, index: 1)) {
            try validate { $0.matmul(NeuronTensorView(slot: 1, dims: [4, 4], strides: [0, 0]),
                                     NeuronTensorView(slot: 0, dims: [4, 1 << 31], strides: [0, 0]),
                                     NeuronTensorView(slot: 0, dims: [1 << 31, 4], strides: [0, 0])) }
        }
        // Softmax over one row of 2^27 elements (found by fuzzing the driver: 30 s without
        // preemption in the VM, past the job timeout): a row is never split.
        #expect(throws: NeuronProgramError(kind: .operand, index: 1)) {
            try validate { $0.softmax(NeuronTensorView(slot: 1, dims: [1 << 27], strides: [0]),
                                      NeuronTensorView(slot: 0, dims: [1 << 27], strides: [0])) }
        }
        // The same elements in rows, a 2^48-operation matmul (2^26 a part: four rows of
        // 256 columns), 2^40 elements over six axes and a matmul of 512 rows by 511
        // columns of 2^17 terms split into parts the validator accepts.
        try validate { $0.softmax(NeuronTensorView(slot: 1, dims: [1 << 14, 1 << 13], strides: [0, 0]),
                                  NeuronTensorView(slot: 0, dims: [1 << 14, 1 << 13], strides: [0, 0])) }
        let big = NeuronTensorView(slot: 0, dims: [65536, 65536], strides: [0, 0])
        try validate { $0.matmul(NeuronTensorView(slot: 1, dims: [65536, 65536], strides: [0, 0]), big, big) }
        try validate { $0.fill(NeuronTensorView(slot: 1, dims: [64, 64, 64, 64, 64, 1024],
                                                strides: [0, 0, 0, 0, 0, 0]), value: 1) }
        try validate { $0.matmul(NeuronTensorView(slot: 1, dims: [512, 511], strides: [0, 0]),
                                 NeuronTensorView(slot: 0, dims: [512, 1 << 17], strides: [0, 0]),
                                 NeuronTensorView(slot: 0, dims: [1 << 17, 511], strides: [0, 0])) }
    }
}

@Suite("Queues: reservation, jobs, statuses")
struct QueueBehaviourTests {
    @Test("a refused program names the bad instruction, and the queue goes on")
    func refused() throws {
        let device = try backendUnderTest().open(device: 0)
        defer { device.close() }
        let queue = try device.queue(core: 0)
        let buffer = try device.allocate(size: 4096)
        var program = NeuronProgram()
        program.nop()
        program.fill(.contiguous(slot: 0, dims: [2000]), value: 1)   // 8000 bytes in 4096
        #expect(throws: NeuronError.invalidProgram(NeuronProgramError(kind: .range, index: 0))) {
            try queue.submit(program, buffers: [buffer])
        }
        var unbound = NeuronProgram()
        unbound.fill(.contiguous(slot: 3, dims: [4]), value: 1)
        #expect(throws: NeuronError.invalidProgram(NeuronProgramError(kind: .slot, index: 0))) {
            try queue.submit(unbound, buffers: [buffer])
        }
        #expect(throws: NeuronError.invalidProgram(NeuronProgramError(kind: .header, index: 0))) {
            try queue.submit(image: [0xdead_beef, 1, 2, 3], buffers: [])
        }
        var good = NeuronProgram()
        good.fill(.contiguous(slot: 0, dims: [4]), value: 2)
        #expect(try finish(queue, try queue.submit(good, buffers: [buffer])).status == .ok)
        #expect(try buffer.read(Float.self, count: 4) == [2, 2, 2, 2])
    }

    @Test("one program image submitted again is checked again: against smaller buffers, and once changed")
    func resubmitted() throws {
        let device = try backendUnderTest().open(device: 0)
        defer { device.close() }
        let queue = try device.queue(core: 0)
        let large = try device.allocate(size: 65536), small = try device.allocate(size: 4096)
        var program = NeuronProgram()
        program.fill(.contiguous(slot: 0, dims: [16384]), value: 3)   // 65536 bytes
        let image = program.image()
        for _ in 0..<3 {
            #expect(try finish(queue, try queue.submit(image: image, buffers: [large])).status == .ok)
        }
        // The same array (the simulator keeps what it validated) with a buffer too small.
        #expect(throws: NeuronError.invalidProgram(NeuronProgramError(kind: .range, index: 0))) {
            try queue.submit(image: image, buffers: [small])
        }
        // A copy of it changed in place: a slot no buffer is bound to.
        var changed = image
        let descriptor = MemoryLayout<neuron_program_header>.size / 8   // its first word: slot, dtype, rank
        changed[descriptor] = changed[descriptor] & ~0xffff | 5
        #expect(throws: NeuronError.invalidProgram(NeuronProgramError(kind: .slot, index: 0))) {
            try queue.submit(image: changed, buffers: [large])
        }
        #expect(try finish(queue, try queue.submit(image: image, buffers: [large])).status == .ok)
        #expect(try large.read(Float.self, count: 16384) == [Float](repeating: 3, count: 16384))
    }

    @Test("a NeuronCore held by another open device is busy, naming this process")
    func busy() throws {
        let backend = try backendUnderTest()
        let first = try backend.open(device: 0), second = try backend.open(device: 0)
        defer { first.close(); second.close() }
        let queue = try first.queue(core: 2)
        do {
            _ = try second.queue(core: 2)
            Issue.record("the core was reserved twice")
        } catch {
            guard case .coresBusy(_, let cores, let pid, _) = error else {
                Issue.record("wrong error \(error)")
                return
            }
            #expect(cores == [2] && pid == getpid())
        }
        let holder = try first.processes().first { $0.pid == getpid() }
        #expect(holder?.coresHeld == [2])
        queue.close()
        let taken = try second.queue(core: 2)
        #expect(try taken.info().ownerPID == getpid())
    }

    @Test("a buffer of another device object is refused")
    func foreignBuffer() throws {
        let backend = try backendUnderTest()
        let first = try backend.open(device: 0), second = try backend.open(device: 0)
        defer { first.close(); second.close() }
        let queue = try first.queue(core: 0)
        let theirs = try second.allocate(size: 4096)
        var program = NeuronProgram()
        program.fill(.contiguous(slot: 0, dims: [4]), value: 1)
        #expect(throws: NeuronError.self) { try queue.submit(program, buffers: [theirs]) }
    }

    @Test("an async burst of 300 jobs completes in order, with its results")
    func burst() async throws {
        let device = try backendUnderTest().open(device: 0)
        defer { device.close() }
        let queue = try device.queue(core: 0)
        let buffer = try device.allocate(size: 300 * 4)
        let count = 300
        let results = try await withThrowingTaskGroup(of: (Int, NeuronJobResult).self) { group in
            for i in 0..<count {
                var program = NeuronProgram()
                program.fill(.contiguous(slot: 0, dims: [1], offset: UInt64(i)), value: Float(i))
                group.addTask { (i, try await queue.run(program, buffers: [buffer])) }
            }
            var all: [(Int, NeuronJobResult)] = []
            for try await result in group { all.append(result) }
            return all
        }
        #expect(results.count == count)
        #expect(results.allSatisfy { $0.1.status == .ok })
        #expect(try buffer.read(Float.self, count: count) == (0..<count).map(Float.init))
    }

    @Test("a full queue says so; a semaphore from another core lets it drain")
    func fullQueue() throws {
        let device = try backendUnderTest().open(device: 0)
        defer { device.close() }
        let blocked = try device.queue(core: 0), signaller = try device.queue(core: 1)
        var wait = NeuronProgram()
        wait.semaphoreWait(5, count: 2)
        let first = try blocked.submit(wait, buffers: [])
        var nop = NeuronProgram()
        nop.nop()
        var last = first
        for _ in 1..<NeuronQueueLimits.depth { last = try blocked.submit(nop, buffers: []) }
        #expect(throws: NeuronError.queueFull(device: device.index, core: 0, depth: NeuronQueueLimits.depth)) {
            try blocked.submit(nop, buffers: [])
        }
        #expect(try blocked.wait(first, timeout: .milliseconds(100)) == nil)
        var signal = NeuronProgram()
        signal.semaphoreSignal(5, count: 2)
        #expect(try finish(signaller, try signaller.submit(signal, buffers: [])).status == .ok)
        #expect(try finish(blocked, last).status == .ok)
        #expect(try finish(blocked, first).status == .ok)
    }

    @Test("a job after another core's job sees its output; a failed dependency aborts")
    func dependencies() throws {
        let device = try backendUnderTest().open(device: 0)
        defer { device.close() }
        let q0 = try device.queue(core: 0), q1 = try device.queue(core: 1), q2 = try device.queue(core: 2)
        let buffer = try device.allocate(size: 4096)
        var produce = NeuronProgram()
        produce.semaphoreWait(1)
        produce.fill(.contiguous(slot: 0, dims: [4]), value: 42)
        let producer = try q0.submit(produce, buffers: [buffer])
        var consume = NeuronProgram()
        consume.copy(.contiguous(slot: 0, dims: [4], offset: 4), from: .contiguous(slot: 0, dims: [4]))
        let consumer = try q1.submit(consume, buffers: [buffer], after: producer)
        #expect(try q1.wait(consumer, timeout: .milliseconds(150)) == nil)
        var signal = NeuronProgram()
        signal.semaphoreSignal(1)
        _ = try q2.submit(signal, buffers: [])
        #expect(try finish(q1, consumer).status == .ok)
        #expect(try buffer.read(Float.self, count: 8) == [Float](repeating: 42, count: 8))

        // A GATHER with an index outside its table faults; its dependent is aborted.
        try buffer.write([Int32(99)], at: 1024)
        var faulty = NeuronProgram()
        faulty.nop()
        faulty.gather(.contiguous(slot: 0, dims: [1, 2], offset: 300), table: .contiguous(slot: 0, dims: [4, 2]),
                      indices: .contiguous(slot: 0, dims: [1], dtype: .int32, offset: 256))
        let failed = try q0.submit(faulty, buffers: [buffer])
        #expect(try finish(q0, failed).status == .fault(NeuronProgramError(kind: .indexFault, index: 1)))
        let skipped = try q1.submit(consume, buffers: [buffer], after: failed)
        #expect(try finish(q1, skipped).status == .aborted)
    }

    @Test("a barrier holds each core until all have reached it; one naming a core not held is invalid")
    func barrier() throws {
        let device = try backendUnderTest().open(device: 0)
        defer { device.close() }
        let q0 = try device.queue(core: 0), q1 = try device.queue(core: 1)
        var meet = NeuronProgram()
        meet.barrier(3, cores: [0, 1])
        let a = try q0.submit(meet, buffers: [])
        #expect(try q0.wait(a, timeout: .milliseconds(100)) == nil)
        let b = try q1.submit(meet, buffers: [])
        #expect(try finish(q0, a).status == .ok)
        #expect(try finish(q1, b).status == .ok)
        var lonely = NeuronProgram()
        lonely.barrier(0, cores: [0, 3])
        #expect(try finish(q0, try q0.submit(lonely, buffers: [])).status == .invalid(instruction: 0))
    }

    @Test("closing a queue aborts its jobs and resumes whoever awaits them")
    func closeAborts() async throws {
        // On the simulator, a job timeout far past any delay: with every
        // cooperative thread busy with other tests, this task may resume
        // from its sleep seconds late, and the job must still end aborted.
        let chosen = NeuronBackendSelection.processEnvironment()["NEURON_BACKEND"]
        let backend: any NeuronBackend = chosen == "kernel" || chosen == "" || (chosen == nil && driverLoaded)
            ? try backendUnderTest()
            : SimulatorBackend(configuration: try .init(devices: 2, jobTimeoutMilliseconds: 600_000))
        let device = try backend.open(device: 0)
        defer { device.close() }
        let queue = try device.queue(core: 3)
        var wait = NeuronProgram()
        wait.semaphoreWait(9)
        let job = try queue.submit(wait, buffers: [])
        // The waiter must be waiting when the queue closes (a task that
        // started after the close would find the core no longer held).
        let (started, didStart) = AsyncStream.makeStream(of: Void.self)
        let waiter = Task {
            didStart.yield()
            return try await queue.result(of: job)
        }
        for await _ in started { break }
        try await Task.sleep(for: .milliseconds(300))
        queue.close()
        #expect(try await waiter.value.status == .aborted)
        let again = try device.queue(core: 3)
        #expect(try again.info().queued == 0)
    }

    @Test("a job that never ends times out, the core is reset and goes on (simulator, 100 ms)")
    func timeout() throws {
        let backend = SimulatorBackend(configuration: try .init(devices: 1, jobTimeoutMilliseconds: 100))
        let device = try backend.open(device: 0)
        defer { device.close() }
        let queue = try device.queue(core: 0)
        var forever = NeuronProgram()
        forever.nop()
        forever.semaphoreWait(0)
        #expect(try finish(queue, try queue.submit(forever, buffers: [])).status == .timedOut(instruction: 1))
        var nop = NeuronProgram()
        nop.nop()
        #expect(try finish(queue, try queue.submit(nop, buffers: [])).status == .ok)
    }
}
