#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Write valid ISA v1 programs into system-tests/fuzz/corpus/engine as fuzzing seeds,
one per opcode family, over the fuzzer's slots of 256, 1024 and 64 bytes."""
import os
import struct
import sys

MAGIC, VERSION = 0x4153494E, 1
F32, BF16, I32, I64 = 1, 2, 3, 4
NAN = float("nan")


def desc(slot, dims, offset=0, dtype=F32, strides=None):
    if strides is None:
        strides, step = [], 1
        for d in reversed(dims):
            strides.insert(0, step)
            step *= d
    d6 = list(dims) + [0] * (6 - len(dims))
    s6 = list(strides) + [0] * (6 - len(strides))
    return struct.pack("<HBBIQ6I6Q", slot, dtype, len(dims), 0, offset, *d6, *s6)


def insn(opcode, sub=0, flags=0, operands=(0, 0, 0, 0), fparam=(0.0, 0.0), iparam=(0,) * 8):
    return struct.pack("<BBHI4I2f8I", opcode, sub, flags, 0, *operands, *fparam, *iparam)


def program(descs, insns):
    head = struct.pack("<IHHII2Q", MAGIC, VERSION, 0, len(descs), len(insns), 0, 0)
    return head + b"".join(descs) + b"".join(insns)


SEEDS = {
    "fill_copy": program([desc(0, [16]), desc(1, [4, 4]), desc(1, [4, 4], strides=[1, 4])],
                         [insn(1, operands=(0, 0, 0, 0), fparam=(2.5, 0)), insn(2, operands=(1, 2, 0, 0))]),
    "binary": program([desc(0, [4, 4]), desc(1, [4, 4]), desc(2, [4, 4], strides=[0, 1])],
                      [insn(3, sub=s, operands=(0, 1, 2, 0)) for s in range(7)]),
    "unary": program([desc(0, [8, 8]), desc(1, [8, 8])],
                     [insn(4, sub=s, operands=(0, 1, 0, 0), fparam=(0.1, 0)) for s in range(14)]),
    "matmul": program([desc(1, [4, 8]), desc(1, [8, 4], offset=32), desc(0, [4, 4]), desc(2, [4])],
                      [insn(5, flags=1, operands=(2, 0, 1, 3))]),
    "rows": program([desc(0, [4, 8]), desc(1, [4, 1]), desc(1, [4, 8], offset=8)],
                    [insn(6, sub=s, operands=(1, 0, 0, 0)) for s in range(4)] + [insn(7, operands=(2, 0, 0, 0))]),
    "fill_nan_to_int": program([desc(0, [4], dtype=I32), desc(0, [2], dtype=I64, offset=4)],
                               [insn(1, operands=(0, 0, 0, 0), fparam=(NAN, 0)), insn(1, operands=(1, 0, 0, 0), fparam=(-1e30, 0))]),
    "cast_gather": program([desc(0, [4, 4]), desc(1, [4, 4], dtype=BF16), desc(2, [3], dtype=I32),
                            desc(1, [3, 4], offset=64)],
                           [insn(8, operands=(1, 0, 0, 0)), insn(1, operands=(2, 0, 0, 0), fparam=(2, 0)),
                            insn(9, operands=(3, 0, 2, 0))]),
    "layernorm": program([desc(0, [4, 8]), desc(1, [4, 8]), desc(2, [8]), desc(2, [8], offset=8)],
                         [insn(10, operands=(1, 0, 2, 3), fparam=(1e-5, 0))]),
    "conv_pool": program([desc(1, [1, 2, 6, 6]), desc(0, [4, 2, 2, 2]), desc(2, [4]),
                          desc(1, [1, 4, 5, 5], offset=72), desc(1, [1, 4, 3, 3], offset=172)],
                         [insn(11, flags=3, operands=(3, 0, 1, 2), iparam=(1, 1, 0, 0, 0, 0, 1, 1)),
                          insn(12, sub=0, operands=(4, 3, 0, 0), iparam=(2, 2, 1, 1, 1, 1, 3, 3))]),
    "matmul_bf16": program([desc(1, [4, 8], dtype=BF16), desc(1, [8, 4], dtype=BF16, offset=64), desc(0, [4, 4])],
                           [insn(5, operands=(2, 0, 1, 0))]),
    # ISA 1.9: bf16 pairs (flag 0x2) with a bias, f32 A and bf16 B, odd K
    "matmul_bf16_pairs": program([desc(1, [4, 9]), desc(1, [9, 4], dtype=BF16, offset=72), desc(0, [4, 4]),
                                  desc(2, [4])],
                                 [insn(5, flags=3, operands=(2, 0, 1, 3))]),
    # ISA 1.10: CONV2D in bf16 pairs (0x20) with bias, relu and accumulate,
    # f32 input, bf16 weights, stride 2 and padding
    "conv_bf16_pairs": program([desc(1, [1, 3, 5, 5]), desc(1, [4, 3, 3, 3], dtype=BF16, offset=150),
                                desc(0, [1, 4, 3, 3]), desc(2, [4])],
                               [insn(11, flags=0x2B, operands=(2, 0, 1, 3), iparam=(2, 2, 1, 1, 1, 1, 1, 1))]),
    # ISA 1.11: MATMUL with B in panels (0x4) and a bias: 1 row, K 2, N 33 (two panels)
    "matmul_panels": program([desc(1, [1, 2]), desc(1, [2, 2, 32], offset=8), desc(0, [1, 33]),
                              desc(1, [33], offset=140)],
                             [insn(5, flags=5, operands=(2, 0, 1, 3))]),
    # ISA 1.14: MATMUL with a bias in bf16 pairs, B in panels of pairs (0x7)
    "matmul_pair_panels": program([desc(0, [2, 4]), desc(1, [2, 2, 64], dtype=BF16), desc(1, [2, 33], offset=128),
                                   desc(1, [33], offset=194)],
                                  [insn(5, flags=7, operands=(2, 0, 1, 3))]),
    # ISA 1.13: MATMUL with a bias, relu and an upper bound (0x19, fparam[0] = 6)
    "matmul_relu6": program([desc(1, [3, 4]), desc(1, [4, 5], offset=12), desc(0, [3, 5]), desc(1, [5], offset=40)],
                            [insn(5, flags=0x19, operands=(2, 0, 1, 3), fparam=(6.0, 0))]),
    # ISA 1.12: a depthwise CONV2D with bias, relu and an upper bound (0x40, fparam[0] = 6): ReLU6
    "conv_clamp": program([desc(1, [1, 4, 5, 5]), desc(0, [4, 1, 3, 3]), desc(1, [1, 4, 5, 5], offset=100),
                           desc(2, [4])],
                          [insn(11, flags=0x43, operands=(2, 0, 1, 3), fparam=(6.0, 0), iparam=(1, 1, 1, 1, 1, 1, 1, 1))]),
    # far over the fuzzer's work budget: 2^27 rows, all the same 8 elements
    # (once ran whole and took libFuzzer past its timeout)
    "layernorm_broadcast": program([desc(0, [1 << 27, 8], strides=[0, 1]), desc(1, [1 << 27, 8], strides=[0, 1]),
                                    desc(2, [8]), desc(2, [8], offset=8)],
                                   [insn(10, operands=(1, 0, 2, 3), fparam=(1e-5, 0))]),
}

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "engine")
os.makedirs(out, exist_ok=True)
for name, image in SEEDS.items():
    with open(os.path.join(out, "seed_" + name), "wb") as f:
        f.write(image)
