import Foundation
import NeuronISA
import NeuronNEFF
import Testing
import TestSupport
@testable import NeuronCompiler

/// CumSum and CumProd (log-step scans) and Einsum (diagonals, sums and
/// batched products), against direct Swift definitions, on shapes the
/// ONNX node tests do not reach: lengths that are no power of two, every
/// direction, float64 and wrapping integers, three operands, broadcast
/// ellipses.
@Suite("neuron-cc: CumSum, CumProd and Einsum")
struct ScanEinsumTests {
    static func graph(_ op: String, _ inputs: [(String, ElementType, [Int])], output: ElementType,
                      attributes: [String: AttributeValue] = [:], constants: [String: ConstantTensor] = [:]) -> Graph {
        Graph(name: op, opset: 18, inputs: inputs.map { ValueInfo(name: $0.0, type: $0.1, shape: $0.2.map { .fixed($0) }) },
              outputs: [ValueInfo(name: "y", type: output, shape: nil)], constants: constants,
              nodes: [Node(name: "n", op: op, inputs: inputs.map(\.0) + constants.keys.sorted(), outputs: ["y"],
                           attributes: attributes)])
    }

    /// The scan of rows of `length` in `values` ([rows, length], axis 1), as defined.
    static func scan<T>(_ values: [T], length: Int, exclusive: Bool, reverse: Bool, identity: T,
                        _ op: (T, T) -> T) -> [T] {
        var out = values
        for row in 0..<(values.count / length) {
            var acc = identity
            let order = reverse ? Array((0..<length).reversed()) : Array(0..<length)
            for i in order {
                let x = values[row * length + i]
                if exclusive {
                    out[row * length + i] = acc
                    acc = op(acc, x)
                } else {
                    acc = op(acc, x)
                    out[row * length + i] = acc
                }
            }
        }
        return out
    }

    @Test("CumSum of float64 and CumProd of int32 (wrapping) in every direction, over 37 elements")
    func scans() throws {
        let length = 37, rows = 3
        let doubles = (0..<(rows * length)).map { Double($0 % 11) * 0.37 - 1.5 }
        let ints = (0..<(rows * length)).map { Int32($0 % 7) - 3 }
        for exclusive in [false, true] {
            for reverse in [false, true] {
                let attributes: [String: AttributeValue] = ["exclusive": .int(exclusive ? 1 : 0), "reverse": .int(reverse ? 1 : 0)]
                let sum = try NeuronCompiler.compile(Self.graph("CumSum", [("x", .float64, [rows, length])], output: .float64,
                                                                attributes: attributes, constants: ["axis": .integers([-1])])).0
                let got = NeuronDType.float64.values(try runBytes(sum, ["x": NeuronDType.float64.bytes(doubles)])["y"] ?? [])
                let want = Self.scan(doubles, length: length, exclusive: exclusive, reverse: reverse, identity: 0.0, +)
                #expect(got.count == want.count && zip(got, want).allSatisfy { abs($0 - $1) <= 1e-12 * max(1, abs($1)) },
                        "CumSum exclusive=\(exclusive) reverse=\(reverse)")
                let product = try NeuronCompiler.compile(Self.graph("CumProd", [("x", .int32, [rows, length])], output: .int32,
                                                                    attributes: attributes, constants: ["axis": .integers([1])])).0
                let bytes = try runBytes(product, ["x": NeuronDType.int32.bytes(ints.map(Double.init))])["y"] ?? []
                let products = NeuronDType.int32.values(bytes).map { Int32($0) }
                // Integer products are exact in any grouping (wrapping is a ring).
                #expect(products == Self.scan(ints, length: length, exclusive: exclusive, reverse: reverse, identity: 1, &*),
                        "CumProd exclusive=\(exclusive) reverse=\(reverse)")
            }
        }
        // The axis must be known and one integer.
        #expect(throws: NeuronCompilerError.self) {
            try NeuronCompiler.compile(Self.graph("CumSum", [("x", .float32, [4])], output: .float32,
                                                  constants: ["axis": .integers([0, 0])]))
        }
    }

    /// out[i, l] of `equation` over row-major operands, by definition.
    static func naive(_ letters: [[Character]], _ output: [Character], _ operands: [[Double]], _ shapes: [[Int]]) -> [Double] {
        var size: [Character: Int] = [:]
        for (term, shape) in zip(letters, shapes) { for (c, d) in zip(term, shape) { size[c] = max(size[c] ?? 1, d) } }
        let all = Array(Set(letters.joined())).sorted()
        let outSizes = output.map { size[$0] ?? 1 }
        var out = [Double](repeating: 0, count: outSizes.reduce(1, *))
        var index = [Character: Int]()
        func visit(_ k: Int) {
            if k == all.count {
                var product = 1.0
                for (n, term) in letters.enumerated() {
                    var flat = 0
                    for (axis, c) in term.enumerated() { flat = flat * shapes[n][axis] + (shapes[n][axis] == 1 ? 0 : index[c] ?? 0) }
                    product *= operands[n][flat]
                }
                var at = 0
                for c in output { at = at * (size[c] ?? 1) + (index[c] ?? 0) }
                out[at] += product
                return
            }
            for i in 0..<(size[all[k]] ?? 1) {
                index[all[k]] = i
                visit(k + 1)
            }
        }
        visit(0)
        return out
    }

    @Test("Einsum: attention scores, three operands, a broadcast ellipsis, a trace, float32 and float64",
          arguments: [
              ("bhid,bhjd->bhij", [[2, 3, 4, 5], [2, 3, 6, 5]]),
              ("ij,jk,kl->li", [[3, 4], [4, 5], [5, 2]]),
              ("...ij,...jk->...ik", [[1, 2, 3], [4, 3, 2]]),
              ("ii", [[4, 4]]),
              ("bii->b", [[3, 4, 4]]),
              ("ij,ij->", [[3, 5], [3, 5]]),
              ("ijk->kji", [[2, 3, 4]]),
          ])
    func einsum(_ equation: String, _ shapes: [[Int]]) throws {
        let names = shapes.indices.map { "x\($0)" }
        var values: [[Double]] = []
        for (n, shape) in shapes.enumerated() {
            let count = shape.reduce(1, *)
            values.append((0..<count).map { (i: Int) -> Double in Double((i * 7 + n * 3) % 13) / 4 - 1.5 })
        }
        let sides = equation.components(separatedBy: "->")
        let digits: [Character] = Array("ZYXWVU")
        var terms: [[Character]] = []
        for (term, shape) in zip(sides[0].components(separatedBy: ","), shapes) {
            guard term.contains("...") else {
                terms.append(Array(term))
                continue
            }
            let parts = term.components(separatedBy: "...")
            let span = shape.count - parts[0].count - parts[1].count
            let middle: [Character] = Array(digits.prefix(span).reversed())
            terms.append(Array(parts[0]) + middle + Array(parts[1]))
        }
        var output: [Character]
        if sides.count == 2 {
            let parts = sides[1].components(separatedBy: "...")
            let span = terms.map { $0.filter { digits.contains($0) }.count }.max() ?? 0
            output = parts.count == 2 ? Array(parts[0]) + Array(digits.prefix(span).reversed()) + Array(parts[1]) : Array(sides[1])
        } else {
            var count: [Character: Int] = [:]
            for c in terms.joined() { count[c, default: 0] += 1 }
            output = count.filter { $0.value == 1 }.keys.sorted()
        }
        let want = Self.naive(terms, output, values, shapes)
        for type in [ElementType.float32, .float64] {
            let graph = Self.graph("Einsum", zip(names, shapes).map { ($0, type, $1) }, output: type,
                                   attributes: ["equation": .string(equation)])
            let (model, _) = try NeuronCompiler.compile(graph)
            let out = try runBytes(model, Dictionary(uniqueKeysWithValues: zip(names, values.map { type.bytes($0) })))
            let got = type.values(out["y"] ?? [])
            #expect(got.count == want.count, "\(equation) \(type.name): \(got.count) values, want \(want.count)")
            #expect(zip(got, want).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) }, "\(equation) \(type.name): \(got) vs \(want)")
        }
    }

    @Test("Einsum refuses equations that do not fit their inputs, with the equation in the message")
    func einsumRefusals() {
        let cases: [(String, [[Int]])] = [("ij->ij", [[2, 3, 4]]), ("ij,jk->ik", [[2, 3]]), ("ij->k", [[2, 3]]),
                                          ("ij,jk->ik", [[2, 3], [4, 5]]), ("i1->i", [[2, 3]]), ("ij->ii", [[2, 2]])]
        for (equation, shapes) in cases {
            let names = shapes.indices.map { "x\($0)" }
            let graph = Self.graph("Einsum", zip(names, shapes).map { ($0, .float32, $1) }, output: .float32,
                                   attributes: ["equation": .string(equation)])
            do {
                _ = try NeuronCompiler.compile(graph)
                Issue.record("\(equation) over \(shapes) compiled")
            } catch {
                #expect(error.message.contains("Einsum"), "\(equation): \(error)")
            }
        }
    }
}
