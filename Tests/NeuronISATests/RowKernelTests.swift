import CNeuronEngine
import Foundation
import NeuronDevice
import Testing
import TestSupport

/// The row kernels of engine_rows.c (float32 BINARY and UNARY over
/// contiguous rows) at every vector width this CPU can run, against the
/// reference interpreter's scalar code, bit for bit; and the row walks of
/// COPY and the elementwise ops (merged axes, broadcasts, overlaps).
@Suite("Engine: vector rows at every width")
struct RowKernelTests {
    /// The widths this CPU runs, by name: natively, or (the AVX-512
    /// kernels' 16-lane code built for AVX2) as two halves.
    static let widths: [(name: String, level: UInt32)] = [
        ("avx2", UInt32(NEURON_SIMD_AVX2.rawValue)),
        ("avx512 (native)", UInt32(NEURON_SIMD_AVX512.rawValue)),
        ("avx512 logic on avx2 (16 lanes in two halves)", UInt32(NEURON_SIMD_WIDE_ON_AVX2.rawValue)),
    ]

    /// Run `body` with this thread's engine at `level`; false if the CPU cannot.
    func at<T>(_ level: UInt32, _ body: () throws -> T) rethrows -> T? {
        guard neuron_simd_set_thread(level) == 0 else { return nil }
        defer { _ = neuron_simd_set_thread(UInt32(NEURON_SIMD_CPU.rawValue)) }
        return try body()
    }

    /// Values that take every branch: signs, zeros, NaN, infinities,
    /// subnormals, exp's cut-offs and the steps of its scaling.
    static func hostile(_ count: Int, seed: UInt32) -> [Float] {
        let edges: [Float] = [0, -0.0, .nan, -.nan, .infinity, -.infinity, .leastNonzeroMagnitude, -.leastNormalMagnitude,
                              1, -1, 88.72283935546875, 88.72284, 88.7228, -103.97208404541015625, -103.97209, -103.972,
                              -87.5, -87.3, -88.0, -100, 80, 85.1, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
                              1e-30, -1e-30, 0.5, -0.5, 1e30, 3e-39]
        let spread = sample(count, seed: seed).map { $0 * 55 - 10 }   // [-120, 100)
        return (0..<count).map { index in index % 3 == 0 ? edges[index / 3 % edges.count] : spread[index] }
    }

    /// A result's bits, every NaN as one: the ISA leaves a NaN's sign and
    /// payload open (of two NaN operands, either may come out).
    static func bits(_ value: Float) -> UInt32 { value.isNaN ? 0x7fc0_0000 : value.bitPattern }

    static let binaryOps: [NeuronBinaryOp] = [.add, .sub, .mul, .div, .max, .min, .pow]
    static let unaryOps: [NeuronUnaryOp] = [.relu, .leakyRelu, .neg, .abs, .reciprocal, .exp, .sigmoid, .silu, .tanh, .geluTanh, .geluErf, .erf, .log]

    /// Every op, rows of lengths that end on and between vectors, b as a
    /// row and as one broadcast element, apart and in place (over a, and
    /// over b): a row's last vector overlaps the one before it and must
    /// still read its inputs, not what the row wrote there.
    func outputs(binary op: NeuronBinaryOp, length: Int) throws -> [[UInt32]] {
        let a = Self.hostile(length, seed: 1), b = Self.hostile(length, seed: 2).reversed().map { $0 }
        var results: [[UInt32]] = []
        for (broadcast, out) in [(false, 2), (true, 2), (false, 0), (true, 0), (false, 1)] {
            let slots = Slots([length * 4, length * 4, length * 4])
            slots.set(0, a); slots.set(1, b)
            var program = NeuronProgram()
            let n = UInt32(length)
            let bView = broadcast ? NeuronTensorView(slot: 1, offset: 3 % UInt64(length), dims: [n], strides: [0])
                                  : .contiguous(slot: 1, dims: [n])
            program.binary(op, .contiguous(slot: out, dims: [n]), .contiguous(slot: 0, dims: [n]), bView)
            try slots.run(program)
            results.append(slots.floats(out).map(Self.bits))
        }
        return results
    }

    func outputs(unary op: NeuronUnaryOp, length: Int) throws -> [[UInt32]] {
        let a = Self.hostile(length, seed: 3)
        var results: [[UInt32]] = []
        for inPlace in [false, true] {
            let slots = Slots([length * 4, length * 4])
            slots.set(0, a)
            var program = NeuronProgram()
            let n = UInt32(length)
            program.unary(op, .contiguous(slot: inPlace ? 0 : 1, dims: [n]), .contiguous(slot: 0, dims: [n]), alpha: 0.01)
            try slots.run(program)
            results.append(slots.floats(inPlace ? 0 : 1).map(Self.bits))
        }
        return results
    }

    @Test("binary and unary rows give the scalar reference's bits at every width this CPU runs")
    func everyWidth() throws {
        var ran: [String] = []
        let lengths = [1, 7, 8, 9, 15, 16, 17, 24, 31, 33, 64, 100, 1000]
        for width in Self.widths {
            var compared = 0
            for length in lengths {
                for op in Self.binaryOps {
                    let reference = try at(UInt32(NEURON_SIMD_SCALAR.rawValue)) { try outputs(binary: op, length: length) }
                    guard let got = try at(width.level, { try outputs(binary: op, length: length) }) else { continue }
                    #expect(got == reference, "\(op) over \(length) at \(width.name)")
                    compared += 1
                }
                for op in Self.unaryOps {
                    let reference = try at(UInt32(NEURON_SIMD_SCALAR.rawValue)) { try outputs(unary: op, length: length) }
                    guard let got = try at(width.level, { try outputs(unary: op, length: length) }) else { continue }
                    #expect(got == reference, "\(op) over \(length) at \(width.name)")
                    compared += 1
                }
            }
            if compared > 0 { ran.append(width.name) }
        }
        print("engine rows: compared with the scalar reference at: \(ran.isEmpty ? "none (no AVX2 here)" : ran.joined(separator: "; "))"
              + "; this CPU's own width: \(Self.name(neuron_simd_level()))")
        if neuron_simd_level() != UInt32(NEURON_SIMD_SCALAR.rawValue) { #expect(ran.count >= 2) }
    }

    /// ISA 1.7: SILU is defined as SIGMOID then MUL by x, so fusing the
    /// pair (neuron-cc's swish) changes no bit, at any width.
    @Test("SILU gives the bits of SIGMOID then MUL by x, at every width and in the scalar loop")
    func siluIsSigmoidThenMul() throws {
        let x = Self.hostile(1000, seed: 11)
        for level in [UInt32(NEURON_SIMD_SCALAR.rawValue)] + Self.widths.map(\.level) {
            let run: [[UInt32]]? = try at(level) {
                let slots = Slots([x.count * 4, x.count * 4, x.count * 4, x.count * 4])
                slots.set(0, x)
                let n = UInt32(x.count)
                var program = NeuronProgram()
                program.unary(.sigmoid, .contiguous(slot: 1, dims: [n]), .contiguous(slot: 0, dims: [n]))
                program.binary(.mul, .contiguous(slot: 2, dims: [n]), .contiguous(slot: 0, dims: [n]),
                               .contiguous(slot: 1, dims: [n]))
                program.unary(.silu, .contiguous(slot: 3, dims: [n]), .contiguous(slot: 0, dims: [n]))
                try slots.run(program)
                return [slots.floats(2).map(Self.bits), slots.floats(3).map(Self.bits)]
            }
            guard let run else { continue }
            #expect(run[0] == run[1], "level \(level): \(zip(run[0], run[1]).filter { $0 != $1 }.count) of \(x.count) differ")
        }
    }

    static func name(_ level: UInt32) -> String {
        switch level {
        case UInt32(NEURON_SIMD_AVX2.rawValue): "avx2"
        case UInt32(NEURON_SIMD_AVX512.rawValue): "avx512"
        default: "scalar"
        }
    }

    @Test("the vector exp, sigmoid and tanh stay the reference's over every float of a range")
    func denseExp() throws {
        // Runs of 64 consecutive floats every 1/32 over [-104, -72],
        // [70, 102] and [-20, 12]: exp's result crossing into the
        // subnormals, to zero and to infinity, and every step of its scaling.
        for start: Float in [-104, 70, -20] {
            var values: [Float] = []
            var x = start
            while values.count < 1 << 16 { values.append(x); x = x.nextUp; if values.count % 64 == 0 { x = x + 1 / 32 } }
            let slots = Slots([values.count * 4, values.count * 4, values.count * 4, values.count * 4])
            slots.set(0, values)
            var program = NeuronProgram()
            let n = UInt32(values.count)
            program.unary(.exp, .contiguous(slot: 1, dims: [n]), .contiguous(slot: 0, dims: [n]))
            program.unary(.sigmoid, .contiguous(slot: 2, dims: [n]), .contiguous(slot: 0, dims: [n]))
            program.unary(.tanh, .contiguous(slot: 3, dims: [n]), .contiguous(slot: 0, dims: [n]))
            guard let reference = try at(UInt32(NEURON_SIMD_SCALAR.rawValue), { try slots.run(program); return [slots.floats(1), slots.floats(2), slots.floats(3)] }) else {
                Issue.record("the scalar reference is always there")
                return
            }
            for width in Self.widths {
                guard let got = try at(width.level, { try slots.run(program); return [slots.floats(1), slots.floats(2), slots.floats(3)] }) else { continue }
                #expect(got[0].map(Self.bits) == reference[0].map(Self.bits), "exp from \(start) at \(width.name)")
                #expect(got[1].map(Self.bits) == reference[1].map(Self.bits), "sigmoid from \(start) at \(width.name)")
                #expect(got[2].map(Self.bits) == reference[2].map(Self.bits), "tanh from \(start) at \(width.name)")
            }
        }
    }

    /// A row whose arguments of exp all lie in [-87, 88] (EXP's own, and
    /// SIGMOID's and SILU's negated) takes a short form without the
    /// cut-offs (engine_rows.c's EXP_NORMAL); one element outside sends the
    /// whole row to the full form. Both must give the reference's bits,
    /// up to the range's ends (results there are subnormal, or near 2^127).
    @Test("rows wholly inside exp's normal range give the reference's bits, and rows just outside it")
    func expNormalRange() throws {
        func row(_ lo: Float, _ hi: Float, _ count: Int) -> [Float] {
            var values = [lo, hi, lo.nextUp, hi.nextDown, 0, -0.0]
            let step = (hi - lo) / Float(count)
            while values.count < count { values.append(lo + step * Float(values.count)) }
            return values
        }
        for (op, lo, hi): (NeuronUnaryOp, Float, Float) in [(.exp, -87, 88), (.sigmoid, -88, 87), (.silu, -88, 87)] {
            for length in [16, 33, 1000] {
                let inside = row(lo, hi, length)
                // One element outside: just past an end, far past either, NaN.
                let outsides = [hi.nextUp, lo - 8, hi + 8, Float.nan].map { value in
                    var values = inside
                    values[length / 2] = value
                    return values
                }
                var near = inside   // all inside, crowded at the ends
                for index in stride(from: 0, to: length, by: 2) { near[index] = index % 4 == 0 ? lo : hi }
                for values in [inside, near] + outsides {
                    let n = UInt32(values.count)
                    let slots = Slots([values.count * 4, values.count * 4])
                    slots.set(0, values)
                    var program = NeuronProgram()
                    program.unary(op, .contiguous(slot: 1, dims: [n]), .contiguous(slot: 0, dims: [n]))
                    let reference = try #require(try at(UInt32(NEURON_SIMD_SCALAR.rawValue)) {
                        try slots.run(program); return slots.floats(1).map(Self.bits)
                    })
                    for width in Self.widths {
                        guard let got = try at(width.level, { try slots.run(program); return slots.floats(1).map(Self.bits) }) else { continue }
                        #expect(got == reference, "\(op) over \(length) at \(width.name)")
                    }
                }
            }
        }
    }

    @Test("the vector erf and both gelus stay the reference's over every float of their branches' edges")
    func denseErf() throws {
        // Runs of 256 consecutive floats around erf's branch points (0.5 and
        // 4, and their negatives, on x and on gelu's x / sqrt 2), zero, and
        // every 1/16 across [-6, 6].
        var values: [Float] = []
        for edge: Float in [0.5, -0.5, 4, -4, 0.70710678 * 2, 0.5 * 1.41421356, -0.5 * 1.41421356, 4 * 1.41421356, 0] {
            var x = edge
            for _ in 0..<128 { x = x.nextDown }
            for _ in 0..<256 { values.append(x); x = x.nextUp }
        }
        var x: Float = -6
        while x <= 6 { values.append(x); values.append(x.nextUp); x += 1 / 16 }
        let n = UInt32(values.count)
        let slots = Slots([values.count * 4, values.count * 4, values.count * 4, values.count * 4])
        slots.set(0, values)
        var program = NeuronProgram()
        program.unary(.erf, .contiguous(slot: 1, dims: [n]), .contiguous(slot: 0, dims: [n]))
        program.unary(.geluErf, .contiguous(slot: 2, dims: [n]), .contiguous(slot: 0, dims: [n]))
        program.unary(.geluTanh, .contiguous(slot: 3, dims: [n]), .contiguous(slot: 0, dims: [n]))
        func run() throws -> [[UInt32]] {
            try slots.run(program)
            return [slots.floats(1), slots.floats(2), slots.floats(3)].map { $0.map(Self.bits) }
        }
        let reference = try #require(try at(UInt32(NEURON_SIMD_SCALAR.rawValue), run))
        // The scalar reference itself: odd, bounded by 1, monotonic.
        let erf = reference[0].map { Float(bitPattern: $0) }
        for (index, value) in values.enumerated() where value.isFinite {
            #expect(abs(erf[index]) <= 1 && (value < 0) == (erf[index] < 0 || (value < 0 && erf[index] == 0)))
        }
        for width in Self.widths {
            guard let got = try at(width.level, run) else { continue }
            for (name, index) in [("erf", 0), ("geluErf", 1), ("geluTanh", 2)] {
                let differ = zip(got[index], reference[index]).filter { $0 != $1 }.count
                #expect(differ == 0, "\(name) at \(width.name): \(differ) of \(values.count) differ")
            }
        }
    }

    @Test("softmax rows (the max, x - max and exp by vector, the sum in order) give the reference's bits at every width",
          arguments: [1, 7, 8, 17, 100, 1000])
    func softmax(_ length: Int) throws {
        // Rows: spread values; one huge value (the rest underflow); zeros of
        // both signs as the max, at either end and among negatives; a NaN
        // inside (it never wins the max, as in the reference) and one first
        // (it is the max); -infinity with a largest value past the first
        // vector. Then all of them again in place.
        var values = Self.hostile(length, seed: 9).map { $0.isFinite ? $0 / 8 : 1 }
        values += (0..<length).map { $0 == length / 2 ? 80 : Float($0 % 13) - 6 }
        func row(_ element: (Int) -> Float) -> [Float] { (0..<length).map(element) }
        values += row { (i: Int) -> Float in
            guard i % 3 == 0 else { return -Float(i % 7) - 1 }
            return (i / 3) % 2 == 0 ? -0.0 : 0.0
        }
        values += row { (i: Int) -> Float in i == length - 1 ? 0.0 : (i == 0 ? -0.0 : -2) }
        values += row { (i: Int) -> Float in i == length / 2 && length > 1 ? .nan : Float(i % 5) }
        values += row { (i: Int) -> Float in i == 0 ? .nan : Float(i % 5) }
        values += row { (i: Int) -> Float in i == length - 1 ? 3 : (i % 2 == 0 ? -.infinity : -1) }
        // exp's short form takes rows whose every x - max is at least
        // -86 from max (all numbers): at that edge and just past it, a
        // max so large that max - 86 rounds away from it, a huge one.
        values += row { (i: Int) -> Float in i == length / 3 ? 10 : (i % 2 == 0 ? -76 : -75.5) }
        values += row { (i: Int) -> Float in i == length / 3 ? 10 : (i % 2 == 0 ? Float(-76).nextDown : -75.5) }
        values += row { (i: Int) -> Float in i == length / 3 ? 10 : -80 }   // x - max -90, -105: past the
        values += row { (i: Int) -> Float in i == length / 3 ? 10 : -95 }   // short form's range
        values += row { (i: Int) -> Float in i % 4 == 0 ? 1e9 : 1e9 - 100 }
        values += row { (i: Int) -> Float in i == 0 ? .greatestFiniteMagnitude : Float(i) }
        let rows = UInt32(values.count / length), n = UInt32(length)
        // The sum in order, and in lanes (ISA 1.8).
        for lanes in [false, true] {
            func run() throws -> [UInt32] {
                let slots = Slots([values.count * 4, values.count * 4])
                slots.set(0, values)
                var program = NeuronProgram()
                program.softmax(.contiguous(slot: 1, dims: [rows, n]), .contiguous(slot: 0, dims: [rows, n]), laneSums: lanes)
                program.softmax(.contiguous(slot: 0, dims: [rows, n]), .contiguous(slot: 0, dims: [rows, n]), laneSums: lanes)
                try slots.run(program)
                return (slots.floats(1) + slots.floats(0)).map(Self.bits)
            }
            let reference = try at(UInt32(NEURON_SIMD_SCALAR.rawValue), run)
            for width in Self.widths {
                guard let got = try at(width.level, run) else { continue }
                #expect(got == reference, "softmax of \(length) at \(width.name), lanes \(lanes)")
            }
        }
    }

    /// ISA 1.8's ROW_SUM_LANES as docs/isa.md writes it: element j into
    /// partial j mod 16, each in order from +0, then halves onto halves.
    static func laneSum(_ values: [Float]) -> Float {
        var part = [Float](repeating: 0, count: 16)
        for (index, value) in values.enumerated() { part[index % 16] = part[index % 16] + value }
        var half = 8
        while half > 0 {
            for lane in 0..<half { part[lane] = part[lane] + part[lane + half] }
            half /= 2
        }
        return part[0]
    }

    @Test("softmax and layer norm with sums in lanes (ISA 1.8) follow the definition bit for bit at every width",
          arguments: [1, 7, 8, 15, 16, 17, 33, 100, 768])
    func laneSums(_ length: Int) throws {
        let rows = 3, n = UInt32(length)
        let x = Self.hostile(rows * length, seed: 21).map { $0.isFinite ? $0 / 16 : 0.5 }
        let scale = sample(length, seed: 22), bias = sample(length, seed: 23)
        let epsilon: Float = 1e-5
        // The definition, in Swift: softmax with the engine's own exp.
        var want: [Float] = [], wantNorm: [Float] = []
        for row in 0..<rows {
            let values = Array(x[(row * length)..<((row + 1) * length)])
            var top = values[0]
            for value in values.dropFirst() where value > top { top = value }
            let e = values.map { neuron_expf($0 - top) }
            let sum = Self.laneSum(e)
            want += e.map { $0 / sum }
            let mean = Self.laneSum(values) / Float(length)
            let variance = Self.laneSum(values.map { ($0 - mean) * ($0 - mean) })
            let inverse = 1 / (variance / Float(length) + epsilon).squareRoot()
            wantNorm += values.indices.map { ((values[$0] - mean) * inverse) * scale[$0] + bias[$0] }
        }
        func run() throws -> [[UInt32]] {
            let slots = Slots([x.count * 4, x.count * 4, x.count * 4, length * 4, length * 4, x.count * 4])
            slots.set(0, x); slots.set(3, scale); slots.set(4, bias); slots.set(5, x)
            var program = NeuronProgram()
            let dims: [UInt32] = [UInt32(rows), n]
            program.softmax(.contiguous(slot: 1, dims: dims), .contiguous(slot: 0, dims: dims), laneSums: true)
            program.layerNorm(.contiguous(slot: 2, dims: dims), .contiguous(slot: 0, dims: dims),
                              scale: .contiguous(slot: 3, dims: [n]), bias: .contiguous(slot: 4, dims: [n]),
                              epsilon: epsilon, laneSums: true)
            // In place too.
            program.softmax(.contiguous(slot: 5, dims: dims), .contiguous(slot: 5, dims: dims), laneSums: true)
            try slots.run(program)
            return [slots.floats(1), slots.floats(2), slots.floats(5)].map { $0.map(Self.bits) }
        }
        for level in [UInt32(NEURON_SIMD_SCALAR.rawValue)] + Self.widths.map(\.level) {
            guard let got = try at(level, run) else { continue }
            let wrong = zip(got[0], want.map(Self.bits)).filter { $0 != $1 }.count
            let wrongNorm = zip(got[1], wantNorm.map(Self.bits)).filter { $0 != $1 }.count
            #expect(wrong == 0 && got[2] == got[0], "softmax of \(length) at level \(level): \(wrong) differ")
            #expect(wrongNorm == 0, "layer norm of \(length) at level \(level): \(wrongNorm) differ")
        }
    }

    @Test("rows merge across axes: broadcasts over channels and views that do not merge")
    func mergedRows() throws {
        // x [2, 3, 4, 5] plus a per-channel bias [3] broadcast (strides 0, 1, 0, 0),
        // times a transposed view, relu of a strided slice.
        let dims: [UInt32] = [2, 3, 4, 5], count = 120
        let x = Self.hostile(count, seed: 5), bias = Self.hostile(3, seed: 6)
        let slots = Slots([count * 4, 12, count * 4, count * 4, count * 4])
        slots.set(0, x); slots.set(1, bias)
        var program = NeuronProgram()
        let xv = NeuronTensorView.contiguous(slot: 0, dims: dims)
        program.binary(.add, .contiguous(slot: 2, dims: dims), xv, NeuronTensorView(slot: 1, dims: dims, strides: [0, 1, 0, 0]))
        // [2, 3, 4, 5] read as its [.., 5, 4] transpose of the same bytes.
        let transposed = NeuronTensorView(slot: 2, dims: [2, 3, 5, 4], strides: [60, 20, 1, 5])
        program.binary(.mul, .contiguous(slot: 3, dims: [2, 3, 5, 4]), transposed, .contiguous(slot: 0, dims: [2, 3, 5, 4]))
        program.unary(.relu, NeuronTensorView(slot: 4, dims: [2, 3, 2, 5], strides: [60, 20, 10, 1]),
                      NeuronTensorView(slot: 3, dims: [2, 3, 2, 5], strides: [60, 20, 5, 1]))
        try slots.run(program)
        let added = slots.floats(2), multiplied = slots.floats(3), rectified = slots.floats(4)
        for n in 0..<2 { for c in 0..<3 { for h in 0..<4 { for w in 0..<5 {
            let i = ((n * 3 + c) * 4 + h) * 5 + w
            #expect(added[i].bitPattern == (x[i] + bias[c]).bitPattern)
        } } } }
        for n in 0..<2 { for c in 0..<3 { for p in 0..<5 { for q in 0..<4 {
            let i = ((n * 3 + c) * 5 + p) * 4 + q
            let t = added[(n * 3 + c) * 20 + q * 5 + p]
            #expect(multiplied[i].bitPattern == (t * x[i]).bitPattern)
        } } } }
        for n in 0..<2 { for c in 0..<3 { for h in 0..<2 { for w in 0..<5 {
            let value = multiplied[(n * 3 + c) * 20 + h * 5 + w]
            #expect(rectified[(n * 3 + c) * 20 + h * 10 + w].bitPattern == (value > 0 ? value : 0).bitPattern)
        } } } }
    }

    /// An image channels last ([N, C, H, W], C's stride 1) walks in memory
    /// order (the views' axes sorted by the output's strides) where the
    /// order cannot show: the output apart from the inputs or exactly one
    /// of them. An output that overlaps an input otherwise keeps the
    /// walk's order, element by element in [N, C, H, W] order.
    @Test("elementwise ops over images channels last give the walk's bits, apart, in place and overlapping")
    func channelsLastImages() throws {
        let (c, h, w) = (24, 5, 7), count = c * h * w
        let dims: [UInt32] = [1, UInt32(c), UInt32(h), UInt32(w)]
        let last: [UInt64] = [UInt64(count), 1, UInt64(w * c), UInt64(c)]
        let x = Self.hostile(count, seed: 21), scale = Self.hostile(c, seed: 22)
        func view(_ slot: Int, offset: UInt64 = 0) -> NeuronTensorView {
            NeuronTensorView(slot: slot, offset: offset, dims: dims, strides: last)
        }
        for inPlace in [false, true] {
            func run(_ level: UInt32) throws -> [[UInt32]]? {
                try at(level) {
                    let slots = Slots([count * 4, c * 4, count * 4, count * 4])
                    slots.set(0, x); slots.set(1, scale)
                    var program = NeuronProgram()
                    let silu = inPlace ? view(0) : view(2)
                    program.unary(.silu, silu, view(0))
                    program.binary(.mul, inPlace ? silu : view(3), silu,
                                   NeuronTensorView(slot: 1, dims: dims, strides: [0, 1, 0, 0]))
                    try slots.run(program)
                    return [slots.floats(inPlace ? 0 : 2).map(Self.bits), slots.floats(inPlace ? 0 : 3).map(Self.bits)]
                }
            }
            let reference = try #require(try run(UInt32(NEURON_SIMD_SCALAR.rawValue)))
            // The product against the channel's scale, element by element.
            let silu = inPlace ? reference[1] : reference[0]
            if !inPlace {
                #expect(reference[1] == (0..<count).map { Self.bits(Float(bitPattern: silu[$0]) * scale[$0 % c]) })
            }
            for width in Self.widths {
                guard let got = try run(width.level) else { continue }
                #expect(got == reference, "channels last, in place \(inPlace), at \(width.name)")
            }
        }
        // The output one element past the input in the same buffer: each
        // element reads what an element before it in the walk wrote.
        let slots = Slots([(count + 1) * 4])
        slots.set(0, x + [0])
        var program = NeuronProgram()
        program.unary(.neg, view(0, offset: 1), view(0))
        try slots.run(program)
        var want = x + [0]
        for ch in 0..<c { for row in 0..<h { for col in 0..<w {
            let at = row * w * c + col * c + ch
            want[at + 1] = -want[at]
        } } }
        #expect(slots.floats(0).map(Self.bits) == want.map(Self.bits))
        // The same bytes read in planes and written channels last: not the
        // same view, so the walk's order again.
        let shared = Slots([count * 4])
        shared.set(0, x)
        var transpose = NeuronProgram()
        transpose.unary(.neg, view(0), .contiguous(slot: 0, dims: dims))
        try shared.run(transpose)
        var walked = x
        for ch in 0..<c { for row in 0..<h { for col in 0..<w {
            walked[row * w * c + col * c + ch] = -walked[(ch * h + row) * w + col]
        } } }
        #expect(shared.floats(0).map(Self.bits) == walked.map(Self.bits))
    }

    /// Channels last against a per-channel constant (NHWC's normalisation):
    /// rows of 1 to 7 elements back to back, b's row the same for all,
    /// run 16 rows at a time against b repeated. Every width gives the
    /// scalar loop's bits, ADD the sum's, and a b that the rows overwrite
    /// (b inside the output) is read as the reference reads it, row by row.
    @Test("short rows against a per-channel constant give the reference's bits at every width")
    func channelsLast() throws {
        let rows = 9 * 37   // H x W: 20 groups of 16 rows and 13 left
        for channels in 1...7 {
            let count = rows * channels
            let x = Self.hostile(count, seed: UInt32(channels)), b = Self.hostile(channels, seed: 40)
            let dims: [UInt32] = [1, 9, 37, UInt32(channels)]
            for op in Self.binaryOps {
                func run(_ level: UInt32, inPlace: Bool) throws -> [UInt32]? {
                    try at(level) {
                        let slots = Slots([count * 4, channels * 4, count * 4])
                        slots.set(0, x); slots.set(1, b)
                        var program = NeuronProgram()
                        program.binary(op, .contiguous(slot: inPlace ? 0 : 2, dims: dims), .contiguous(slot: 0, dims: dims),
                                       NeuronTensorView(slot: 1, dims: dims, strides: [0, 0, 0, 1]))
                        try slots.run(program)
                        return slots.floats(inPlace ? 0 : 2).map(Self.bits)
                    }
                }
                for inPlace in [false, true] {
                    let reference = try #require(try run(UInt32(NEURON_SIMD_SCALAR.rawValue), inPlace: inPlace))
                    if op == .add {
                        #expect(reference == (0..<count).map { Self.bits(x[$0] + b[$0 % channels]) })
                    }
                    for width in Self.widths {
                        guard let got = try run(width.level, inPlace: inPlace) else { continue }
                        #expect(got == reference, "\(op) over rows of \(channels) at \(width.name)")
                    }
                }
            }
            // b is the output's first row: every later row reads the first row's result.
            let slots = Slots([count * 4, count * 4])
            slots.set(0, x)
            var program = NeuronProgram()
            program.binary(.add, .contiguous(slot: 0, dims: dims), .contiguous(slot: 1, dims: dims),
                           NeuronTensorView(slot: 0, dims: dims, strides: [0, 0, 0, 1]))
            slots.set(1, x)
            try slots.run(program)
            var want = x
            for index in 0..<count { want[index] = x[index] + want[index % channels] }
            #expect(slots.floats(0).map(Self.bits) == want.map(Self.bits), "b inside the output, rows of \(channels)")
        }
    }

    @Test("copies of every element size: whole rows, strided, broadcast, and overlapping in one buffer as defined",
          arguments: [NeuronDType.int8, .bfloat16, .float32, .int64])
    func copies(_ type: NeuronDType) throws {
        let size = type.size, count = 6 * 7 * 5
        let slots = Slots([count * size, count * size, count * size])
        let bytes = (0..<(count * size)).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        bytes.withUnsafeBytes { slots.buffers[0].copyMemory(from: $0) }
        var program = NeuronProgram()
        // A channel slice of a concatenation: [6, 3, 5] into [6, 7, 5] at channel 2.
        program.copy(NeuronTensorView(slot: 1, dtype: type, offset: 10, dims: [6, 3, 5], strides: [35, 5, 1]),
                     from: NeuronTensorView(slot: 0, dtype: type, dims: [6, 3, 5], strides: [15, 5, 1]))
        // A transpose, and an element repeated along a row (stride 0).
        program.copy(NeuronTensorView(slot: 2, dtype: type, dims: [5, 6], strides: [6, 1]),
                     from: NeuronTensorView(slot: 0, dtype: type, dims: [5, 6], strides: [1, 5]))
        program.copy(NeuronTensorView(slot: 2, dtype: type, offset: 30, dims: [4, 9], strides: [9, 1]),
                     from: NeuronTensorView(slot: 0, dtype: type, dims: [4, 9], strides: [1, 0]))
        // Overlapping: slot 0 shifted by 3 elements onto itself, element by element in order.
        program.copy(NeuronTensorView(slot: 0, dtype: type, offset: 3, dims: [40], strides: [1]),
                     from: NeuronTensorView(slot: 0, dtype: type, dims: [40], strides: [1]))
        try slots.run(program)
        func element(_ from: [UInt8], _ index: Int) -> ArraySlice<UInt8> { from[(index * size)..<((index + 1) * size)] }
        let one = Array(slots.buffers[1]), two = Array(slots.buffers[2]), zero = Array(slots.buffers[0])
        for n in 0..<6 { for c in 0..<3 { for w in 0..<5 {
            #expect(element(one, 10 + n * 35 + c * 5 + w) == element(bytes, n * 15 + c * 5 + w))
        } } }
        for r in 0..<5 { for c in 0..<6 { #expect(element(two, r * 6 + c) == element(bytes, r + c * 5)) } }
        for r in 0..<4 { for c in 0..<9 { #expect(element(two, 30 + r * 9 + c) == element(bytes, r)) } }
        // Copied forward one element at a time, each reads what an earlier one wrote.
        var shifted = bytes
        for i in 0..<40 { for b in 0..<size { shifted[(i + 3) * size + b] = shifted[i * size + b] } }
        #expect(zero == shifted)
    }
}
