import NeuronCLI
/// Draws how devices link: a chain of `[i]` boxes joined by `<->` where
/// i links to i+1, and a return line under it where the last links back
/// to the first (the Inf1 ring).
public func renderTopology(_ devices: [DeviceListing]) -> String {
    guard !devices.isEmpty else { return "no devices" }
    let sorted = devices.sorted { $0.neuron_device < $1.neuron_device }
    func linked(_ a: DeviceListing, _ b: Int) -> Bool { a.connected_to.contains(b) }
    var line = ""
    var centres: [Int] = []
    for (position, device) in sorted.enumerated() {
        if position > 0 {
            line += linked(sorted[position - 1], device.neuron_device) ? " <-> " : "     "
        }
        let box = "[\(device.neuron_device)]"
        centres.append(line.count + box.count / 2)
        line += box
    }
    var out = [line]
    if let first = sorted.first, let last = sorted.last, sorted.count > 2,
       linked(last, first.neuron_device), let a = centres.first, let b = centres.last {
        let pad = String(repeating: " ", count: a)
        out.append(pad + "^" + String(repeating: " ", count: b - a - 1) + "^")
        out.append(pad + "+" + String(repeating: "-", count: b - a - 1) + "+")
    }
    for device in sorted {
        let links = device.connected_to.map { "neuron\($0)" }.joined(separator: ", ")
        out.append("neuron\(device.neuron_device): \(links.isEmpty ? "(no links)" : links)")
    }
    return out.joined(separator: "\n")
}
