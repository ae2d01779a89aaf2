// SPDX-License-Identifier: GPL-2.0
/*
 * Engine: program validation. Everything a program can name is checked
 * here, once, before anything runs: the header and exact size, every
 * descriptor's fields and the last element it reaches, every
 * instruction's opcode, sub-operation, flags, operands, dtypes and
 * shapes. Integer arithmetic only, all of it overflow-checked.
 */
#include "engine_insn.h"

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

	if (d->pad || d->rank > NEURON_MAX_RANK || !neuron_dtype_size(d->dtype))
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
	if (add_ovf(last, 1, &last) || mul_ovf(last, neuron_dtype_size(d->dtype), &bytes) ||
	    bytes > slots[d->slot].size)
		return NEURON_ISA_E_RANGE;
	/* Every element must be aligned for its type within the buffer. */
	if (((unsigned long)slots[d->slot].base) % neuron_dtype_size(d->dtype))
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

static int is_f32(const struct neuron_tensor_desc *d)
{
	return d->dtype == NEURON_DT_F32;
}

/* Float parameter bits: used only as the opcode says, without FP math. */
static u32 f32_bits(float f)
{
	union { float f; u32 u; } b = { .f = f };

	return b.u;
}

/*
 * Output extent of a window over @in: (in + pads - span) / stride + 1,
 * where span = dilation * (kernel - 1) + 1. 0 when the window does not fit.
 */
static u64 window_out(u64 in, u64 pad_a, u64 pad_b, u64 kernel, u64 dilation, u64 stride)
{
	u64 span = dilation * (kernel - 1) + 1, total = in + pad_a + pad_b;

	if (!kernel || !dilation || !stride || total < span)
		return 0;
	return (total - span) / stride + 1;
}

static u32 check_window(const struct neuron_insn *in, const struct neuron_tensor_desc *o,
			const struct neuron_tensor_desc *a, u64 kh, u64 kw, u64 dh, u64 dw)
{
	const u32 *p = in->iparam;
	u32 i;

	for (i = NEURON_WIN_PAD_TOP; i <= NEURON_WIN_PAD_RIGHT; i++)
		if (p[i] > 65535)
			return NEURON_ISA_E_PARAM;
	if (!p[NEURON_WIN_STRIDE_H] || !p[NEURON_WIN_STRIDE_W] || kh > 65535 || kw > 65535 ||
	    dh > 65535 || dw > 65535)
		return NEURON_ISA_E_PARAM;
	if (window_out(a->dims[2], p[NEURON_WIN_PAD_TOP], p[NEURON_WIN_PAD_BOTTOM], kh, dh,
		       p[NEURON_WIN_STRIDE_H]) != o->dims[2] ||
	    window_out(a->dims[3], p[NEURON_WIN_PAD_LEFT], p[NEURON_WIN_PAD_RIGHT], kw, dw,
		       p[NEURON_WIN_STRIDE_W]) != o->dims[3])
		return o->dims[2] && kh && kw && dh && dw ? NEURON_ISA_E_OPERAND : NEURON_ISA_E_PARAM;
	return NEURON_ISA_OK;
}

/* Packed weights: [ceil(Co/6), Ci, Kh, Kw, 6], contiguous, one group. */
static int packed_weights_ok(const struct neuron_tensor_desc *w, const struct neuron_tensor_desc *x,
			     const struct neuron_tensor_desc *o)
{
	u64 stride = 1;
	int i;

	if (w->rank != 5 || w->dims[4] != NEURON_CONV_PACK_ROWS || w->dims[1] != x->dims[1] ||
	    w->dims[0] != (o->dims[1] + NEURON_CONV_PACK_ROWS - 1) / NEURON_CONV_PACK_ROWS)
		return 0;
	for (i = 4; i >= 0; i--) {
		if (w->strides[i] != stride)
			return 0;
		stride *= w->dims[i];
	}
	return 1;
}

/*
 * Winograd weights: [16, ceil(Co/6), Ci, 6] (F(2x2, 3x3)) or [36, ...]
 * (F(4x4, 3x3)), contiguous; 3x3 of stride and dilation 1.
 */
static int winograd_ok(const struct neuron_insn *in, const struct neuron_tensor_desc *w,
		       const struct neuron_tensor_desc *x, const struct neuron_tensor_desc *o)
{
	const u32 *p = in->iparam;

	return w->rank == 4 && (w->dims[0] == 16 || w->dims[0] == 36) &&
	       w->dims[3] == NEURON_CONV_PACK_ROWS && w->dims[2] == x->dims[1] &&
	       w->dims[1] == (o->dims[1] + NEURON_CONV_PACK_ROWS - 1) / NEURON_CONV_PACK_ROWS &&
	       w->strides[3] == 1 && w->strides[2] == NEURON_CONV_PACK_ROWS &&
	       w->strides[1] == (u64)w->dims[2] * NEURON_CONV_PACK_ROWS &&
	       w->strides[0] == (u64)w->dims[1] * w->strides[1] &&
	       p[NEURON_WIN_STRIDE_H] == 1 && p[NEURON_WIN_STRIDE_W] == 1 &&
	       p[NEURON_WIN_DILATION_H] == 1 && p[NEURON_WIN_DILATION_W] == 1;
}

/* A CONV2D input or weight: f32, or in bf16 pairs also bf16. */
static int conv_input_ok(const struct neuron_insn *in, const struct neuron_tensor_desc *d)
{
	return is_f32(d) || ((in->flags & NEURON_CONV_BF16_PAIRS) && d->dtype == NEURON_DT_BF16);
}

/* An upper bound (fparam[0]) only with @flag set in @in, and never NaN. */
static int bound_ok(const struct neuron_insn *in, u16 flag)
{
	u32 bound = f32_bits(in->fparam[0]);

	return (in->flags & flag) ? (bound & 0x7fffffffu) <= 0x7f800000u : !bound;
}

NEURON_CHECK(conv2d)
{
	const struct neuron_tensor_desc *o = &descs[in->operand[0]];
	const struct neuron_tensor_desc *x = &descs[in->operand[1]];
	const struct neuron_tensor_desc *w = &descs[in->operand[2]];
	int packed = !!(in->flags & NEURON_CONV_PACKED);
	int winograd = !!(in->flags & NEURON_CONV_WINOGRAD);
	u32 groups;

	if (!bound_ok(in, NEURON_CONV_CLAMP))
		return NEURON_ISA_E_PARAM;
	if (((in->flags & NEURON_CONV_ACCUMULATE) && !packed && !winograd &&
	     !(in->flags & NEURON_CONV_BF16_PAIRS)) || (packed && winograd))
		return NEURON_ISA_E_OPCODE;
	/* bf16 pairs: weights as given, each operand f32 or bf16 */
	if ((in->flags & NEURON_CONV_BF16_PAIRS) && (packed || winograd))
		return NEURON_ISA_E_OPCODE;
	if (winograd) {
		if (!is_f32(o) || !is_f32(x) || !is_f32(w) || o->rank != 4 || x->rank != 4 ||
		    o->dims[0] != x->dims[0] || !winograd_ok(in, w, x, o))
			return NEURON_ISA_E_OPERAND;
		if (in->flags & NEURON_CONV_BIAS) {
			const struct neuron_tensor_desc *b = &descs[in->operand[3]];

			if (!is_f32(b) || b->rank != 1 || b->dims[0] != o->dims[1])
				return NEURON_ISA_E_OPERAND;
		}
		return check_window(in, o, x, 3, 3, 1, 1);
	}
	if (!is_f32(o) || !conv_input_ok(in, x) || !conv_input_ok(in, w) ||
	    o->rank != 4 || x->rank != 4 || w->rank != (packed ? 5 : 4))
		return NEURON_ISA_E_OPERAND;
	if (packed) {
		if (!packed_weights_ok(w, x, o) || o->dims[0] != x->dims[0])
			return NEURON_ISA_E_OPERAND;
	} else {
		if (x->dims[1] % w->dims[1])
			return NEURON_ISA_E_OPERAND;
		groups = x->dims[1] / w->dims[1];
		if (o->dims[0] != x->dims[0] || o->dims[1] != w->dims[0] || w->dims[0] % groups)
			return NEURON_ISA_E_OPERAND;
	}
	if (in->flags & NEURON_CONV_BIAS) {
		const struct neuron_tensor_desc *b = &descs[in->operand[3]];

		if (!is_f32(b) || b->rank != 1 || b->dims[0] != o->dims[1])
			return NEURON_ISA_E_OPERAND;
	}
	if (!in->iparam[NEURON_WIN_DILATION_H] || !in->iparam[NEURON_WIN_DILATION_W])
		return NEURON_ISA_E_PARAM;
	return check_window(in, o, x, w->dims[2], w->dims[3],
			    in->iparam[NEURON_WIN_DILATION_H], in->iparam[NEURON_WIN_DILATION_W]);
}

NEURON_CHECK(pool2d)
{
	const struct neuron_tensor_desc *o = &descs[in->operand[0]];
	const struct neuron_tensor_desc *x = &descs[in->operand[1]];
	const u32 *p = in->iparam;

	if (!is_f32(o) || !is_f32(x) || o->rank != 4 || x->rank != 4 ||
	    o->dims[0] != x->dims[0] || o->dims[1] != x->dims[1])
		return NEURON_ISA_E_OPERAND;
	/* Every window must hold at least one element of the input. */
	if (!p[NEURON_WIN_KERNEL_H] || !p[NEURON_WIN_KERNEL_W] ||
	    p[NEURON_WIN_PAD_TOP] >= p[NEURON_WIN_KERNEL_H] ||
	    p[NEURON_WIN_PAD_BOTTOM] >= p[NEURON_WIN_KERNEL_H] ||
	    p[NEURON_WIN_PAD_LEFT] >= p[NEURON_WIN_KERNEL_W] ||
	    p[NEURON_WIN_PAD_RIGHT] >= p[NEURON_WIN_KERNEL_W])
		return NEURON_ISA_E_PARAM;
	return check_window(in, o, x, p[NEURON_WIN_KERNEL_H], p[NEURON_WIN_KERNEL_W], 1, 1);
}

/*
 * MATMUL's operands apart from the bias: out[B?,M,N] = a[B?,M,K] x
 * b[B?,K,N]; with B_PANELS (ISA 1.11) b is f32 [ceil(N / 32), K, 32],
 * one for every batch, or with pairs too (ISA 1.14) bf16
 * [ceil(N / 32), ceil(K / 2), 64].
 */
static int matmul_operands_ok(const struct neuron_insn *in, const struct neuron_tensor_desc *o,
			      const struct neuron_tensor_desc *a,
			      const struct neuron_tensor_desc *b)
{
	u32 r = o->rank;
	/* f32 from f32 or bf16; or (ISA 1.5) i32 from i32, wrapping */
	int ints = o->dtype == NEURON_DT_I32 && a->dtype == NEURON_DT_I32;
	/* ISA 1.9: in bf16 pairs, each of a and b f32 or bf16 */
	int pairs = !!(in->flags & NEURON_MATMUL_BF16_PAIRS);

	if ((r != 2 && r != 3) || a->rank != r || (r == 3 && a->dims[0] != o->dims[0]) ||
	    a->dims[r - 2] != o->dims[r - 2])
		return 0;
	/* ISA 1.14: with pairs, bf16 [ceil(N / 32), ceil(K / 2), 64] */
	if (in->flags & NEURON_MATMUL_B_PANELS)
		return is_f32(o) && b->rank == 3 &&
		       b->dims[0] == (o->dims[r - 1] - 1) / NEURON_MATMUL_PANEL + 1 &&
		       (pairs ? (a->dtype == NEURON_DT_F32 || a->dtype == NEURON_DT_BF16) &&
				b->dtype == NEURON_DT_BF16 &&
				b->dims[1] == a->dims[r - 1] / 2 + a->dims[r - 1] % 2 &&
				b->dims[2] == 2 * NEURON_MATMUL_PANEL :
				is_f32(a) && is_f32(b) && b->dims[1] == a->dims[r - 1] &&
				b->dims[2] == NEURON_MATMUL_PANEL);
	if (pairs) {
		if (!is_f32(o) || (a->dtype != NEURON_DT_F32 && a->dtype != NEURON_DT_BF16) ||
		    (b->dtype != NEURON_DT_F32 && b->dtype != NEURON_DT_BF16))
			return 0;
	} else if ((!is_f32(o) && !ints) || a->dtype != b->dtype ||
		   (a->dtype != NEURON_DT_F32 && a->dtype != NEURON_DT_BF16 && !ints)) {
		return 0;
	}
	return b->rank == r && (r == 2 || b->dims[0] == o->dims[0]) &&
	       b->dims[r - 1] == o->dims[r - 1] && a->dims[r - 1] == b->dims[r - 2];
}

/* MATMUL: its operands, and a bias over N (+ bias[N]). */
NEURON_CHECK(matmul)
{
	const struct neuron_tensor_desc *o = &descs[in->operand[0]];

	if (!bound_ok(in, NEURON_MATMUL_CLAMP))
		return NEURON_ISA_E_PARAM;
	if (!matmul_operands_ok(in, o, &descs[in->operand[1]], &descs[in->operand[2]]))
		return NEURON_ISA_E_OPERAND;
	/* relu and the bound over float32 outputs only */
	if ((in->flags & (NEURON_MATMUL_RELU | NEURON_MATMUL_CLAMP)) && !is_f32(o))
		return NEURON_ISA_E_OPCODE;
	if (in->flags & NEURON_MATMUL_BIAS) {
		const struct neuron_tensor_desc *bias = &descs[in->operand[3]];

		if (bias->dtype != o->dtype || bias->rank != 1 || bias->dims[0] != o->dims[o->rank - 1])
			return NEURON_ISA_E_OPERAND;
	}
	return NEURON_ISA_OK;
}

/*
 * SEM_SIGNAL and SEM_WAIT: iparam[0] a semaphore, iparam[1] a count.
 * BARRIER: iparam[0] a barrier, iparam[1] a mask of cores (which cores
 * may take part is the queue's to check).
 */
NEURON_CHECK(sync)
{
	u32 limit, max_arg;

	(void)descs;
	limit = in->opcode == NEURON_OP_BARRIER ? NEURON_MAX_BARRIERS : NEURON_MAX_SEMAPHORES;
	max_arg = in->opcode == NEURON_OP_BARRIER ? NEURON_BARRIER_ALL_CORES : NEURON_MAX_SEM_COUNT;
	return in->iparam[0] < limit && in->iparam[1] && in->iparam[1] <= max_arg
		? NEURON_ISA_OK : NEURON_ISA_E_PARAM;
}

NEURON_CHECK(none)
{
	(void)in;
	(void)descs;
	return NEURON_ISA_OK;
}

NEURON_CHECK(copy)
{
	const struct neuron_tensor_desc *o = &descs[in->operand[0]], *a = &descs[in->operand[1]];

	return o->dtype == a->dtype && same_dims(o, a) ? NEURON_ISA_OK : NEURON_ISA_E_OPERAND;
}

/* Is @dtype computed by anything (ISA 1.6's storage types are not)? */
static int computes(u32 dtype)
{
	return dtype < NEURON_DT_F8E4M3FN;
}

static int is_unsigned(u32 dtype)
{
	return dtype == NEURON_DT_U8 || dtype == NEURON_DT_U16 || dtype == NEURON_DT_U32 ||
	       dtype == NEURON_DT_U64;
}

static int is_integer(u32 dtype)
{
	return is_unsigned(dtype) || dtype == NEURON_DT_I8 || dtype == NEURON_DT_I16 ||
	       dtype == NEURON_DT_I32 || dtype == NEURON_DT_I64;
}

/* May BINARY or UNARY sub-operation @sub run on @dtype? */
static int elementwise_takes(const struct neuron_insn *in, u32 dtype)
{
	u32 sub = in->sub;

	if (dtype == NEURON_DT_F32)
		return in->opcode == NEURON_OP_BINARY ? sub <= NEURON_BIN_FMOD : sub != NEURON_UN_NOT;
	if (dtype == NEURON_DT_F64)	/* ISA 1.5 */
		return in->opcode == NEURON_OP_BINARY
			? sub <= NEURON_BIN_FMOD && sub != NEURON_BIN_POW
			: sub == NEURON_UN_RELU || sub == NEURON_UN_EXP || sub == NEURON_UN_LOG ||
			  sub == NEURON_UN_SQRT || sub == NEURON_UN_RSQRT || sub == NEURON_UN_NEG ||
			  sub == NEURON_UN_ABS || sub == NEURON_UN_RECIPROCAL ||
			  sub == NEURON_UN_FLOOR || sub == NEURON_UN_CEIL || sub == NEURON_UN_ROUND;
	if (dtype == NEURON_DT_BOOL)
		return in->opcode == NEURON_OP_BINARY
			? sub == NEURON_BIN_AND || sub == NEURON_BIN_OR || sub == NEURON_BIN_XOR
			: sub == NEURON_UN_NOT;
	if (!is_integer(dtype))
		return 0;
	if (in->opcode == NEURON_OP_UNARY)
		return sub == NEURON_UN_NOT ||
		       (!is_unsigned(dtype) && (sub == NEURON_UN_NEG || sub == NEURON_UN_ABS));
	return sub != NEURON_BIN_POW;
}

/*
 * BINARY and UNARY: operands of one shape (broadcasting is by strides)
 * and one dtype: f32 (ISA 1.4: MOD and FMOD too; not AND and after, not
 * NOT), integers (ISA 1.4: no POW; NEG and ABS signed), bool (AND, OR,
 * XOR, NOT), or f64 (ISA 1.5: ADD to MIN, MOD, FMOD; the UNARY ops above).
 */
NEURON_CHECK(elementwise)
{
	const struct neuron_tensor_desc *o = &descs[in->operand[0]], *a = &descs[in->operand[1]];
	const struct neuron_tensor_desc *b = &descs[in->operand[2]];

	if (a->dtype != o->dtype || !same_dims(o, a) || !elementwise_takes(in, o->dtype))
		return NEURON_ISA_E_OPERAND;
	if (in->opcode == NEURON_OP_BINARY && (b->dtype != o->dtype || !same_dims(o, b)))
		return NEURON_ISA_E_OPERAND;
	return NEURON_ISA_OK;
}

/* COMPARE (ISA 1.4): a and b of one dtype and out's shape; out bool. */
NEURON_CHECK(compare)
{
	const struct neuron_tensor_desc *o = &descs[in->operand[0]], *a = &descs[in->operand[1]];
	const struct neuron_tensor_desc *b = &descs[in->operand[2]];

	return o->dtype == NEURON_DT_BOOL && a->dtype == b->dtype && computes(a->dtype) &&
	       same_dims(o, a) && same_dims(o, b) ? NEURON_ISA_OK : NEURON_ISA_E_OPERAND;
}

/* SELECT (ISA 1.4): a bool condition; out, a and b of one dtype; one shape. */
NEURON_CHECK(select)
{
	const struct neuron_tensor_desc *o = &descs[in->operand[0]], *c = &descs[in->operand[1]];
	const struct neuron_tensor_desc *a = &descs[in->operand[2]], *b = &descs[in->operand[3]];

	return c->dtype == NEURON_DT_BOOL && a->dtype == o->dtype && b->dtype == o->dtype &&
	       same_dims(o, c) && same_dims(o, a) && same_dims(o, b) ? NEURON_ISA_OK
								     : NEURON_ISA_E_OPERAND;
}

/*
 * SCATTER (ISA 1.5): out, indices and updates of rank 1; indices i32 or
 * i64, one per update; updates of out's dtype; ADD, MUL, MAX and MIN not
 * of bool.
 */
NEURON_CHECK(scatter)
{
	const struct neuron_tensor_desc *o = &descs[in->operand[0]], *ix = &descs[in->operand[1]];
	const struct neuron_tensor_desc *u = &descs[in->operand[2]];

	if (o->rank != 1 || ix->rank != 1 || u->rank != 1 || u->dims[0] != ix->dims[0] ||
	    u->dtype != o->dtype || (ix->dtype != NEURON_DT_I32 && ix->dtype != NEURON_DT_I64))
		return NEURON_ISA_E_OPERAND;
	if (in->sub != NEURON_SCATTER_SET && (o->dtype == NEURON_DT_BOOL || !computes(o->dtype)))
		return NEURON_ISA_E_OPERAND;
	return NEURON_ISA_OK;
}

/*
 * TOPK (ISA 1.7): a of any dtype that computes but bool, rank >= 1; out
 * I64 of a's shape but its last axis, k, with 1 <= k <= a's last axis.
 */
NEURON_CHECK(topk)
{
	const struct neuron_tensor_desc *o = &descs[in->operand[0]], *a = &descs[in->operand[1]];
	u32 i;

	if (o->dtype != NEURON_DT_I64 || a->dtype == NEURON_DT_BOOL || !computes(a->dtype))
		return NEURON_ISA_E_OPERAND;
	if (!a->rank || o->rank != a->rank || o->dims[a->rank - 1] > a->dims[a->rank - 1])
		return NEURON_ISA_E_OPERAND;
	for (i = 0; i + 1 < a->rank; i++)
		if (o->dims[i] != a->dims[i])
			return NEURON_ISA_E_OPERAND;
	return NEURON_ISA_OK;
}

/*
 * REDUCE: f32 into f32, or (ISA 1.5) f64 into f64; ARGMAX and ARGMIN (ISA
 * 1.4) of any dtype but bool into I64, the only ones
 * NEURON_REDUCE_LAST_INDEX applies to.
 */
NEURON_CHECK(reduce)
{
	const struct neuron_tensor_desc *o = &descs[in->operand[0]], *a = &descs[in->operand[1]];
	int index = in->sub == NEURON_RED_ARGMAX || in->sub == NEURON_RED_ARGMIN;
	int floats = (is_f32(o) && is_f32(a)) ||
		     (o->dtype == NEURON_DT_F64 && a->dtype == NEURON_DT_F64);
	u32 i;

	if (index ? o->dtype != NEURON_DT_I64 || a->dtype == NEURON_DT_BOOL || !computes(a->dtype)
		  : !floats || (in->flags & NEURON_REDUCE_LAST_INDEX))
		return NEURON_ISA_E_OPERAND;
	if (!a->rank || o->rank != a->rank || o->dims[a->rank - 1] != 1)
		return NEURON_ISA_E_OPERAND;
	for (i = 0; i + 1 < a->rank; i++)
		if (o->dims[i] != a->dims[i])
			return NEURON_ISA_E_OPERAND;
	return NEURON_ISA_OK;
}

NEURON_CHECK(softmax)
{
	const struct neuron_tensor_desc *o = &descs[in->operand[0]], *a = &descs[in->operand[1]];

	return is_f32(o) && is_f32(a) && a->rank && same_dims(o, a) ? NEURON_ISA_OK
								    : NEURON_ISA_E_OPERAND;
}

/*
 * ISA 1.6: NO_SATURATE only into a float8 type, E8M0_UP or E8M0_DOWN
 * (not both) only into F8E8M0.
 */
NEURON_CHECK(cast)
{
	const struct neuron_tensor_desc *o = &descs[in->operand[0]];
	u32 round = in->flags & (NEURON_CAST_E8M0_UP | NEURON_CAST_E8M0_DOWN);

	if ((in->flags & NEURON_CAST_NO_SATURATE) &&
	    (o->dtype < NEURON_DT_F8E4M3FN || o->dtype > NEURON_DT_F8E8M0))
		return NEURON_ISA_E_OPERAND;
	if (round && (o->dtype != NEURON_DT_F8E8M0 ||
		      round == (NEURON_CAST_E8M0_UP | NEURON_CAST_E8M0_DOWN)))
		return NEURON_ISA_E_OPERAND;
	return same_dims(o, &descs[in->operand[1]]) ? NEURON_ISA_OK : NEURON_ISA_E_OPERAND;
}

/* out[i..., d] = a[b[i...], d]: a is [V, D], b holds indices. */
NEURON_CHECK(gather)
{
	const struct neuron_tensor_desc *o = &descs[in->operand[0]], *a = &descs[in->operand[1]];
	const struct neuron_tensor_desc *b = &descs[in->operand[2]];
	u32 i;

	if (a->rank != 2 || (b->dtype != NEURON_DT_I32 && b->dtype != NEURON_DT_I64) ||
	    b->rank >= NEURON_MAX_RANK || o->rank != b->rank + 1 || o->dtype != a->dtype ||
	    o->dims[b->rank] != a->dims[1])
		return NEURON_ISA_E_OPERAND;
	for (i = 0; i < b->rank; i++)
		if (o->dims[i] != b->dims[i])
			return NEURON_ISA_E_OPERAND;
	return NEURON_ISA_OK;
}

NEURON_CHECK(layernorm)
{
	const struct neuron_tensor_desc *o = &descs[in->operand[0]], *a = &descs[in->operand[1]];
	const struct neuron_tensor_desc *b = &descs[in->operand[2]], *c = &descs[in->operand[3]];
	u32 eps = f32_bits(in->fparam[0]);

	/* epsilon: finite and not negative */
	if ((eps >> 31) || ((eps >> 23) & 0xff) == 0xff)
		return NEURON_ISA_E_PARAM;
	if (!is_f32(o) || !is_f32(a) || !a->rank || !same_dims(o, a) || !is_f32(b) ||
	    !is_f32(c) || b->rank != 1 || c->rank != 1 ||
	    b->dims[0] != a->dims[a->rank - 1] || c->dims[0] != a->dims[a->rank - 1])
		return NEURON_ISA_E_OPERAND;
	return NEURON_ISA_OK;
}

/*
 * What every instruction shares, from its row of the table: the opcode,
 * flags it knows, operands it uses (the rest 0), parameters it reads (the
 * rest 0) and its sub-operation; then its own check.
 */
static u32 check_insn(const struct neuron_program_header *h,
		      const struct neuron_tensor_desc *descs,
		      const struct neuron_insn *in)
{
	const struct neuron_insn_info *info = neuron_engine_insn_info(in->opcode);
	u32 i, n;

	if (!info || in->pad || (in->flags & ~info->flags))
		return NEURON_ISA_E_OPCODE;
	n = neuron_engine_insn_operands(in);
	for (i = 0; i < 4; i++) {
		if (i < n && in->operand[i] >= h->desc_count)
			return NEURON_ISA_E_OPERAND;
		if (i >= n && in->operand[i])
			return NEURON_ISA_E_OPERAND;
	}
	for (i = info->fparams; i < 2; i++)
		if (f32_bits(in->fparam[i]))
			return NEURON_ISA_E_PARAM;
	for (i = info->iparams; i < 8; i++)
		if (in->iparam[i])
			return NEURON_ISA_E_PARAM;
	if (in->sub >= (info->subs ? info->subs : 1))
		return NEURON_ISA_E_OPCODE;
	return info->check(in, descs);
}

static u64 sat_mul(u64 a, u64 b)
{
	u64 r;

	return mul_ovf(a, b, &r) ? ~0ULL : r;
}

/*
 * The work of an instruction's largest part against NEURON_MAX_SLICE_WORK,
 * in element operations of the vector kernels' multiply-add size (the
 * row's slice_weight says what one unit of its cost stands for).
 */
static u64 slice_work(const struct neuron_engine_program *prog, u32 index)
{
	const struct neuron_insn_info *info = neuron_engine_insn_info(prog->insns[index].opcode);

	return sat_mul(neuron_engine_part_cost(prog, index), info->slice_weight);
}

/*
 * True when instruction @index is small enough that its parts need no
 * pricing: a part never costs more than the whole, and an instruction
 * has at most as many parts as output elements, so with both under the
 * limit no part is too large and the split cannot have too many parts.
 * Most instructions of a program pass here, without planning a split.
 */
static int fits_whole(const struct neuron_engine_program *prog, u32 index)
{
	const struct neuron_insn *in = &prog->insns[index];
	const struct neuron_insn_info *info = neuron_engine_insn_info(in->opcode);

	if (sat_mul(neuron_engine_insn_cost(prog, index), info->slice_weight) > NEURON_MAX_SLICE_WORK)
		return 0;
	return info->split == NEURON_SPLIT_NONE ||
	       neuron_engine_desc_elements(&prog->descs[in->operand[0]]) <= NEURON_MAX_SLICE_WORK;
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
	prog->part_work = 0;
	/* No slice may be too large to stop in bounded time. */
	for (i = 0; i < h->insn_count; i++)
		if (!fits_whole(prog, i) && slice_work(prog, i) > NEURON_MAX_SLICE_WORK)
			return fail(status, NEURON_ISA_E_OPERAND, i);
	return 0;
}

/* Bits needed to write @x: 0 for 0. */
static u32 bit_length(u32 x)
{
	u32 n = 0;

	while (x) {
		x >>= 1;
		n++;
	}
	return n;
}

u64 neuron_engine_insn_cost(const struct neuron_engine_program *prog, u32 index)
{
	const struct neuron_insn *in = &prog->insns[index];
	const struct neuron_insn_info *info = neuron_engine_insn_info(in->opcode);
	const struct neuron_tensor_desc *d = prog->descs;
	const struct neuron_tensor_desc *a, *b;
	u64 out;

	if (info->cost == NEURON_COST_UNIT)
		return 1;
	out = neuron_engine_desc_elements(&d[in->operand[0]]);
	switch (info->cost) {
	case NEURON_COST_MATMUL:
		a = &d[in->operand[1]];
		return sat_mul(out, a->dims[a->rank - 1]);
	case NEURON_COST_CONV:
		b = &d[in->operand[2]];
		/* Winograd: 16 products per 4 outputs or 36 per 16, and transforms */
		if ((in->flags & NEURON_CONV_WINOGRAD) && b->dims[0] == 36)
			return sat_mul(out, (u64)b->dims[2] * 9 / 4 + 16);
		if (in->flags & NEURON_CONV_WINOGRAD)
			return sat_mul(out, (u64)b->dims[2] * 4 + 16);
		return sat_mul(out, (u64)b->dims[1] * b->dims[2] * b->dims[3]);
	case NEURON_COST_POOL:
		return sat_mul(out, (u64)in->iparam[NEURON_WIN_KERNEL_H] * in->iparam[NEURON_WIN_KERNEL_W]);
	case NEURON_COST_ROWS:
		return sat_mul(neuron_engine_desc_elements(&d[in->operand[1]]), 3);
	case NEURON_COST_TOPK:
		/* a compare per element, and up to log2(k) more into the heap */
		a = &d[in->operand[0]];
		return sat_mul(neuron_engine_desc_elements(&d[in->operand[1]]),
			       2 + (u64)bit_length(a->dims[a->rank - 1]));
	default:
		return out;
	}
}

u64 neuron_engine_insn_flops(const struct neuron_engine_program *prog, u32 index)
{
	const struct neuron_insn *in = &prog->insns[index];
	const struct neuron_tensor_desc *d = prog->descs, *b;
	u64 out;

	switch (in->opcode) {
	case NEURON_OP_MATMUL:
		return sat_mul(neuron_engine_insn_cost(prog, index), 2);
	case NEURON_OP_CONV2D:
		out = neuron_engine_desc_elements(&d[in->operand[0]]);
		b = &d[in->operand[2]];
		/* Winograd's weights are [tile, Co, Ci]: its kernels are 3 x 3. */
		if (in->flags & NEURON_CONV_WINOGRAD)
			return sat_mul(sat_mul(out, (u64)b->dims[2] * 9), 2);
		return sat_mul(sat_mul(out, (u64)b->dims[1] * b->dims[2] * b->dims[3]), 2);
	default:
		return neuron_engine_insn_cost(prog, index);
	}
}

/* Elements a descriptor reaches, once each: a broadcast axis counts once. */
static u64 distinct_elements(const struct neuron_tensor_desc *d)
{
	u64 n = 1;
	u32 i;

	for (i = 0; i < d->rank; i++)
		if (d->strides[i])
			n *= d->dims[i];	/* at most 2^40 once validated */
	return n;
}

void neuron_engine_insn_bytes(const struct neuron_engine_program *prog, u32 index,
			      u64 *read, u64 *written)
{
	const struct neuron_insn *in = &prog->insns[index];
	const struct neuron_tensor_desc *d;
	u32 i, n = neuron_engine_insn_operands(in);

	*read = 0;
	*written = 0;
	for (i = 0; i < n; i++) {
		d = &prog->descs[in->operand[i]];
		if (i)
			*read += distinct_elements(d) * neuron_dtype_size(d->dtype);
		else
			*written = distinct_elements(d) * neuron_dtype_size(d->dtype);
	}
}

void neuron_engine_slot_extents(const struct neuron_engine_program *prog,
				u64 extent[NEURON_MAX_SLOTS])
{
	u32 i, j;

	for (i = 0; i < NEURON_MAX_SLOTS; i++)
		extent[i] = 0;
	for (i = 0; i < prog->desc_count; i++) {
		const struct neuron_tensor_desc *d = &prog->descs[i];
		u64 last = d->offset;

		/* Validated: none of this overflows. */
		for (j = 0; j < d->rank; j++)
			last += (u64)(d->dims[j] - 1) * d->strides[j];
		last = (last + 1) * neuron_dtype_size(d->dtype);
		if (last > extent[d->slot])
			extent[d->slot] = last;
	}
}
