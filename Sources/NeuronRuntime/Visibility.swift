/// Which NeuronCores a process may use, as AWS's runtime reads them:
/// `NEURON_RT_VISIBLE_CORES` names cores by global index (device 0's cores
/// first), one (`3`), an inclusive range (`0-2`) or a comma-separated list
/// of both (`0,2-3`); `NEURON_RT_NUM_CORES` takes that many of them (all
/// by default).
public enum NeuronCoreVisibility {
    public static func visibleCores(total: Int, environment: [String: String]) throws(NeuronRuntimeError) -> [Int] {
        var cores = Array(0..<total)
        if let text = environment["NEURON_RT_VISIBLE_CORES"], !text.isEmpty {
            cores = []
            for part in text.split(separator: ",", omittingEmptySubsequences: false) {
                let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
                    .map { Int($0.trimmingCharacters(in: .whitespaces)) }
                guard (1...2).contains(bounds.count), let low = bounds.first ?? nil,
                      let high = bounds.last ?? nil, low >= 0, low <= high else {
                    throw NeuronRuntimeError(.invalid, "NEURON_RT_VISIBLE_CORES=\(text): expected a core, a range such as 0-2, or a list such as 0,2-3")
                }
                guard high < total else {
                    throw NeuronRuntimeError(.invalid, "NEURON_RT_VISIBLE_CORES=\(text) names NeuronCore \(high); this machine has \(total) (0-\(total - 1))")
                }
                cores += Array(low...high)
            }
            guard Set(cores).count == cores.count else {
                throw NeuronRuntimeError(.invalid, "NEURON_RT_VISIBLE_CORES=\(text) names a NeuronCore twice")
            }
        }
        if let text = environment["NEURON_RT_NUM_CORES"], !text.isEmpty {
            guard let count = Int(text), count >= 1 else {
                throw NeuronRuntimeError(.invalid, "NEURON_RT_NUM_CORES=\(text): expected a whole number of at least 1")
            }
            guard count <= cores.count else {
                throw NeuronRuntimeError(.loadNotEnoughCores, "NEURON_RT_NUM_CORES=\(count), but only \(cores.count) NeuronCores are visible")
            }
            cores = Array(cores.prefix(count))
        }
        return cores
    }
}

import Foundation
