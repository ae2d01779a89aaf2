import NeuronCLI
import NeuronDeviceListing
import NeuronDevice
import Testing
import TestSupport

@Suite("Text rendering")
struct RenderingTests {
    @Test func bytes() {
        #expect(formatBytes(8 << 30) == "8 GiB")
        #expect(formatBytes(64 << 20) == "64 MiB")
        #expect(formatBytes(1500) == "1500 B")
        #expect(formatBytes(0) == "0 B")
    }

    @Test func ids() {
        #expect(formatIDs([4, 5, 6, 7]) == "4-7")
        #expect(formatIDs([0, 2]) == "0, 2")
        #expect(formatIDs([3]) == "3")
        #expect(formatIDs([]) == "")
    }

    @Test("cells of several lines and columns as wide as their widest entry")
    func table() {
        var table = TextTable(headers: [["A", "LONG"], ["B", "X"]])
        table.append([["1"], ["p1", "process-two"]])
        let lines = table.render().split(separator: "\n").map(String.init)
        #expect(lines.count == 7)
        #expect(Set(lines.map(\.count)).count == 1)
        #expect(lines[4] == "| 1    | p1          |")
        #expect(lines[5] == "|      | process-two |")
    }

    func listing(_ index: Int, links: [Int]) -> DeviceListing {
        DeviceListing(info: NeuronDeviceInfo(index: index, platform: .fake, coreCount: 4, memorySize: 1 << 30,
                                             memoryUsed: 0, numaNode: nil, connectedTo: links,
                                             serial: neuronFakeSerial(ordinal: index), pciBDF: nil,
                                             jobTimeoutMilliseconds: 10_000),
                      firstCoreID: index * 4, processes: [])
    }

    @Test("topology draws the ring's return link only for a ring")
    func topology() {
        let ring = (0..<3).map { listing($0, links: neuronRingNeighbours(of: $0, count: 3)) }
        let drawn = renderTopology(ring).split(separator: "\n")
        #expect(drawn[0] == "[0] <-> [1] <-> [2]")
        #expect(drawn[1] == " ^               ^")
        #expect(drawn[2] == " +---------------+")
        let chain = [listing(0, links: [1]), listing(1, links: [0]), listing(2, links: [])]
        let chainDrawn = renderTopology(chain).split(separator: "\n")
        #expect(chainDrawn[0] == "[0] <-> [1]     [2]")
        #expect(chainDrawn[1] == "neuron0: neuron1")
        #expect(listing(1, links: []).numa_node == -1)
    }
}
