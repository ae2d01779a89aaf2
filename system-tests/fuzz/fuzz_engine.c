// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for the engine's decoder and validator: any bytes as a
 * program, against three small bound buffers (heap-allocated, so that
 * AddressSanitizer sees any access outside them). Programs the validator
 * accepts are run to the end, some instructions in slices. Built by scripts/fuzz with
 * -fsanitize=fuzzer,address,undefined.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "neuron_engine.h"

static const u64 slot_sizes[3] = { 256, 1024, 64 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct neuron_engine_slot scratch;
	struct neuron_engine_slot slots[3];
	struct neuron_engine_program prog;
	struct neuron_engine_status status;
	u64 *image = malloc(size + 8);
	u32 i;

	if (!image)
		return 0;
	memcpy(image, data, size);
	for (i = 0; i < 3; i++) {
		slots[i].size = slot_sizes[i];
		slots[i].base = malloc(slot_sizes[i]);
		memset(slots[i].base, 0x3f, slot_sizes[i]);
	}
	if (!scratch.base) {		/* kept for the whole run */
		scratch.size = NEURON_GEMM_SCRATCH;
		scratch.base = malloc(NEURON_GEMM_SCRATCH);
	}
	if (neuron_engine_validate(image, size, slots, 3, &prog, &status) == 0) {
		/*
		 * Valid programs may be arbitrarily long (2^40-element broadcasts):
		 * run them as far as a work budget pays, as a job timeout would
		 * stop them. No instruction or slice starts that the budget does
		 * not cover (a single instruction once ran whole whatever its cost,
		 * and a 2^30-element LAYERNORM took libFuzzer past its timeout).
		 */
		u64 budget = 1u << 22;
		u64 extent[NEURON_MAX_SLOTS];

		neuron_engine_slot_extents(&prog, extent);
		for (i = 0; i < 3; i++)
			if (extent[i] > slot_sizes[i])
				abort();	/* an extent past a buffer it was checked against */
		/* Every third instruction runs in slices, as a kernel queue does. */
		for (i = 0; i < prog.insn_count; i++) {
			const struct neuron_engine_slot *scr = (i & 1) ? &scratch : NULL;
			u32 parts = neuron_engine_insn_parts(&prog, i), p, step = 1 + size % 3;
			u64 cost = neuron_engine_insn_cost(&prog, i), slice;

			if (!parts)
				abort();
			if (i % 3 != 2) {
				if (cost > budget)
					break;
				neuron_engine_step(&prog, i, slots, scr);
				budget -= cost;
				continue;
			}
			if (cost / parts >= budget)
				break;
			slice = (cost / parts + 1) * step;	/* no overflow: under 3 * 2^22 */
			for (p = 0; p < parts && slice <= budget; p += step) {
				neuron_engine_step_part(&prog, i, slots, scr, p, step);
				budget -= slice;
			}
			if (p < parts)
				break;
		}
	} else if (status.error == NEURON_ISA_OK) {
		abort();	/* refused without a reason */
	}
	for (i = 0; i < 3; i++)
		free(slots[i].base);
	free(image);
	return 0;
}
