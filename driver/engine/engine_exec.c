// SPDX-License-Identifier: GPL-2.0
/*
 * Engine: the reference interpreter of ISA v1. Every reduction runs in a
 * fixed order (documented in docs/isa.md), and all math is the engine's
 * own, so the kernel and the simulator produce the same bits. Operands
 * were validated: every element visited lies inside its bound slot.
 */
#include "engine_insn.h"

static float *f32(const struct neuron_engine_slot *slots, const struct neuron_tensor_desc *d)
{
	return (float *)slots[d->slot].base;
}

static float bf16_to_f32(u16 h)
{
	union { u32 u; float f; } b = { .u = neuron_f32_bits_from_bf16(h) };

	return b.f;
}

static void op_fill(const struct neuron_tensor_desc *o, const struct neuron_insn *in,
		    const struct neuron_engine_slot *slots)
{
	float *base = f32(slots, o);
	float v = in->fparam[0];
	u64 n, step, m, ostep, r, j;
	struct walk w;

	if (o->dtype != NEURON_DT_F32) {
		neuron_typed_fill(o, v, slots);
		return;
	}
	/* Rows of the trailing axes merged, two axes of them at a time. */
	walk_rows(&w, &o, 1, &n, &step);
	walk_outer(&w, &o, 1, &m, &ostep);
	do {
		u64 row = at(&w, o);

		for (r = 0; r < m; r++, row += ostep) {
			float *p = base + row;

			if (step == 1)
				for (j = 0; j < n; j++)
					p[j] = v;
			else
				for (j = 0; j < n; j++)
					p[j * step] = v;
		}
	} while (walk_next(&w));
}

/* @n elements of @size bytes, @ds and @ss elements apart, in order. */
static void copy_row(u8 *d, u64 ds, const u8 *s, u64 ss, u64 n, u32 size)
{
	const u8 *dend = d + ((n - 1) * ds + 1) * size, *send = s + ((n - 1) * ss + 1) * size;
	u64 i;
	u32 b;

	/* Rows apart: whole elements at a time; else byte by byte, as defined. */
	if (dend <= s || send <= d) {
		if (ds == 1 && ss == 1) {
			__builtin_memcpy(d, s, n * size);
			return;
		}
		switch (size) {
		case 1:
			for (i = 0; i < n; i++)
				d[i * ds] = s[i * ss];
			return;
		case 2:
			for (i = 0; i < n; i++)
				__builtin_memcpy(d + i * ds * 2, s + i * ss * 2, 2);
			return;
		case 4:
			for (i = 0; i < n; i++)
				__builtin_memcpy(d + i * ds * 4, s + i * ss * 4, 4);
			return;
		case 8:
			for (i = 0; i < n; i++)
				__builtin_memcpy(d + i * ds * 8, s + i * ss * 8, 8);
			return;
		}
	}
	for (i = 0; i < n; i++)
		for (b = 0; b < size; b++)
			d[i * ds * size + b] = s[i * ss * size + b];
}

/* Whether no byte of @o's elements lies among @a's (their spans apart). */
static int views_apart(const struct neuron_tensor_desc *o, const struct neuron_tensor_desc *a,
			const struct neuron_engine_slot *slots)
{
	const struct neuron_tensor_desc *v[2] = { o, a };
	const u8 *lo[2], *hi[2];
	u32 j, i;

	for (j = 0; j < 2; j++) {
		u64 last = v[j]->offset;

		for (i = 0; i < v[j]->rank; i++)
			last += (u64)(v[j]->dims[i] - 1) * v[j]->strides[i];
		lo[j] = (const u8 *)slots[v[j]->slot].base + v[j]->offset * neuron_dtype_size(v[j]->dtype);
		hi[j] = (const u8 *)slots[v[j]->slot].base + (last + 1) * neuron_dtype_size(v[j]->dtype);
	}
	return hi[0] <= lo[1] || hi[1] <= lo[0];
}

/*
 * Views apart: @m2 blocks (@ostep2 apart) of @m rows (@ostep apart) of @n
 * elements of @size bytes (@step apart), in any order. Short rows (an
 * im2col's windows of 3 to 7 elements) cost a loop each, not a call, and
 * contiguous ones of up to 8 words move as one fixed-size copy.
 */
static __attribute__((__noinline__)) void
copy_apart(u8 *d, const u8 *s, u32 size, u64 n, const u64 *step, u64 m, const u64 *ostep, u64 m2,
	   const u64 *ostep2)
{
	u64 bytes = n * size, od = ostep[0] * size, os = ostep[1] * size;
	u64 od2 = ostep2[0] * size, os2 = ostep2[1] * size, r2, r, j;

#define COPY_BLOCKS(row)							\
	do {									\
		for (r2 = 0; r2 < m2; r2++, d += od2, s += os2) {		\
			u8 *dd = d;						\
			const u8 *ss = s;					\
									\
			for (r = 0; r < m; r++, dd += od, ss += os)		\
				row;						\
		}								\
	} while (0)

	if (step[0] == 1 && step[1] == 1) {
		switch (bytes) {
		case 4: COPY_BLOCKS(__builtin_memcpy(dd, ss, 4)); return;
		case 8: COPY_BLOCKS(__builtin_memcpy(dd, ss, 8)); return;
		case 12: COPY_BLOCKS(__builtin_memcpy(dd, ss, 12)); return;
		case 16: COPY_BLOCKS(__builtin_memcpy(dd, ss, 16)); return;
		case 20: COPY_BLOCKS(__builtin_memcpy(dd, ss, 20)); return;
		case 24: COPY_BLOCKS(__builtin_memcpy(dd, ss, 24)); return;
		case 28: COPY_BLOCKS(__builtin_memcpy(dd, ss, 28)); return;
		case 32: COPY_BLOCKS(__builtin_memcpy(dd, ss, 32)); return;
		default: COPY_BLOCKS(__builtin_memcpy(dd, ss, bytes)); return;
		}
	}
	switch (size) {
	case 4: {
		u64 sd = step[0] * 4, st = step[1] * 4;

		COPY_BLOCKS(for (j = 0; j < n; j++) __builtin_memcpy(dd + j * sd, ss + j * st, 4));
		return;
	}
	case 8: {
		u64 sd = step[0] * 8, st = step[1] * 8;

		COPY_BLOCKS(for (j = 0; j < n; j++) __builtin_memcpy(dd + j * sd, ss + j * st, 8));
		return;
	}
	default:
		COPY_BLOCKS(copy_row(dd, step[0], ss, step[1], n, size));
		return;
	}
#undef COPY_BLOCKS
}

/*
 * A view's rows of @n elements in the order of @w's walk, @m at a time
 * and those @m2 at a time (walk_outer twice), with both views' offsets
 * carried along from index to index rather than recomputed. Views that
 * overlap keep the walk's order element by element (copy_row); apart,
 * the order is free (copy_apart).
 */
static void op_copy(const struct neuron_tensor_desc *o, const struct neuron_tensor_desc *a,
		    const struct neuron_engine_slot *slots)
{
	const struct neuron_tensor_desc *views[2] = { o, a };
	u8 *dst = slots[o->slot].base;
	const u8 *src = slots[a->slot].base;
	u32 size = neuron_dtype_size(o->dtype);
	u64 n, step[2], m, ostep[2], m2, ostep2[2], r, r2, od, oa;
	struct walk w;
	int apart;
	int i;

	walk_rows(&w, views, 2, &n, step);
	walk_outer(&w, views, 2, &m, ostep);
	walk_outer(&w, views, 2, &m2, ostep2);
	apart = views_apart(o, a, slots);
	od = o->offset;
	oa = a->offset;
	for (;;) {
		u8 *d = dst + od * size;
		const u8 *s = src + oa * size;

		if (apart) {
			copy_apart(d, s, size, n, step, m, ostep, m2, ostep2);
		} else {
			for (r2 = 0; r2 < m2; r2++) {
				u8 *dd = d + r2 * ostep2[0] * size;
				const u8 *ss = s + r2 * ostep2[1] * size;

				for (r = 0; r < m; r++, dd += ostep[0] * size, ss += ostep[1] * size)
					copy_row(dd, step[0], ss, step[1], n, size);
			}
		}
		for (i = (int)w.rank - 1; i >= 0; i--) {
			if (++w.idx[i] < w.dims[i]) {
				od += o->strides[i];
				oa += a->strides[i];
				break;
			}
			od -= (u64)(w.dims[i] - 1) * o->strides[i];
			oa -= (u64)(w.dims[i] - 1) * a->strides[i];
			w.idx[i] = 0;
		}
		if (i < 0)
			return;
	}
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
	case NEURON_BIN_FMOD: return neuron_fmodf(x, y);
	case NEURON_BIN_MOD: {
		/* the divisor's sign, as Python's % */
		float r = neuron_fmodf(x, y);

		return r != 0 && (r < 0) != (y < 0) ? r + y : r;
	}
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
	case NEURON_UN_SILU: return x * (1.0f / (1.0f + neuron_expf(-x)));
	case NEURON_UN_TANH: return neuron_tanhf(x);
	case NEURON_UN_EXP: return neuron_expf(x);
	case NEURON_UN_LOG: return neuron_logf(x);
	case NEURON_UN_SQRT: return neuron_sqrtf(x);
	case NEURON_UN_RSQRT: return 1.0f / neuron_sqrtf(x);
	case NEURON_UN_ERF: return neuron_erff(x);
	case NEURON_UN_NEG: return -x;
	case NEURON_UN_ABS: return x < 0 ? -x : (x == 0 ? 0.0f : x);
	case NEURON_UN_RECIPROCAL: return 1.0f / x;
	case NEURON_UN_FLOOR: return neuron_floorf(x);
	case NEURON_UN_CEIL: return -neuron_floorf(-x);
	case NEURON_UN_ROUND: return neuron_roundevenf(x);
	case NEURON_UN_SIN: return neuron_sinf(x);
	case NEURON_UN_COS: return neuron_cosf(x);
	case NEURON_UN_TAN: return neuron_tanf(x);
	case NEURON_UN_ASIN: return neuron_asinf(x);
	case NEURON_UN_ACOS: return neuron_acosf(x);
	case NEURON_UN_ATAN: return neuron_atanf(x);
	case NEURON_UN_SINH: return neuron_sinhf(x);
	case NEURON_UN_COSH: return neuron_coshf(x);
	case NEURON_UN_ASINH: return neuron_asinhf(x);
	case NEURON_UN_ACOSH: return neuron_acoshf(x);
	case NEURON_UN_ATANH: return neuron_atanhf(x);
	}
	return 0;
}

/* Apply @expr (of x, and y for binary ops) to the @n elements of a row. */
#define EW_ROW(expr)							\
	do {								\
		for (i = 0; i < n; i++) {				\
			float x = a[i * as];				\
			float y = b ? b[i * bs] : 0.0f;			\
									\
			o[i * os] = (expr);				\
			(void)y;					\
		}							\
	} while (0)

/*
 * One row of an elementwise op, element by element in order as the
 * reference walk goes, with the operation chosen once per row rather than
 * once per element; contiguous rows first by the vector kernels
 * (engine_rows.c), which give each element the same bits.
 */
static void ew_row(const struct neuron_insn *in, float *o, u64 os, const float *a, u64 as,
		   const float *b, u64 bs, u64 n)
{
	float alpha = in->fparam[0];
	u64 i, done = 0;

	if (os == 1 && as == 1 && (!b || bs <= 1))
		done = b ? neuron_rows_binary(in->sub, o, a, b, bs == 0, n)
			 : neuron_rows_unary(in->sub, o, a, alpha, n);
	o += done;
	a += done;
	if (b)
		b += done * bs;
	n -= done;
	if (b) {
		switch (in->sub) {
		case NEURON_BIN_ADD: EW_ROW(x + y); return;
		case NEURON_BIN_SUB: EW_ROW(x - y); return;
		case NEURON_BIN_MUL: EW_ROW(x * y); return;
		default: EW_ROW(binary(in->sub, x, y)); return;
		}
	}
	switch (in->sub) {
	case NEURON_UN_RELU: EW_ROW(x > 0 ? x : 0); return;
	case NEURON_UN_NEG: EW_ROW(-x); return;
	default: EW_ROW(unary(in->sub, x, alpha)); return;
	}
}

/* Elements of short rows against one element each, run as one row. */
#define EW_CHUNK	256

/*
 * @count short rows of @n back to back (@oo == @n), each against one
 * element of the other operand (a per-channel scale over a small map):
 * EW_CHUNK elements at a time, that element repeated along its row, as
 * one row, so that the vector kernels take them. Each element is the
 * same operation. The repeated elements are read before the chunk is
 * written, and the rows read at once: neither may lie among the rows
 * written, but for the full operand in place. Returns whether it ran.
 */
static __attribute__((__noinline__))
int ew_scalar_rows(const struct neuron_insn *in, float *ro, const float *ra, const float *rb,
		   const u64 *step, u64 n, u64 count, u64 oo, u64 ao, u64 bo)
{
	int b_one = step[1] == 1 && ao == n && step[2] == 0;
	int a_one = step[2] == 1 && bo == n && step[1] == 0;
	const float *one = b_one ? rb : ra, *full = b_one ? ra : rb;
	u64 adv = b_one ? bo : ao, rows = EW_CHUNK / (n ? n : 1), j, r, i, take;
	const float *end = ro + count * n;
	float pattern[EW_CHUNK];

	if (n >= 64 || step[0] != 1 || oo != n || !(b_one || a_one))
		return 0;
	if (!(one + (count - 1) * adv + 1 <= ro || one >= end))
		return 0;
	if (full != ro && !(full + count * n <= ro || full >= end))
		return 0;
	for (j = 0; j < count; j += take) {
		take = count - j < rows ? count - j : rows;
		for (r = 0; r < take; r++)
			for (i = 0; i < n; i++)
				pattern[r * n + i] = one[(j + r) * adv];
		if (b_one)
			ew_row(in, ro + j * n, 1, full + j * n, 1, pattern, 1, take * n);
		else
			ew_row(in, ro + j * n, 1, pattern, 1, full + j * n, 1, take * n);
	}
	return 1;
}

/* The element offsets @d spans: [d->offset, *@end]. */
static void ew_span(const struct neuron_tensor_desc *d, u64 *end)
{
	u32 i;

	*end = d->offset;
	for (i = 0; i < d->rank; i++)
		*end += (u64)(d->dims[i] - 1) * d->strides[i];
}

/*
 * Elementwise views whose output is laid out in another order than its
 * axes (an image channels last: [N, C, H, W] with C's stride 1) walk in
 * memory order instead: the axes of all views sorted by the output's
 * strides, largest first, into @sorted, so that rows are contiguous and
 * the vector kernels take them. Only where the order of elements cannot
 * change a bit: every output element its own (each axis's stride at
 * least the span of those inside it), and each input either apart from
 * the output or exactly it (in place: an element reads only what it
 * writes). 1 if sorted.
 */
static int ew_sorted(const struct neuron_tensor_desc *const *v, u32 count,
		     const struct neuron_engine_slot *slots, struct neuron_tensor_desc *sorted)
{
	const struct neuron_tensor_desc *o = v[0];
	u32 order[NEURON_MAX_RANK], rank = o->rank, i, j, t;
	u64 span = 1, oend, end;
	uintptr_t ob = (uintptr_t)f32(slots, o);
	int moved = 0;

	for (i = 0; i < rank; i++)
		order[i] = i;
	/* Insertion sort of the axes by the output's strides, largest first. */
	for (i = 1; i < rank; i++)
		for (j = i; j > 0 && o->strides[order[j]] > o->strides[order[j - 1]]; j--) {
			t = order[j];
			order[j] = order[j - 1];
			order[j - 1] = t;
			moved = 1;
		}
	if (!moved)
		return 0;
	for (i = rank; i-- > 0;) {
		u32 ax = order[i];

		if (o->dims[ax] == 1)
			continue;
		if (o->strides[ax] < span)
			return 0;
		span = o->strides[ax] * o->dims[ax];
	}
	ew_span(o, &oend);
	for (j = 1; j < count; j++) {
		const struct neuron_tensor_desc *d = v[j];
		uintptr_t db = (uintptr_t)f32(slots, d);
		int same = db == ob && d->offset == o->offset;

		if (d->rank != rank)
			return 0;
		for (i = 0; same && i < rank; i++)
			same = d->dims[i] == o->dims[i] && (o->dims[i] == 1 || d->strides[i] == o->strides[i]);
		ew_span(d, &end);
		/* Apart: the spans' bytes do not meet. */
		if (!same && !(db + end * 4 < ob + o->offset * 4 || ob + oend * 4 < db + d->offset * 4))
			return 0;
	}
	for (j = 0; j < count; j++) {
		sorted[j] = *v[j];
		for (i = 0; i < rank; i++) {
			sorted[j].dims[i] = v[j]->dims[order[i]];
			sorted[j].strides[i] = v[j]->strides[order[i]];
		}
	}
	return 1;
}

/* Short rows op_elementwise runs as one against a repeated row of b. */
#define EW_PERIOD	16

static void op_elementwise(const struct neuron_insn *in, const struct neuron_tensor_desc *o,
			   const struct neuron_tensor_desc *a, const struct neuron_tensor_desc *b,
			   const struct neuron_engine_slot *slots)
{
	const struct neuron_tensor_desc *views[3] = { o, a, b };
	float *po = f32(slots, o), *pa = f32(slots, a), *pb = b ? f32(slots, b) : NULL;
	u64 n, step[3] = { 0 }, count = 1, j, ao = 0, bo = 0, oo = 0;
	struct neuron_tensor_desc sorted[3];
	struct walk w;
	int ax;

	if (ew_sorted(views, b ? 3 : 2, slots, sorted)) {
		o = views[0] = &sorted[0];
		a = views[1] = &sorted[1];
		if (b)
			b = views[2] = &sorted[2];
	}
	/* Walk the rows: the trailing axes that merge into one, then the rest. */
	walk_rows(&w, views, b ? 3 : 2, &n, step);
	/*
	 * Short rows (channels last, a per-channel constant): the next axis
	 * too is walked here, without the walk's bookkeeping per row.
	 */
	for (ax = (int)w.rank - 1; ax >= 0 && w.dims[ax] == 1; ax--)
		;
	if (ax >= 0 && n < 64) {
		count = w.dims[ax];
		w.dims[ax] = 1;
		ao = a->strides[ax];
		bo = b ? b->strides[ax] : 0;
		oo = o->strides[ax];
	}
	do {
		float *ro = po + at(&w, o);
		const float *ra = pa + at(&w, a), *rb = pb ? pb + at(&w, b) : NULL;

		j = 0;
		/*
		 * Rows of fewer than 8 back to back against the same short row
		 * of b (a per-channel constant, channels last): EW_PERIOD rows
		 * at a time as one row against b repeated, so that the vector
		 * kernels take them. Each element is the same operation (b's
		 * row is read once: it must not lie in the rows written).
		 */
		if (rb && n < 8 && count >= EW_PERIOD && step[0] == 1 && step[1] == 1 &&
		    step[2] == 1 && oo == n && ao == n && bo == 0 &&
		    (rb + n <= ro || rb >= ro + count * n)) {
			float pattern[8 * EW_PERIOD];
			u64 i;

			for (i = 0; i < n * EW_PERIOD; i++)
				pattern[i] = rb[i % n];
			for (; j + EW_PERIOD <= count; j += EW_PERIOD)
				ew_row(in, ro + j * n, 1, ra + j * n, 1, pattern, 1, n * EW_PERIOD);
			ro += j * oo;
			ra += j * ao;
		}
		if (!j && rb && count > 1 && ew_scalar_rows(in, ro, ra, rb, step, n, count, oo, ao, bo))
			continue;
		for (; j < count; j++, ro += oo, ra += ao, rb = rb ? rb + bo : NULL)
			ew_row(in, ro, step[0], ra, step[1], rb, step[2], n);
	} while (walk_next(&w));
}

/* B's K x N elements from @base (strides @sk, @sn) into rows at @dst. */
static void copy_rows(u8 *dst, const void *src, u64 base, u64 sk, u64 sn, u32 K, u32 N, int half)
{
	u32 k, n;

	for (k = 0; k < K; k++) {
		u64 from = base + k * sk;

		if (half) {
			const u16 *s = (const u16 *)src + from;
			u16 *d = (u16 *)dst + (u64)k * N;

			for (n = 0; n < N; n++)
				d[n] = s[n * sn];
		} else {
			const u32 *s = (const u32 *)src + from;
			u32 *d = (u32 *)dst + (u64)k * N;

			for (n = 0; n < N; n++)
				d[n] = s[n * sn];
		}
	}
}

/* A bf16 pairs operand (a float) taken as zero when denormal. */
static float pair_daz(float x)
{
	union { float f; u32 u; } v = { .f = x };

	if (!(v.u & 0x7f800000u))
		v.u &= 0x80000000u;
	return v.f;
}

/*
 * One step of the bf16 pairs chain (NEURON_MATMUL_BF16_PAIRS) without
 * the CPU's help: fma(x, y, acc) with a result that is tiny after
 * rounding (x86 detects tininess so) flushed to a zero of its sign. x
 * and y are bf16 values (their product is exact in a double), acc is
 * never denormal. A rounded result below 2^-126 is tiny; one of exactly
 * 2^-126 is tiny when the exact sum lies below 2^-126 - 2^-151 (it would
 * round to 24 bits with an unbounded exponent to less than 2^-126): the
 * sum in a double is close enough to decide, since the product's and
 * acc's low bits keep it a multiple of 2^-166 there.
 */
static float pair_fma(float x, float y, float acc)
{
	union { float f; u32 u; } r = { .f = neuron_fmaf(pair_daz(x), pair_daz(y), acc) };
	u32 mag = r.u & 0x7fffffffu;
	double exact;

	if (mag < 0x00800000u) {
		r.u &= 0x80000000u;
	} else if (mag == 0x00800000u) {
		exact = (double)acc + (double)pair_daz(x) * (double)pair_daz(y);
		if (exact < 0)
			exact = -exact;
		if (exact < 0x1p-126 - 0x1p-151)
			r.u &= 0x80000000u;
	}
	return r.f;
}

/* Element @i of a pairs operand as the product reads it. */
static float pair_elem(const void *p, u64 i, int half)
{
	return bf16_to_f32(neuron_bf16_pair_elem(p, i, half));
}

/*
 * out[b,m,n]: acc = 0, then acc = fma(a[b,m,k], b[b,k,n], acc) for k in
 * order (one rounding per step); then acc + bias[n], relu and the bound
 * (NEURON_MATMUL_RELU, NEURON_MATMUL_CLAMP) as CONV2D's. In bf16 pairs: k
 * in pairs, odd first, through pair_fma() (docs/isa.md). B in panels
 * (NEURON_MATMUL_B_PANELS): b[b,k,n] is b[n / 32][k][n % 32], one b for
 * every batch; in pairs b[n / 32][k / 2][2 * (n % 32) + k % 2].
 */
static void op_matmul(const struct neuron_insn *in, const struct neuron_tensor_desc *o,
		      const struct neuron_tensor_desc *a, const struct neuron_tensor_desc *b,
		      const struct neuron_tensor_desc *bias, const struct neuron_engine_slot *slots,
		      const struct neuron_engine_slot *scratch)
{
	u32 r = o->rank, batches = r == 3 ? o->dims[0] : 1;
	u32 M = o->dims[r - 2], N = o->dims[r - 1], K = a->dims[r - 1];
	const void *pa = slots[a->slot].base, *pb = slots[b->slot].base;
	const float *pbias = bias ? f32(slots, bias) : NULL;
	int pairs = !!(in->flags & NEURON_MATMUL_BF16_PAIRS);
	int panels = !!(in->flags & NEURON_MATMUL_B_PANELS);
	int ahalf = a->dtype == NEURON_DT_BF16, bhalf = b->dtype == NEURON_DT_BF16;
	u32 kind = (ahalf ? NEURON_GEMM_A_BF16 : 0) | (bhalf ? NEURON_GEMM_B_BF16 : 0) |
		   (pairs ? NEURON_GEMM_PAIRS : 0) | (panels ? NEURON_GEMM_B_PANELS : 0);
	/*
	 * B's strides: between its rows (k), its columns, its panels; in
	 * pairs between pairs (@bsq) and from a pair's first element to its
	 * second (@bso). Pairs in panels (ISA 1.14): a column's pair is two
	 * adjacent elements, the pairs 64 apart.
	 */
	int ppanels = panels && pairs;
	u64 bsk = panels ? b->strides[1] : b->strides[r - 2];
	u64 bsn = ppanels ? 2 * b->strides[2] : panels ? b->strides[2] : b->strides[r - 1];
	u64 bsp = panels ? b->strides[0] : 0;
	u64 bsq = ppanels ? bsk : 2 * bsk, bso = ppanels ? b->strides[2] : bsk;
	int vector = o->strides[r - 1] == 1 &&
		     (ppanels ? b->strides[2] == 1 && bsk == 2 * NEURON_MATMUL_PANEL :
		      bsn == 1 && (!panels || bsk == NEURON_MATMUL_PANEL));
	u32 aesize = ahalf ? 2 : 4, besize = bhalf ? 2 : 4;
	float *po = f32(slots, o);
	/*
	 * B not in rows (a transposed view: x · W^T, Q · K^T): each batch's B
	 * copied into rows in the scratch's upper half, which the vector
	 * kernel leaves alone, when it fits.
	 */
	u8 *rowsb = scratch && scratch->base && scratch->size >= NEURON_GEMM_SCRATCH ?
		    (u8 *)scratch->base + NEURON_GEMM_SCRATCH / 2 : NULL;
	int copied = !vector && !panels && o->strides[r - 1] == 1 && rowsb &&
		     (u64)K * N * besize <= NEURON_GEMM_SCRATCH / 2;
	u32 bt, m, n, k;

	for (bt = 0; bt < batches; bt++) {
		u64 ob = o->offset + (r == 3 ? bt * o->strides[0] : 0);
		u64 ab = a->offset + (r == 3 ? bt * a->strides[0] : 0);
		u64 bb = b->offset + (r == 3 && !panels ? bt * b->strides[0] : 0);
		u32 rows = 0, cols = 0;

		/* Copied once when every batch shares B (a batch stride of 0). */
		if (copied && (bt == 0 || b->strides[0]))
			copy_rows(rowsb, pb, bb, b->strides[r - 2], b->strides[r - 1], K, N, bhalf);
		/* The vector kernel computes a block with the same chains. */
		if (vector || copied)
			neuron_gemm_block((const char *)pa + ab * aesize, a->strides[r - 2],
					  a->strides[r - 1],
					  copied ? (const char *)rowsb : (const char *)pb + bb * besize,
					  copied ? N : panels ? bsp : bsk, kind, po + ob,
					  o->strides[r - 2], M, N, K, &rows, &cols, scratch);
		for (m = 0; m < M; m++) {
			for (n = m < rows ? cols : 0; n < N; n++) {
				u64 ai = ab + m * a->strides[r - 2];
				u64 bi = bb + (panels ? n / NEURON_MATMUL_PANEL * bsp +
						   n % NEURON_MATMUL_PANEL * bsn : n * bsn);
				float acc = 0.0f;

				for (k = 0; pairs && k < K; k += 2) {
					u64 x = ai + k * a->strides[r - 1], y = bi + k / 2 * bsq;
					float x1 = 0.0f, y1 = 0.0f;

					if (k + 1 < K) {
						x1 = pair_elem(pa, x + a->strides[r - 1], ahalf);
						y1 = pair_elem(pb, y + bso, bhalf);
					}
					acc = pair_fma(x1, y1, acc);
					acc = pair_fma(pair_elem(pa, x, ahalf), pair_elem(pb, y, bhalf), acc);
				}
				for (k = 0; !pairs && k < K; k++) {
					u64 x = ai + k * a->strides[r - 1], y = bi + k * bsk;

					acc = ahalf ? neuron_fmaf(bf16_to_f32(((const u16 *)pa)[x]),
								  bf16_to_f32(((const u16 *)pb)[y]), acc)
						    : neuron_fmaf(((const float *)pa)[x], ((const float *)pb)[y], acc);
				}
				po[ob + m * o->strides[r - 2] + n * o->strides[r - 1]] = acc;
			}
		}
		neuron_gemm_epilogue(po + ob, o->strides[r - 2], o->strides[r - 1], M, N,
				     pbias ? pbias + bias->offset : NULL, bias ? bias->strides[0] : 0,
				     !!(in->flags & NEURON_MATMUL_RELU),
				     !!(in->flags & NEURON_MATMUL_CLAMP), in->fparam[0]);
	}
}

/*
 * A row's sum in NEURON_ROW_SUM_WIDTH lanes (NEURON_ROW_SUM_LANES, ISA
 * 1.8): element j goes to partial j mod 16, each partial in order; then
 * the partials combine, halves onto halves, into partial 0.
 */
float neuron_lane_sum(float *p)
{
	u32 h, l;

	for (h = NEURON_ROW_SUM_WIDTH / 2; h; h /= 2)
		for (l = 0; l < h; l++)
			p[l] = p[l] + p[l + h];
	return p[0];
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
				case NEURON_RED_PROD:
					acc = acc * x;
					break;
				}
			}
			if (in->sub == NEURON_RED_MEAN)
				acc = acc / (float)len;
			po[at(&w, o)] = acc;
		} else {
			float *out = po + at(&w, o);
			float max = row[0], sum = 0.0f, part[NEURON_ROW_SUM_WIDTH] = { 0 };
			int lanes = !!(in->flags & NEURON_ROW_SUM_LANES);
			u64 done = 0;

			if (as == 1 && os == 1 && neuron_rows_softmax(row, out, len, lanes))
				continue;
			j = as == 1 ? (u32)neuron_rows_max(row, len, &max) : 0;
			for (j = j ? j : 1; j < len; j++)
				max = row[j * as] > max ? row[j * as] : max;
			/* Contiguous rows: x - max and exp by vector (the same
			 * bits), then the sum in order. */
			if (as == 1 && os == 1 && (out == row || out + len <= row || row + len <= out)) {
				done = neuron_rows_binary(NEURON_BIN_SUB, out, row, &max, 1, len);
				done = neuron_rows_unary(NEURON_UN_EXP, out, out, 0.0f, done);
			}
			/* The sum (in order, or in lanes): first the exps the
			 * vectors wrote, then the rest, each written as it is
			 * added. */
			for (j = 0; j < done; j++) {
				if (lanes)
					part[j % NEURON_ROW_SUM_WIDTH] = part[j % NEURON_ROW_SUM_WIDTH] + out[j];
				else
					sum = sum + out[j];
			}
			for (; j < len; j++) {
				float e = neuron_expf(row[j * as] - max);

				out[j * os] = e;
				if (lanes)
					part[j % NEURON_ROW_SUM_WIDTH] = part[j % NEURON_ROW_SUM_WIDTH] + e;
				else
					sum = sum + e;
			}
			if (lanes)
				sum = neuron_lane_sum(part);
			done = os == 1 ? neuron_rows_binary(NEURON_BIN_DIV, out, out, &sum, 1, len) : 0;
			for (j = (u32)done; j < len; j++)
				out[j * os] = out[j * os] / sum;
		}
	} while (walk_next(&w));
}

/* out[i..., d] = table[index[i...], d]; a negative index counts from the end. */
static u32 op_gather(const struct neuron_tensor_desc *o, const struct neuron_tensor_desc *t,
		     const struct neuron_tensor_desc *ix, const struct neuron_engine_slot *slots)
{
	u32 size = neuron_dtype_size(t->dtype);
	u32 rows = t->dims[0], width = t->dims[1], d, byte, r = ix->rank;
	u8 *out = slots[o->slot].base;
	const u8 *table = slots[t->slot].base;
	u32 fault = 0;
	struct walk w;

	walk_init(&w, ix);
	do {
		s64 idx = neuron_typed_index(slots[ix->slot].base, ix->dtype, at(&w, ix));
		u64 obase = o->offset;
		u32 i;

		for (i = 0; i < r; i++)
			obase += (u64)w.idx[i] * o->strides[i];
		if (idx < 0)
			idx += rows;
		if (idx >= 0 && idx < rows) {
			copy_row(out + obase * size, o->strides[r],
				 table + (t->offset + (u64)idx * t->strides[0]) * size, t->strides[1],
				 width, size);
			continue;
		}
		/* Out of range: zeros, and a fault. */
		fault = NEURON_ISA_FAULT_INDEX;
		for (d = 0; d < width; d++) {
			u8 *dst = out + (obase + d * o->strides[r]) * size;

			for (byte = 0; byte < size; byte++)
				dst[byte] = 0;
		}
	} while (walk_next(&w));
	return fault;
}

/* Over the last axis: mean, then variance, each summed first to last. */
static void op_layernorm(const struct neuron_insn *in, const struct neuron_tensor_desc *o,
			 const struct neuron_tensor_desc *a, const struct neuron_tensor_desc *g,
			 const struct neuron_tensor_desc *b, const struct neuron_engine_slot *slots)
{
	u32 last = a->rank - 1, len = a->dims[last], j;
	const float *pa = f32(slots, a), *pg = f32(slots, g), *pb = f32(slots, b);
	float *po = f32(slots, o);
	int lanes = !!(in->flags & NEURON_ROW_SUM_LANES);
	struct walk w;

	walk_init(&w, a);
	w.dims[last] = 1;
	do {
		const float *row = pa + at(&w, a);
		float *out = po + at(&w, o);
		float sum = 0.0f, var = 0.0f, mean, inv, part[NEURON_ROW_SUM_WIDTH] = { 0 };

		if (lanes && a->strides[last] == 1 && o->strides[last] == 1 && g->strides[0] == 1 &&
		    b->strides[0] == 1 && neuron_rows_layernorm(row, out, pg + g->offset, pb + b->offset,
								len, in->fparam[0]))
			continue;
		for (j = 0; j < len; j++) {
			if (lanes)
				part[j % NEURON_ROW_SUM_WIDTH] = part[j % NEURON_ROW_SUM_WIDTH] +
								 row[j * a->strides[last]];
			else
				sum = sum + row[j * a->strides[last]];
		}
		if (lanes)
			sum = neuron_lane_sum(part);
		mean = sum / (float)len;
		for (j = 0; j < NEURON_ROW_SUM_WIDTH; j++)
			part[j] = 0.0f;
		for (j = 0; j < len; j++) {
			float dlt = row[j * a->strides[last]] - mean;

			if (lanes)
				part[j % NEURON_ROW_SUM_WIDTH] = part[j % NEURON_ROW_SUM_WIDTH] + dlt * dlt;
			else
				var = var + dlt * dlt;
		}
		if (lanes)
			var = neuron_lane_sum(part);
		inv = 1.0f / neuron_sqrtf(var / (float)len + in->fparam[0]);
		for (j = 0; j < len; j++) {
			float y = (row[j * a->strides[last]] - mean) * inv;

			out[j * o->strides[last]] = y * pg[g->offset + j * g->strides[0]] +
						    pb[b->offset + j * b->strides[0]];
		}
	} while (walk_next(&w));
}

/* Element (n, c, h, w) of a rank-4 view. */
static u64 at4(const struct neuron_tensor_desc *d, u64 n, u64 c, u64 h, u64 w)
{
	return d->offset + n * d->strides[0] + c * d->strides[1] + h * d->strides[2] +
	       w * d->strides[3];
}

/*
 * Packed weights (NEURON_CONV_PACKED, one group): the same order, but a tap
 * in the padding multiplies a zero, and with NEURON_CONV_ACCUMULATE the
 * sum starts from the output. The gemm path computes exactly this.
 */
static void conv2d_packed(const struct neuron_conv_args *c, u32 n, u32 co_count)
{
	u64 k = (u64)c->cig * c->kh * c->kw;
	u32 co, ho, wo, ci, kh, kw;

	for (co = 0; co < co_count; co++)
	for (ho = 0; ho < c->ho; ho++)
	for (wo = 0; wo < c->wo; wo++) {
		const float *w = c->wt + (u64)(co / NEURON_CONV_PACK_ROWS) * k * NEURON_CONV_PACK_ROWS +
				 co % NEURON_CONV_PACK_ROWS;
		float *out = &c->o[n * c->os[0] + co * c->os[1] + ho * c->os[2] + wo * c->os[3]];
		float acc = c->accumulate ? *out : 0.0f;

		for (ci = 0; ci < c->cig; ci++)
		for (kh = 0; kh < c->kh; kh++) {
			s64 ih = (s64)ho * c->sh - c->pt + (s64)kh * c->dh;

			for (kw = 0; kw < c->kw; kw++, w += NEURON_CONV_PACK_ROWS) {
				s64 iw = (s64)wo * c->sw - c->pl + (s64)kw * c->dw;
				float v = 0.0f;

				if (ih >= 0 && ih < c->h && iw >= 0 && iw < c->w)
					v = c->x[n * c->xs[0] + ci * c->xs[1] + (u64)ih * c->xs[2] +
						 (u64)iw * c->xs[3]];
				acc = neuron_fmaf(v, *w, acc);
			}
		}
		if (c->bias)
			acc = acc + c->bias[co * c->bs];
		if (c->relu && !(acc > 0.0f))
			acc = acc != acc ? acc : 0.0f;
		if (c->clamp)
			acc = NEURON_CONV_BOUND(acc, c->hi);
		*out = acc;
	}
}

/*
 * In bf16 pairs (NEURON_CONV_BF16_PAIRS): the weights of output channel
 * co and its window, both flattened (input channel, kernel row, kernel
 * column), as a MATMUL row by column in pairs, a padding tap a zero; then
 * the output's value (accumulate), the bias and relu. Channels
 * co0..co0+cos-1 of one group.
 */
static float conv_pair_tap(const struct neuron_conv_args *c, u32 n, u32 ho, u32 wo, u64 k)
{
	u32 taps = c->kh * c->kw, ci = (u32)(k / taps), kh = (u32)(k % taps) / c->kw;
	u32 kw = (u32)(k % taps) % c->kw;
	s64 ih = (s64)ho * c->sh - c->pt + (s64)kh * c->dh;
	s64 iw = (s64)wo * c->sw - c->pl + (s64)kw * c->dw;

	if (ih < 0 || ih >= c->h || iw < 0 || iw >= c->w)
		return 0.0f;
	return pair_elem(c->xv, n * c->xs[0] + (c->c0 + ci) * c->xs[1] + (u64)ih * c->xs[2] +
			 (u64)iw * c->xs[3], c->xhalf);
}

/* Weight k of output channel co, flattened the same way. */
static float conv_pair_weight(const struct neuron_conv_args *c, u32 co, u64 k)
{
	u64 taps = (u64)c->kh * c->kw, r = k % taps;

	return pair_elem(c->wv, co * c->ws[0] + (k / taps) * c->ws[1] + (r / c->kw) * c->ws[2] +
			 (r % c->kw) * c->ws[3], c->whalf);
}

static void conv2d_pairs(const struct neuron_conv_args *c, u32 n, u32 co0, u32 cos)
{
	u64 K = (u64)c->cig * c->kh * c->kw, k;
	u32 co, ho, wo;

	for (co = co0; co < co0 + cos; co++)
	for (ho = 0; ho < c->ho; ho++)
	for (wo = 0; wo < c->wo; wo++) {
		float *out = &c->o[n * c->os[0] + co * c->os[1] + ho * c->os[2] + wo * c->os[3]];
		float acc = 0.0f;

		/* Pairs in order, the odd element first; an odd K's last pads with zero. */
		for (k = 0; k < K; k += 2) {
			if (k + 1 < K)
				acc = pair_fma(conv_pair_tap(c, n, ho, wo, k + 1),
					       conv_pair_weight(c, co, k + 1), acc);
			else
				acc = pair_fma(0.0f, 0.0f, acc);
			acc = pair_fma(conv_pair_tap(c, n, ho, wo, k), conv_pair_weight(c, co, k), acc);
		}
		if (c->accumulate)
			acc = acc + *out;
		if (c->bias)
			acc = acc + c->bias[co * c->bs];
		if (c->relu && !(acc > 0.0f))
			acc = acc != acc ? acc : 0.0f;
		if (c->clamp)
			acc = NEURON_CONV_BOUND(acc, c->hi);
		*out = acc;
	}
}

/*
 * Each output sums over input channels of its group, then kernel rows,
 * then kernel columns, in that order (padding contributes nothing), then
 * adds the bias, then applies relu.
 */
static void op_conv2d(const struct neuron_insn *in, const struct neuron_tensor_desc *o,
		      const struct neuron_tensor_desc *x, const struct neuron_tensor_desc *wt,
		      const struct neuron_tensor_desc *bias, const struct neuron_engine_slot *slots,
		      const struct neuron_engine_slot *scratch)
{
	const u32 *p = in->iparam;
	u32 N = o->dims[0], Co = o->dims[1], Ho = o->dims[2], Wo = o->dims[3];
	int winograd = !!(in->flags & NEURON_CONV_WINOGRAD);
	/* Winograd's U is [16 or 36, ceil(Co/6), Ci, 6] for a 3x3 kernel. */
	u32 H = x->dims[2], W = x->dims[3], Cig = wt->dims[winograd ? 2 : 1];
	u32 Kh = winograd ? 3 : wt->dims[2], Kw = winograd ? 3 : wt->dims[3];
	u32 groups = x->dims[1] / Cig, per_group = Co / groups;
	const float *px = f32(slots, x), *pw = f32(slots, wt), *pb = bias ? f32(slots, bias) : NULL;
	float *po = f32(slots, o);
	int xhalf = x->dtype == NEURON_DT_BF16, whalf = wt->dtype == NEURON_DT_BF16;
	struct neuron_conv_args args = {
		.x = px + x->offset, .wt = pw + wt->offset, .o = po + o->offset,
		.cig = Cig, .h = H, .w = W, .kh = Kh, .kw = Kw,
		.sh = p[NEURON_WIN_STRIDE_H], .sw = p[NEURON_WIN_STRIDE_W],
		.pt = p[NEURON_WIN_PAD_TOP], .pl = p[NEURON_WIN_PAD_LEFT],
		.dh = p[NEURON_WIN_DILATION_H], .dw = p[NEURON_WIN_DILATION_W],
		.ho = Ho, .wo = Wo,
		.bias = pb ? pb + bias->offset : NULL, .bs = bias ? bias->strides[0] : 0,
		.relu = !!(in->flags & NEURON_CONV_RELU),
		.clamp = !!(in->flags & NEURON_CONV_CLAMP), .hi = in->fparam[0],
		.packed = !!(in->flags & NEURON_CONV_PACKED),
		.accumulate = !!(in->flags & NEURON_CONV_ACCUMULATE),
		.co = Co,
		.wtile = winograd && wt->dims[0] == 36 ? 4 : 2,
		.xv = (const u8 *)slots[x->slot].base + x->offset * (xhalf ? 2 : 4),
		.wv = (const u8 *)slots[wt->slot].base + wt->offset * (whalf ? 2 : 4),
		.xhalf = xhalf, .whalf = whalf,
	};
	u32 lanes = neuron_conv_lanes();
	u32 n, co, cb, cos, ho, wo, ci, kh, kw, i;
	s64 lo, hi, last = (s64)W - 1 - (s64)(Kw - 1) * args.dw + args.pl;

	for (i = 0; i < 4; i++) {
		args.xs[i] = x->strides[i];
		args.ws[i] = wt->strides[i];
		args.os[i] = o->strides[i];
	}
	/* Output columns whose every tap lies inside the input. */
	lo = ((s64)args.pl + args.sw - 1) / args.sw;
	hi = last < 0 ? 0 : last / args.sw + 1;
	args.wlo = lo < Wo ? (u32)lo : Wo;
	args.whi = hi < args.wlo ? args.wlo : hi > Wo ? Wo : (u32)hi;

	if (winograd) {
		for (n = 0; n < N; n++)
			neuron_conv_winograd(&args, n, scratch);
		return;
	}
	if (in->flags & NEURON_CONV_BF16_PAIRS) {
		for (n = 0; n < N; n++)
		for (cb = 0; cb < Co; cb += per_group) {
			args.c0 = (cb / per_group) * Cig;
			if (!neuron_conv_pairs(&args, n, cb, per_group, scratch))
				conv2d_pairs(&args, n, cb, per_group);
		}
		return;
	}
	if (args.packed) {
		for (n = 0; n < N; n++)
			if (!neuron_conv_narrow(&args, n, 0, Co, scratch) &&
			    !neuron_conv_gemm(&args, n, 0, Co, scratch))
				conv2d_packed(&args, n, Co);
		return;
	}
	/* Depthwise over narrow rows or channels last: channels in the vector lanes. */
	if (Cig == 1 && per_group == 1) {
		for (n = 0; n < N && neuron_conv_depthwise(&args, n, Co, scratch); n++)
			;
		if (n == N)
			return;
	}
	for (n = 0; n < N; n++)
	for (cb = 0; cb < Co; cb += cos) {
		u32 c0 = (cb / per_group) * Cig;
		int done;

		/* Groups of few output channels (depthwise) by output
		 * columns in lanes; others as a matrix product, else a block
		 * of channels within the group. */
		cos = per_group - cb % per_group;
		args.c0 = c0;
		if (per_group < NEURON_CONV_PACK_ROWS &&
		    neuron_conv_grouped(&args, n, cb, cos, scratch))
			continue;
		if (cos == per_group && (neuron_conv_narrow(&args, n, cb, cos, scratch) ||
					 neuron_conv_gemm(&args, n, cb, cos, scratch)))
			continue;
		cos = lanes && cos > lanes ? lanes : cos;
		done = lanes && neuron_conv_block(&args, n, cb, cos, scratch);
		for (co = cb; co < cb + cos; co++)
		for (ho = 0; ho < Ho; ho++)
		for (wo = 0; wo < Wo; wo++) {
			float *out = &po[at4(o, n, co, ho, wo)];
			float acc = 0.0f;

			if (done) {
				acc = *out;	/* the vector kernel ran the chain */
			} else {
				for (ci = 0; ci < Cig; ci++)
				for (kh = 0; kh < Kh; kh++) {
					s64 ih = (s64)ho * args.sh - args.pt + (s64)kh * args.dh;

					if (ih < 0 || ih >= H)
						continue;
					for (kw = 0; kw < Kw; kw++) {
						s64 iw = (s64)wo * args.sw - args.pl + (s64)kw * args.dw;

						if (iw < 0 || iw >= W)
							continue;
						acc = neuron_fmaf(px[at4(x, n, c0 + ci, ih, iw)],
								  pw[at4(wt, co, ci, kh, kw)], acc);
					}
				}
			}
			if (pb)
				acc = acc + pb[bias->offset + co * bias->strides[0]];
			if ((in->flags & NEURON_CONV_RELU) && !(acc > 0.0f))
				acc = acc != acc ? acc : 0.0f;
			if (args.clamp)
				acc = NEURON_CONV_BOUND(acc, args.hi);
			*out = acc;
		}
	}
}

/*
 * MAX and AVG over each window, rows then columns; padding is skipped. The
 * vector path (engine_pool.c) takes runs of columns whose windows lie
 * inside the input's columns, with the same steps.
 */
static void op_pool2d(const struct neuron_insn *in, const struct neuron_tensor_desc *o,
		      const struct neuron_tensor_desc *x, const struct neuron_engine_slot *slots)
{
	const u32 *p = in->iparam;
	u32 N = o->dims[0], C = o->dims[1], Ho = o->dims[2], Wo = o->dims[3];
	u32 H = x->dims[2], W = x->dims[3], Kh = p[NEURON_WIN_KERNEL_H], Kw = p[NEURON_WIN_KERNEL_W];
	u32 sw = p[NEURON_WIN_STRIDE_W], pl = p[NEURON_WIN_PAD_LEFT];
	const float *px = f32(slots, x);
	float *po = f32(slots, o);
	struct neuron_pool_args row = {
		.xs2 = x->strides[2], .h = H, .kh = Kh, .kw = Kw, .sw = sw, .pl = pl,
		.max = in->sub == NEURON_POOL_MAX,
		.count_pad = !!(in->flags & NEURON_POOL_COUNT_PAD),
	};
	/* Output columns whose whole window lies inside the input's columns. */
	u32 wlo = (pl + sw - 1) / sw, whi = W >= Kw ? (W - Kw + pl) / sw + 1 : 0;
	int vector = x->strides[3] == 1 && o->strides[3] == 1;
	u32 n, c, c0 = 0, ho, wo, kh, kw, done;

	whi = whi < Wo ? whi : Wo;
	/* Rows too narrow for the vector path: eight channels at a time. */
	if (Wo < 8 && neuron_pool_channels_ok())
		c0 = C - C % 8;
	for (n = 0; n < N; n++)
	for (c = 0; c < c0; c += 8)
	for (ho = 0; ho < Ho; ho++) {
		row.ih0 = (s64)ho * p[NEURON_WIN_STRIDE_H] - p[NEURON_WIN_PAD_TOP];
		for (wo = 0; wo < Wo; wo++)
			neuron_pool_channels(&row, px + at4(x, n, c, 0, 0), x->strides[1], x->strides[3], W,
					     po + at4(o, n, c, ho, wo), o->strides[1], wo);
	}
	for (n = 0; n < N; n++)
	for (c = c0; c < C; c++)
	for (ho = 0; ho < Ho; ho++) {
		done = 0;
		if (vector && wlo < whi) {
			row.ih0 = (s64)ho * p[NEURON_WIN_STRIDE_H] - p[NEURON_WIN_PAD_TOP];
			done = neuron_pool_row(&row, px + at4(x, n, c, 0, 0), po + at4(o, n, c, ho, 0), wlo, whi);
		}
		for (wo = 0; wo < Wo; wo++) {
			float acc = 0.0f;
			u32 count = 0;

			if (wo == wlo && done > wlo)
				wo = done;	/* the vector path computed [wlo, done) */
			if (wo >= Wo)
				break;
			for (kh = 0; kh < Kh; kh++) {
				s64 ih = (s64)ho * p[NEURON_WIN_STRIDE_H] - p[NEURON_WIN_PAD_TOP] + kh;

				if (ih < 0 || ih >= H)
					continue;
				for (kw = 0; kw < Kw; kw++) {
					s64 iw = (s64)wo * sw - pl + kw;
					float v;

					if (iw < 0 || iw >= W)
						continue;
					v = px[at4(x, n, c, ih, iw)];
					if (in->sub == NEURON_POOL_MAX)
						acc = !count || v > acc || v != v ? v : acc;
					else
						acc = acc + v;
					count++;
				}
			}
			if (in->sub == NEURON_POOL_AVG)
				acc = acc / (float)((in->flags & NEURON_POOL_COUNT_PAD) ? Kh * Kw : count);
			po[at4(o, n, c, ho, wo)] = acc;
		}
	}
}

/* Each instruction's step, as the table in engine_insn.c names it. */
NEURON_EXEC(nop)
{
	(void)in;
	(void)descs;
	(void)slots;
	(void)scratch;
	return NEURON_ISA_OK;
}

NEURON_EXEC(fill)
{
	(void)scratch;
	op_fill(&descs[in->operand[0]], in, slots);
	return NEURON_ISA_OK;
}

NEURON_EXEC(copy)
{
	(void)scratch;
	op_copy(&descs[in->operand[0]], &descs[in->operand[1]], slots);
	return NEURON_ISA_OK;
}

NEURON_EXEC(elementwise)
{
	(void)scratch;
	if (descs[in->operand[0]].dtype != NEURON_DT_F32) {
		neuron_typed_elementwise(in, &descs[in->operand[0]], &descs[in->operand[1]],
					 in->opcode == NEURON_OP_BINARY ? &descs[in->operand[2]] : NULL,
					 slots);
		return NEURON_ISA_OK;
	}
	op_elementwise(in, &descs[in->operand[0]], &descs[in->operand[1]],
		       in->opcode == NEURON_OP_BINARY ? &descs[in->operand[2]] : NULL, slots);
	return NEURON_ISA_OK;
}

NEURON_EXEC(matmul)
{
	if (descs[in->operand[0]].dtype == NEURON_DT_I32) {
		neuron_typed_matmul(&descs[in->operand[0]], &descs[in->operand[1]], &descs[in->operand[2]],
				    in->flags & NEURON_MATMUL_BIAS ? &descs[in->operand[3]] : NULL, slots);
		return NEURON_ISA_OK;
	}
	op_matmul(in, &descs[in->operand[0]], &descs[in->operand[1]], &descs[in->operand[2]],
		  in->flags & NEURON_MATMUL_BIAS ? &descs[in->operand[3]] : NULL, slots, scratch);
	return NEURON_ISA_OK;
}

NEURON_EXEC(rows)
{
	(void)scratch;
	if (in->opcode == NEURON_OP_REDUCE &&
	    (in->sub == NEURON_RED_ARGMAX || in->sub == NEURON_RED_ARGMIN ||
	     descs[in->operand[1]].dtype == NEURON_DT_F64)) {
		neuron_typed_reduce(in, &descs[in->operand[0]], &descs[in->operand[1]], slots);
		return NEURON_ISA_OK;
	}
	op_rows(in, &descs[in->operand[0]], &descs[in->operand[1]], slots);
	return NEURON_ISA_OK;
}

NEURON_EXEC(cast)
{
	(void)scratch;
	neuron_typed_cast(&descs[in->operand[0]], &descs[in->operand[1]], in->flags, slots);
	return NEURON_ISA_OK;
}

NEURON_EXEC(gather)
{
	(void)scratch;
	return op_gather(&descs[in->operand[0]], &descs[in->operand[1]], &descs[in->operand[2]], slots);
}

NEURON_EXEC(scatter)
{
	(void)scratch;
	return neuron_typed_scatter(in, &descs[in->operand[0]], &descs[in->operand[1]],
				    &descs[in->operand[2]], slots);
}

NEURON_EXEC(layernorm)
{
	(void)scratch;
	op_layernorm(in, &descs[in->operand[0]], &descs[in->operand[1]], &descs[in->operand[2]],
		     &descs[in->operand[3]], slots);
	return NEURON_ISA_OK;
}

NEURON_EXEC(conv2d)
{
	op_conv2d(in, &descs[in->operand[0]], &descs[in->operand[1]], &descs[in->operand[2]],
		  in->flags & NEURON_CONV_BIAS ? &descs[in->operand[3]] : NULL, slots, scratch);
	return NEURON_ISA_OK;
}

NEURON_EXEC(pool2d)
{
	(void)scratch;
	op_pool2d(in, &descs[in->operand[0]], &descs[in->operand[1]], slots);
	return NEURON_ISA_OK;
}

u32 neuron_engine_step(const struct neuron_engine_program *prog, u32 index,
		       const struct neuron_engine_slot *slots,
		       const struct neuron_engine_slot *scratch)
{
	const struct neuron_insn *in = &prog->insns[index];
	const struct neuron_insn_info *info = neuron_engine_insn_info(in->opcode);

	/* Validated: a compute or NOP row, which has a step. */
	return info->exec ? info->exec(in, prog->descs, slots, scratch) : NEURON_ISA_OK;
}
