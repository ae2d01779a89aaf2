// The device layer speaks the ISA's types (dtypes, programs, their errors):
// whoever imports NeuronDevice gets NeuronISA with it.
@_exported import NeuronISA
