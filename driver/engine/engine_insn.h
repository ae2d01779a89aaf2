/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Engine internals: each instruction's check (engine_validate.c) and step
 * (engine_exec.c), which the table in engine_insn.c names.
 */
#ifndef NEURON_ENGINE_INSN_H
#define NEURON_ENGINE_INSN_H

#include "neuron_engine.h"

/* A strided walk over up to NEURON_MAX_RANK dimensions. */
struct walk {
	u32 rank;
	u32 dims[NEURON_MAX_RANK];
	u32 idx[NEURON_MAX_RANK];
};

static inline void walk_init(struct walk *w, const struct neuron_tensor_desc *d)
{
	u32 i;

	w->rank = d->rank;
	for (i = 0; i < NEURON_MAX_RANK; i++) {
		w->dims[i] = d->dims[i];
		w->idx[i] = 0;
	}
}

/* Element offset of the walk's current index in @d. */
static inline u64 at(const struct walk *w, const struct neuron_tensor_desc *d)
{
	u64 off = d->offset;
	u32 i;

	for (i = 0; i < w->rank; i++)
		off += (u64)w->idx[i] * d->strides[i];
	return off;
}

/* Advance to the next index in row-major order; 0 at the end. */
static inline int walk_next(struct walk *w)
{
	int i;

	for (i = (int)w->rank - 1; i >= 0; i--) {
		if (++w->idx[i] < w->dims[i])
			return 1;
		w->idx[i] = 0;
	}
	return 0;
}

/*
 * A walk by rows over @count views of one shape (@d[0]'s dims): trailing
 * axes that every view steps through evenly merge into one row of *@n
 * elements, view j's @step[j] apart; @w then walks the other axes (the
 * merged ones are 1 in it). The order of elements is the walk's.
 */
static inline void walk_rows(struct walk *w, const struct neuron_tensor_desc *const *d, u32 count,
			     u64 *n, u64 *step)
{
	int i;
	u32 j;

	walk_init(w, d[0]);
	*n = 1;
	for (j = 0; j < count; j++)
		step[j] = 0;
	for (i = (int)d[0]->rank - 1; i >= 0; i--) {
		u32 dim = d[0]->dims[i];

		if (dim == 1)
			continue;
		if (*n > 1) {
			for (j = 0; j < count; j++)
				if (d[j]->strides[i] != step[j] * *n)
					return;
		} else {
			for (j = 0; j < count; j++)
				step[j] = d[j]->strides[i];
		}
		*n *= dim;
		w->dims[i] = 1;
	}
}

/*
 * After walk_rows: the innermost axis the walk still steps through, taken
 * out of it as *@m rows, view j's @ostep[j] apart (*@m is 1 when none is
 * left), so that short rows are walked two axes at a time. The order of
 * elements stays the walk's.
 */
static inline void walk_outer(struct walk *w, const struct neuron_tensor_desc *const *d, u32 count,
			      u64 *m, u64 *ostep)
{
	int i;
	u32 j;

	*m = 1;
	for (j = 0; j < count; j++)
		ostep[j] = 0;
	for (i = (int)w->rank - 1; i >= 0; i--) {
		if (w->dims[i] <= 1)
			continue;
		*m = w->dims[i];
		for (j = 0; j < count; j++)
			ostep[j] = d[j]->strides[i];
		w->dims[i] = 1;
		return;
	}
}

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
NEURON_CHECK(compare);
NEURON_CHECK(select);
NEURON_CHECK(scatter);
NEURON_CHECK(topk);

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
NEURON_EXEC(compare);
NEURON_EXEC(select);
NEURON_EXEC(scatter);
NEURON_EXEC(topk);

/* engine_typed.c: element types beyond f32, for engine_exec.c. */
void neuron_typed_fill(const struct neuron_tensor_desc *o, float value,
		       const struct neuron_engine_slot *slots);
void neuron_typed_cast(const struct neuron_tensor_desc *o, const struct neuron_tensor_desc *a,
		       u32 flags, const struct neuron_engine_slot *slots);
void neuron_typed_elementwise(const struct neuron_insn *in, const struct neuron_tensor_desc *o,
			      const struct neuron_tensor_desc *a, const struct neuron_tensor_desc *b,
			      const struct neuron_engine_slot *slots);
void neuron_typed_reduce(const struct neuron_insn *in, const struct neuron_tensor_desc *o,
			 const struct neuron_tensor_desc *a, const struct neuron_engine_slot *slots);
s64 neuron_typed_index(const void *base, u32 dtype, u64 off);
u32 neuron_typed_scatter(const struct neuron_insn *in, const struct neuron_tensor_desc *o,
			 const struct neuron_tensor_desc *ix, const struct neuron_tensor_desc *u,
			 const struct neuron_engine_slot *slots);
void neuron_typed_matmul(const struct neuron_tensor_desc *o, const struct neuron_tensor_desc *a,
			 const struct neuron_tensor_desc *b, const struct neuron_tensor_desc *bias,
			 const struct neuron_engine_slot *slots);

#endif /* NEURON_ENGINE_INSN_H */
