#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Seeds for the NEFF and ONNX fuzzers (system-tests/fuzz/swift), kept in
system-tests/fuzz/corpus/{onnx,neff}:

- onnx: the ONNX backend node tests (the PyPI onnx package) of every op
  neuron-cc claims, whole models of one node, when they are small;
- neff: a sample of them compiled by neuron-cc, plus the built-in example
  MLP of neuron-run at a small size.

Run once after swift build (needs the onnx package); the fuzzers' own
finds are merged with scripts/fuzz --merge.
"""
import hashlib
import os
import subprocess
import sys
import tempfile
import warnings

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(REPO, ".build", "debug")
MAX_BYTES = 4096
PER_OP = 3


def main():
    import onnx
    from onnx.backend.test.case import node as node_cases

    out_onnx = os.path.join(REPO, "system-tests", "fuzz", "corpus", "onnx")
    out_neff = os.path.join(REPO, "system-tests", "fuzz", "corpus", "neff")
    os.makedirs(out_onnx, exist_ok=True)
    os.makedirs(out_neff, exist_ok=True)
    ops = set(subprocess.run([os.path.join(BIN, "neuron-cc"), "ops"], check=True,
                             capture_output=True, text=True).stdout.split())
    kept = compiled = 0
    seen = set()
    per_op = {}
    warnings.simplefilter("ignore")
    for case in node_cases.collect_testcases(None):
        if not case.model.graph.node:
            continue
        op = case.model.graph.node[0].op_type
        if op not in ops or per_op.get(op, 0) >= PER_OP:
            continue
        data = case.model.SerializeToString()
        digest = hashlib.sha1(data).hexdigest()
        if len(data) > MAX_BYTES or digest in seen:
            continue
        seen.add(digest)
        per_op[op] = per_op.get(op, 0) + 1
        path = os.path.join(out_onnx, f"{case.name}.onnx")
        with open(path, "wb") as f:
            f.write(data)
        kept += 1
        # One of each op compiled (when it compiles as it is) as a NEFF seed.
        if per_op[op] == 1:
            with tempfile.TemporaryDirectory() as tmp:
                neff = os.path.join(tmp, "m.neff")
                done = subprocess.run([os.path.join(BIN, "neuron-cc"), "compile", path, "-o", neff],
                                      capture_output=True)
                if done.returncode == 0 and os.path.getsize(neff) <= 16384:
                    os.replace(neff, os.path.join(out_neff, f"{case.name}.neff"))
                    compiled += 1
    subprocess.run([os.path.join(BIN, "neuron-run"), os.path.join(out_neff, "example-mlp.neff"),
                    "--example-mlp", "--example-width", "16", "--example-batch", "2",
                    "--iterations", "1"], check=True, capture_output=True,
                   env=dict(os.environ, NEURON_BACKEND="sim"))
    print(f"{kept} ONNX seeds, {compiled + 1} NEFF seeds")


if __name__ == "__main__":
    sys.exit(main())
