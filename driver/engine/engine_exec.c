// SPDX-License-Identifier: GPL-2.0
/*
 * Engine: the reference interpreter of ISA v1. Every reduction runs in a
 * fixed order (documented in docs/isa.md), and all math is the engine's
 * own, so the kernel and the simulator produce the same bits. Operands
 * were validated: every element visited lies inside its bound slot.
 */
#include "neuron_engine.h"

/* A strided walk over up to NEURON_MAX_RANK dimensions. */
struct walk {
	u32 rank;
	u32 dims[NEURON_MAX_RANK];
	u32 idx[NEURON_MAX_RANK];
};

static void walk_init(struct walk *w, const struct neuron_tensor_desc *d)
{
	u32 i;

	w->rank = d->rank;
	for (i = 0; i < NEURON_MAX_RANK; i++) {
		w->dims[i] = d->dims[i];
		w->idx[i] = 0;
	}
}

/* Element offset of the walk's current index in @d. */
static u64 at(const struct walk *w, const struct neuron_tensor_desc *d)
{
	u64 off = d->offset;
	u32 i;

	for (i = 0; i < w->rank; i++)
		off += (u64)w->idx[i] * d->strides[i];
	return off;
}

/* Advance to the next index in row-major order; 0 at the end. */
static int walk_next(struct walk *w)
{
	int i;

	for (i = (int)w->rank - 1; i >= 0; i--) {
		if (++w->idx[i] < w->dims[i])
			return 1;
		w->idx[i] = 0;
	}
	return 0;
}

static float *f32(const struct neuron_engine_slot *slots, const struct neuron_tensor_desc *d)
{
	return (float *)slots[d->slot].base;
}

/* f32 to integers: toward zero, saturated to the type's range, NaN to 0. */
static s32 to_s32(float v)
{
	if (v != v)
		return 0;
	if (v >= 2147483648.0f)
		return 0x7fffffff;
	if (v <= -2147483648.0f)
		return -0x7fffffff - 1;
	return (s32)v;
}

static s64 to_s64(float v)
{
	if (v != v)
		return 0;
	if (v >= 9223372036854775808.0f)
		return 0x7fffffffffffffffLL;
	if (v <= -9223372036854775808.0f)
		return -0x7fffffffffffffffLL - 1;
	return (s64)v;
}

static void op_fill(const struct neuron_tensor_desc *o, const struct neuron_insn *in,
		    const struct neuron_engine_slot *slots)
{
	u8 *base = slots[o->slot].base;
	float v = in->fparam[0];
	union { float f; u32 u; } bits = { .f = v };
	struct walk w;

	walk_init(&w, o);
	do {
		u64 off = at(&w, o);

		switch (o->dtype) {
		case NEURON_DT_F32:
			((float *)base)[off] = v;
			break;
		case NEURON_DT_BF16:	/* round to nearest even */
			((u16 *)base)[off] = (u16)((bits.u + 0x7fff + ((bits.u >> 16) & 1)) >> 16);
			break;
		case NEURON_DT_I32:
			((s32 *)base)[off] = to_s32(v);
			break;
		case NEURON_DT_I64:
			((s64 *)base)[off] = to_s64(v);
			break;
		}
	} while (walk_next(&w));
}

static void op_copy(const struct neuron_tensor_desc *o, const struct neuron_tensor_desc *a,
		    const struct neuron_engine_slot *slots)
{
	u8 *dst = slots[o->slot].base;
	const u8 *src = slots[a->slot].base;
	u32 size = o->dtype == NEURON_DT_BF16 ? 2 : o->dtype == NEURON_DT_I64 ? 8 : 4;
	struct walk w;
	u32 i;

	walk_init(&w, o);
	do {
		u8 *d = dst + at(&w, o) * size;
		const u8 *s = src + at(&w, a) * size;

		for (i = 0; i < size; i++)
			d[i] = s[i];
	} while (walk_next(&w));
}

static float binary(u32 sub, float x, float y)
{
	switch (sub) {
	case NEURON_BIN_ADD: return x + y;
	case NEURON_BIN_SUB: return x - y;
	case NEURON_BIN_MUL: return x * y;
	case NEURON_BIN_DIV: return x / y;
	case NEURON_BIN_MAX: return x > y || x != x ? x : y;
	case NEURON_BIN_MIN: return x < y || x != x ? x : y;
	case NEURON_BIN_POW: return neuron_powf(x, y);
	}
	return 0;
}

static float unary(u32 sub, float x, float alpha)
{
	switch (sub) {
	case NEURON_UN_RELU: return x > 0 ? x : 0;
	case NEURON_UN_LEAKY_RELU: return x > 0 ? x : x * alpha;
	case NEURON_UN_GELU_ERF: return 0.5f * x * (1.0f + neuron_erff(x * 0.70710678118654752f));
	case NEURON_UN_GELU_TANH: {
		float inner = 0.79788456080286536f * (x + 0.044715f * x * x * x);

		return 0.5f * x * (1.0f + neuron_tanhf(inner));
	}
	case NEURON_UN_SIGMOID: return 1.0f / (1.0f + neuron_expf(-x));
	case NEURON_UN_TANH: return neuron_tanhf(x);
	case NEURON_UN_EXP: return neuron_expf(x);
	case NEURON_UN_LOG: return neuron_logf(x);
	case NEURON_UN_SQRT: return neuron_sqrtf(x);
	case NEURON_UN_RSQRT: return 1.0f / neuron_sqrtf(x);
	case NEURON_UN_ERF: return neuron_erff(x);
	case NEURON_UN_NEG: return -x;
	case NEURON_UN_ABS: return x < 0 ? -x : (x == 0 ? 0.0f : x);
	case NEURON_UN_RECIPROCAL: return 1.0f / x;
	}
	return 0;
}

static void op_elementwise(const struct neuron_insn *in, const struct neuron_tensor_desc *o,
			   const struct neuron_tensor_desc *a, const struct neuron_tensor_desc *b,
			   const struct neuron_engine_slot *slots)
{
	float *po = f32(slots, o), *pa = f32(slots, a), *pb = b ? f32(slots, b) : NULL;
	struct walk w;

	walk_init(&w, o);
	do {
		float x = pa[at(&w, a)];

		pb ? (po[at(&w, o)] = binary(in->sub, x, pb[at(&w, b)]))
		   : (po[at(&w, o)] = unary(in->sub, x, in->fparam[0]));
	} while (walk_next(&w));
}

/*
 * out[b,m,n] = ((a[b,m,0]*b[b,0,n] + a[b,m,1]*b[b,1,n]) + ...) in k order,
 * each step a multiply then an add, each rounded to f32; then + bias[n].
 */
static void op_matmul(const struct neuron_insn *in, const struct neuron_tensor_desc *o,
		      const struct neuron_tensor_desc *a, const struct neuron_tensor_desc *b,
		      const struct neuron_tensor_desc *bias, const struct neuron_engine_slot *slots)
{
	u32 r = o->rank, batches = r == 3 ? o->dims[0] : 1;
	u32 M = o->dims[r - 2], N = o->dims[r - 1], K = a->dims[r - 1];
	const float *pa = f32(slots, a), *pb = f32(slots, b), *pbias = bias ? f32(slots, bias) : NULL;
	float *po = f32(slots, o);
	u32 bt, m, n, k;

	for (bt = 0; bt < batches; bt++) {
		u64 ob = o->offset + (r == 3 ? bt * o->strides[0] : 0);
		u64 ab = a->offset + (r == 3 ? bt * a->strides[0] : 0);
		u64 bb = b->offset + (r == 3 ? bt * b->strides[0] : 0);

		for (m = 0; m < M; m++) {
			for (n = 0; n < N; n++) {
				const float *ap = pa + ab + m * a->strides[r - 2];
				const float *bp = pb + bb + n * b->strides[r - 1];
				float acc = 0.0f;

				for (k = 0; k < K; k++) {
					float p = ap[k * a->strides[r - 1]] * bp[k * b->strides[r - 2]];

					acc = acc + p;
				}
				if (pbias)
					acc = acc + pbias[bias->offset + n * bias->strides[0]];
				po[ob + m * o->strides[r - 2] + n * o->strides[r - 1]] = acc;
			}
		}
	}
	(void)in;
}

/* Reductions and softmax run over the last axis, first to last. */
static void op_rows(const struct neuron_insn *in, const struct neuron_tensor_desc *o,
		    const struct neuron_tensor_desc *a, const struct neuron_engine_slot *slots)
{
	u32 last = a->rank - 1, len = a->dims[last], j;
	const float *pa = f32(slots, a);
	float *po = f32(slots, o);
	u64 as = a->strides[last], os = o->strides[last];
	struct walk w;

	walk_init(&w, a);
	w.dims[last] = 1;	/* walk the rows; the loop below walks each row */
	do {
		const float *row = pa + at(&w, a);
		float acc;

		if (in->opcode == NEURON_OP_REDUCE) {
			acc = row[0];
			for (j = 1; j < len; j++) {
				float x = row[j * as];

				switch (in->sub) {
				case NEURON_RED_SUM:
				case NEURON_RED_MEAN:
					acc = acc + x;
					break;
				case NEURON_RED_MAX:
					acc = x > acc || x != x ? x : acc;
					break;
				case NEURON_RED_MIN:
					acc = x < acc || x != x ? x : acc;
					break;
				}
			}
			if (in->sub == NEURON_RED_MEAN)
				acc = acc / (float)len;
			po[at(&w, o)] = acc;
		} else {
			float *out = po + at(&w, o);
			float max = row[0], sum = 0.0f;

			for (j = 1; j < len; j++)
				max = row[j * as] > max ? row[j * as] : max;
			for (j = 0; j < len; j++) {
				float e = neuron_expf(row[j * as] - max);

				out[j * os] = e;
				sum = sum + e;
			}
			for (j = 0; j < len; j++)
				out[j * os] = out[j * os] / sum;
		}
	} while (walk_next(&w));
}

void neuron_engine_step(const struct neuron_engine_program *prog, u32 index,
			const struct neuron_engine_slot *slots)
{
	const struct neuron_insn *in = &prog->insns[index];
	const struct neuron_tensor_desc *d = prog->descs;

	switch (in->opcode) {
	case NEURON_OP_NOP:
		break;
	case NEURON_OP_FILL:
		op_fill(&d[in->operand[0]], in, slots);
		break;
	case NEURON_OP_COPY:
		op_copy(&d[in->operand[0]], &d[in->operand[1]], slots);
		break;
	case NEURON_OP_BINARY:
		op_elementwise(in, &d[in->operand[0]], &d[in->operand[1]], &d[in->operand[2]], slots);
		break;
	case NEURON_OP_UNARY:
		op_elementwise(in, &d[in->operand[0]], &d[in->operand[1]], NULL, slots);
		break;
	case NEURON_OP_MATMUL:
		op_matmul(in, &d[in->operand[0]], &d[in->operand[1]], &d[in->operand[2]],
			  in->flags & NEURON_MATMUL_BIAS ? &d[in->operand[3]] : NULL, slots);
		break;
	case NEURON_OP_REDUCE:
	case NEURON_OP_SOFTMAX:
		op_rows(in, &d[in->operand[0]], &d[in->operand[1]], slots);
		break;
	}
}
