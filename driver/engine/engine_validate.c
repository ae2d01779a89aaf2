// SPDX-License-Identifier: GPL-2.0
/*
 * Engine: program validation. Everything a program can name is checked
 * here, once, before anything runs: the header and exact size, every
 * descriptor's fields and the last element it reaches, every
 * instruction's opcode, sub-operation, flags, operands, dtypes and
 * shapes. Integer arithmetic only, all of it overflow-checked.
 */
#include "neuron_engine.h"

static const u8 dtype_size[] = {
	[NEURON_DT_F32] = 4, [NEURON_DT_BF16] = 2, [NEURON_DT_I32] = 4, [NEURON_DT_I64] = 8,
};

static int fail(struct neuron_engine_status *st, u32 error, u32 index)
{
	st->error = error;
	st->index = index;
	return -1;
}

static int mul_ovf(u64 a, u64 b, u64 *out)
{
	return __builtin_mul_overflow(a, b, out);
}

static int add_ovf(u64 a, u64 b, u64 *out)
{
	return __builtin_add_overflow(a, b, out);
}

u64 neuron_engine_desc_elements(const struct neuron_tensor_desc *d)
{
	u64 n = 1;
	u32 i;

	for (i = 0; i < d->rank; i++)
		n *= d->dims[i];	/* at most 2^40 once validated */
	return n;
}

/* 0 when @d is well formed and inside its bound slot. */
static u32 check_desc(const struct neuron_tensor_desc *d,
		      const struct neuron_engine_slot *slots, u32 slot_count)
{
	u64 last, bytes, term, elements = 1;
	u32 i;

	if (d->pad || d->rank > NEURON_MAX_RANK || d->dtype < NEURON_DT_F32 ||
	    d->dtype > NEURON_DT_I64)
		return NEURON_ISA_E_DESC;
	for (i = 0; i < NEURON_MAX_RANK; i++) {
		if (i < d->rank) {
			if (!d->dims[i] || mul_ovf(elements, d->dims[i], &elements))
				return NEURON_ISA_E_DESC;
		} else if (d->dims[i] || d->strides[i]) {
			return NEURON_ISA_E_DESC;
		}
	}
	/* Engines iterate with 64-bit counters; keep sizes far from the edge. */
	if (elements > (1ULL << 40))
		return NEURON_ISA_E_DESC;
	if (d->slot >= NEURON_MAX_SLOTS || d->slot >= slot_count || !slots[d->slot].size)
		return NEURON_ISA_E_SLOT;

	last = d->offset;
	for (i = 0; i < d->rank; i++) {
		if (mul_ovf((u64)(d->dims[i] - 1), d->strides[i], &term) ||
		    add_ovf(last, term, &last))
			return NEURON_ISA_E_RANGE;
	}
	if (add_ovf(last, 1, &last) || mul_ovf(last, dtype_size[d->dtype], &bytes) ||
	    bytes > slots[d->slot].size)
		return NEURON_ISA_E_RANGE;
	/* Every element must be aligned for its type within the buffer. */
	if (((unsigned long)slots[d->slot].base) % dtype_size[d->dtype])
		return NEURON_ISA_E_RANGE;
	return NEURON_ISA_OK;
}

static int same_dims(const struct neuron_tensor_desc *a, const struct neuron_tensor_desc *b)
{
	u32 i;

	if (a->rank != b->rank)
		return 0;
	for (i = 0; i < a->rank; i++)
		if (a->dims[i] != b->dims[i])
			return 0;
	return 1;
}

/* Operands an opcode uses (operand[0] is always the output). */
static const u8 operand_count[NEURON_OP_COUNT] = {
	[NEURON_OP_NOP] = 0, [NEURON_OP_FILL] = 1, [NEURON_OP_COPY] = 2,
	[NEURON_OP_BINARY] = 3, [NEURON_OP_UNARY] = 2, [NEURON_OP_MATMUL] = 3,
	[NEURON_OP_REDUCE] = 2, [NEURON_OP_SOFTMAX] = 2,
};

static int is_f32(const struct neuron_tensor_desc *d)
{
	return d->dtype == NEURON_DT_F32;
}

/* Shapes for MATMUL: out[B?,M,N] = a[B?,M,K] x b[B?,K,N] (+ bias[N]). */
static int check_matmul(const struct neuron_program_header *h,
			const struct neuron_tensor_desc *descs,
			const struct neuron_insn *in)
{
	const struct neuron_tensor_desc *o = &descs[in->operand[0]];
	const struct neuron_tensor_desc *a = &descs[in->operand[1]];
	const struct neuron_tensor_desc *b = &descs[in->operand[2]];
	u32 r = o->rank;

	if (in->flags & ~NEURON_MATMUL_BIAS)
		return NEURON_ISA_E_OPCODE;
	if (!is_f32(o) || !is_f32(a) || !is_f32(b))
		return NEURON_ISA_E_OPERAND;
	if ((r != 2 && r != 3) || a->rank != r || b->rank != r)
		return NEURON_ISA_E_OPERAND;
	if (r == 3 && (a->dims[0] != o->dims[0] || b->dims[0] != o->dims[0]))
		return NEURON_ISA_E_OPERAND;
	if (a->dims[r - 2] != o->dims[r - 2] || b->dims[r - 1] != o->dims[r - 1] ||
	    a->dims[r - 1] != b->dims[r - 2])
		return NEURON_ISA_E_OPERAND;
	if (in->flags & NEURON_MATMUL_BIAS) {
		const struct neuron_tensor_desc *bias;

		if (in->operand[3] >= h->desc_count)
			return NEURON_ISA_E_OPERAND;
		bias = &descs[in->operand[3]];
		if (!is_f32(bias) || bias->rank != 1 || bias->dims[0] != o->dims[r - 1])
			return NEURON_ISA_E_OPERAND;
	} else if (in->operand[3]) {
		return NEURON_ISA_E_OPERAND;
	}
	return NEURON_ISA_OK;
}

static u32 check_insn(const struct neuron_program_header *h,
		      const struct neuron_tensor_desc *descs,
		      const struct neuron_insn *in)
{
	const struct neuron_tensor_desc *o, *a, *b;
	u32 i, n;

	if (in->opcode >= NEURON_OP_COUNT || in->pad || in->reserved[0] ||
	    in->reserved[1] || in->reserved[2])
		return NEURON_ISA_E_OPCODE;
	n = operand_count[in->opcode];
	for (i = 0; i < 4; i++) {
		if (i < n && in->operand[i] >= h->desc_count)
			return NEURON_ISA_E_OPERAND;
		if (i >= n && in->operand[i] &&
		    !(in->opcode == NEURON_OP_MATMUL && i == 3))
			return NEURON_ISA_E_OPERAND;
	}
	if (in->opcode != NEURON_OP_MATMUL && in->flags)
		return NEURON_ISA_E_OPCODE;
	o = n > 0 ? &descs[in->operand[0]] : NULL;
	a = n > 1 ? &descs[in->operand[1]] : NULL;
	b = n > 2 ? &descs[in->operand[2]] : NULL;

	switch (in->opcode) {
	case NEURON_OP_NOP:
		return in->sub ? NEURON_ISA_E_OPCODE : NEURON_ISA_OK;
	case NEURON_OP_FILL:
		return in->sub ? NEURON_ISA_E_OPCODE : NEURON_ISA_OK;
	case NEURON_OP_COPY:
		if (in->sub)
			return NEURON_ISA_E_OPCODE;
		return o->dtype == a->dtype && same_dims(o, a) ? NEURON_ISA_OK : NEURON_ISA_E_OPERAND;
	case NEURON_OP_BINARY:
		if (in->sub >= NEURON_BIN_COUNT)
			return NEURON_ISA_E_OPCODE;
		return is_f32(o) && is_f32(a) && is_f32(b) && same_dims(o, a) && same_dims(o, b)
			? NEURON_ISA_OK : NEURON_ISA_E_OPERAND;
	case NEURON_OP_UNARY:
		if (in->sub >= NEURON_UN_COUNT)
			return NEURON_ISA_E_OPCODE;
		return is_f32(o) && is_f32(a) && same_dims(o, a) ? NEURON_ISA_OK : NEURON_ISA_E_OPERAND;
	case NEURON_OP_MATMUL:
		return in->sub ? NEURON_ISA_E_OPCODE : (u32)check_matmul(h, descs, in);
	case NEURON_OP_REDUCE:
		if (in->sub >= NEURON_RED_COUNT)
			return NEURON_ISA_E_OPCODE;
		if (!is_f32(o) || !is_f32(a) || !a->rank || o->rank != a->rank ||
		    o->dims[a->rank - 1] != 1)
			return NEURON_ISA_E_OPERAND;
		for (i = 0; i + 1 < a->rank; i++)
			if (o->dims[i] != a->dims[i])
				return NEURON_ISA_E_OPERAND;
		return NEURON_ISA_OK;
	case NEURON_OP_SOFTMAX:
		if (in->sub)
			return NEURON_ISA_E_OPCODE;
		return is_f32(o) && is_f32(a) && a->rank && same_dims(o, a)
			? NEURON_ISA_OK : NEURON_ISA_E_OPERAND;
	}
	return NEURON_ISA_E_OPCODE;
}

int neuron_engine_validate(const void *image, u64 size,
			   const struct neuron_engine_slot *slots, u32 slot_count,
			   struct neuron_engine_program *prog,
			   struct neuron_engine_status *status)
{
	const struct neuron_program_header *h = image;
	const struct neuron_tensor_desc *descs;
	const struct neuron_insn *insns;
	u64 need;
	u32 i, err;

	status->error = NEURON_ISA_OK;
	status->index = 0;
	if (!image || ((unsigned long)image & 7) || size < sizeof(*h))
		return fail(status, NEURON_ISA_E_HEADER, 0);
	if (h->magic != NEURON_ISA_MAGIC || h->version != NEURON_ISA_VERSION || h->flags ||
	    h->reserved[0] || h->reserved[1] || h->desc_count > NEURON_MAX_DESCS ||
	    !h->insn_count || h->insn_count > NEURON_MAX_INSNS)
		return fail(status, NEURON_ISA_E_HEADER, 0);
	/* Bounded counts: this cannot overflow. */
	need = sizeof(*h) + (u64)h->desc_count * sizeof(*descs) +
	       (u64)h->insn_count * sizeof(*insns);
	if (size != need)
		return fail(status, NEURON_ISA_E_HEADER, 0);

	descs = (const struct neuron_tensor_desc *)(h + 1);
	insns = (const struct neuron_insn *)(descs + h->desc_count);
	for (i = 0; i < h->desc_count; i++) {
		err = check_desc(&descs[i], slots, slot_count);
		if (err)
			return fail(status, err, i);
	}
	for (i = 0; i < h->insn_count; i++) {
		err = check_insn(h, descs, &insns[i]);
		if (err)
			return fail(status, err, i);
	}
	prog->descs = descs;
	prog->insns = insns;
	prog->desc_count = h->desc_count;
	prog->insn_count = h->insn_count;
	return 0;
}
