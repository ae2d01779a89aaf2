/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Engine internals: each instruction's check (engine_validate.c) and step
 * (engine_exec.c), which the table in engine_insn.c names.
 */
#ifndef NEURON_ENGINE_INSN_H
#define NEURON_ENGINE_INSN_H

#include "neuron_engine.h"

#define NEURON_CHECK(name) \
	u32 neuron_check_##name(const struct neuron_insn *in, const struct neuron_tensor_desc *descs)
#define NEURON_EXEC(name) \
	u32 neuron_exec_##name(const struct neuron_insn *in, const struct neuron_tensor_desc *descs, \
			       const struct neuron_engine_slot *slots,			\
			       const struct neuron_engine_slot *scratch)

NEURON_CHECK(none);
NEURON_CHECK(copy);
NEURON_CHECK(elementwise);
NEURON_CHECK(matmul);
NEURON_CHECK(reduce);
NEURON_CHECK(softmax);
NEURON_CHECK(cast);
NEURON_CHECK(gather);
NEURON_CHECK(layernorm);
NEURON_CHECK(conv2d);
NEURON_CHECK(pool2d);
NEURON_CHECK(sync);

NEURON_EXEC(nop);
NEURON_EXEC(fill);
NEURON_EXEC(copy);
NEURON_EXEC(elementwise);
NEURON_EXEC(matmul);
NEURON_EXEC(rows);
NEURON_EXEC(cast);
NEURON_EXEC(gather);
NEURON_EXEC(layernorm);
NEURON_EXEC(conv2d);
NEURON_EXEC(pool2d);

#endif /* NEURON_ENGINE_INSN_H */
