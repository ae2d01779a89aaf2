// SPDX-License-Identifier: GPL-2.0
/*
 * Engine: CONV2D of images with few input channels (the stem of a CNN:
 * three colours into 16 to 64 channels, often 7x7 or 3x3 of stride 2),
 * output channels in the vector lanes, as a direct convolution.
 *
 * The matrix product (engine_conv.c) gathers every output position's
 * window into panels, and with three input channels each gathered tap
 * feeds few products: gathering a strided window cost a third of
 * ResNet-50's first convolution. Here nothing is gathered: for each tap
 * an input element is broadcast to every lane and multiplies one vector
 * of weights per block of output channels; a register block holds up to
 * four vectors of channels by up to twelve neighbouring output columns.
 * An output row's results wait channels-last in scratch memory and go
 * into the output's planes by W x W transposes, or as they are into an
 * output laid out channels last.
 *
 * Bits: each lane runs the reference's chain, acc = fma(x, w, acc) from +0
 * over input channels, kernel rows and kernel columns in that order; a tap
 * in the padding is skipped, as the reference skips it (so the packed
 * layout's definition, which multiplies the padding by zero, is the same
 * only for finite weights: with another, the call declines). Then the
 * bias, relu keeping NaN, and the clamp, as the reference.
 *
 * Written once over a vector of W floats and built for AVX2 (8 lanes),
 * AVX-512F (16) and, for tests, 16 lanes under the AVX2 target.
 */
#include "engine_insn.h"
#include "engine_transpose.h"

typedef float nw_v8f __attribute__((vector_size(32), aligned(4)));
typedef int nw_v8i __attribute__((vector_size(32), aligned(4)));
typedef float nw_v16f __attribute__((vector_size(64), aligned(4)));
typedef int nw_v16i __attribute__((vector_size(64), aligned(4)));

#ifdef __CHECKER__
nw_v8f __builtin_ia32_vfmaddps256(nw_v8f a, nw_v8f b, nw_v8f c);
nw_v16f __builtin_ia32_vfmaddps512_mask(nw_v16f a, nw_v16f b, nw_v16f c, unsigned short m, int r);
#endif

#define NW_FMA8(a, b, c)	__builtin_ia32_vfmaddps256((a), (b), (c))
#define NW_FMA16(a, b, c)	\
	__builtin_ia32_vfmaddps512_mask((a), (b), (c), (unsigned short)0xffff, 4)
#define NW_FMA_HALVES(a, b, c)	NEURON_FMA_HALVES(nw_v16f, nw_v8f, NW_FMA8, a, b, c)

/* Input channels per group this path takes: the products per gathered tap stay few. */
#define NW_MAX_CIG	4

/* One call's operands: batch @n, output channels [co0, co0 + cos). */
struct nw_conv {
	const struct neuron_conv_args *c;
	const float *x;		/* the group's first input channel of image n */
	float *o;		/* output channel co0 of image n */
	const float *wp;	/* weights [cig][kh][kw][cp], zeros past cos */
	const float *bias;	/* [cp], zeros past cos */
	float *stage;		/* one output row, [wo][cp] */
	u32 cos, cp;
};

/*
 * NW_BLOCK: output row @ho, columns [wo, wo + NP), channel vectors
 * [vb, vb + NV) of the block (each W lanes), finished into the stage.
 * @checked: some tap of a column falls in the padding, or the block
 * passes the row's end: then each column's taps are checked, and only
 * the @cnt first columns are stored.
 * @SW, @XS: the stride and the input's column stride (constants where
 * they are 1 or 2, so that a block's taps are one pointer's offsets).
 */
#define NW_BLOCK(V, I, W, FMA, NV, NP, checked, cnt, SW, XS)			\
do {										\
	V acc_[NV][NP], wv_[NV];							\
	u32 v_, p_, ci_, kh_, kw_;						\
										\
	_Pragma("GCC unroll 4")							\
	for (v_ = 0; v_ < (NV); v_++)						\
		_Pragma("GCC unroll 12")					\
		for (p_ = 0; p_ < (NP); p_++)					\
			acc_[v_][p_] = (V){ 0 };					\
	for (ci_ = 0; ci_ < c->cig; ci_++)					\
	for (kh_ = 0; kh_ < c->kh; kh_++) {					\
		s64 ih_ = (s64)ho * c->sh - c->pt + (s64)kh_ * c->dh;		\
		const float *xr_, *wr_;						\
										\
		if (ih_ < 0 || ih_ >= c->h)					\
			continue;						\
		xr_ = q->x + (u64)ci_ * c->xs[1] + (u64)ih_ * c->xs[2];	\
		wr_ = q->wp + ((u64)ci_ * c->kh + kh_) * c->kw * q->cp + (u64)vb * (W); \
		for (kw_ = 0; kw_ < c->kw; kw_++, wr_ += q->cp) {		\
			s64 iw_ = (s64)wo * (SW) - c->pl + (s64)kw_ * c->dw;	\
										\
			_Pragma("GCC unroll 4")					\
			for (v_ = 0; v_ < (NV); v_++)				\
				wv_[v_] = *(const V *)(wr_ + v_ * (W));		\
			_Pragma("GCC unroll 12")				\
			for (p_ = 0; p_ < (NP); p_++) {				\
				s64 at_ = iw_ + (s64)p_ * (SW);			\
				V xv_;						\
										\
				if ((checked) && (p_ >= (cnt) || at_ < 0 || at_ >= c->w)) \
					continue;				\
				xv_ = xr_[at_ * (s64)(XS)] - (V){ 0 };		\
				_Pragma("GCC unroll 4")				\
				for (v_ = 0; v_ < (NV); v_++)			\
					acc_[v_][p_] = FMA(xv_, wv_[v_], acc_[v_][p_]); \
			}							\
		}								\
	}									\
	_Pragma("GCC unroll 12")						\
	for (p_ = 0; p_ < (NP) && (!(checked) || p_ < (cnt)); p_++)		\
		_Pragma("GCC unroll 4")						\
		for (v_ = 0; v_ < (NV); v_++) {					\
			V r_ = acc_[v_][p_];					\
										\
			if (c->bias)						\
				r_ = r_ + *(const V *)(q->bias + (vb + v_) * (W)); \
			if (c->relu)						\
				r_ = (V)((I)r_ & ((r_ > (V){ 0 }) | (r_ != r_))); \
			if (c->clamp)						\
				r_ = NEURON_CONV_BOUND_V(V, I, r_, c->hi - (V){ 0 }); \
			*(V *)(q->stage + (u64)(wo + p_) * q->cp + (vb + v_) * (W)) = r_; \
		}								\
} while (0)

/*
 * nw_block_<sfx>_<NV>_<tag>_<checked>(q, ho, wo, vb, cnt): one NW_BLOCK as
 * a function of its own, so that each frame holds one block's
 * accumulators (spilled, with redzones, under KASAN).
 */
#define NW_BLOCK_FN(sfx, isa, V, I, W, FMA, NV, NP, tag, SW, XS, checked)	\
static __attribute__((target(isa), __noinline__))				\
void nw_block_##sfx##_##NV##_##tag##_##checked(const struct nw_conv *q, u32 ho, u32 wo, \
					       u32 vb, u32 cnt)			\
{										\
	const struct neuron_conv_args *c = q->c;				\
										\
	NW_BLOCK(V, I, W, FMA, NV, NP, checked, cnt, SW, XS);			\
}

/* The blocks of @NV vectors of channels: strides 1 and 2 over contiguous rows, and any. */
#define NW_BLOCKS(sfx, isa, V, I, W, FMA, NV, NP)				\
NW_BLOCK_FN(sfx, isa, V, I, W, FMA, NV, NP, s1, 1, 1, 0)			\
NW_BLOCK_FN(sfx, isa, V, I, W, FMA, NV, NP, s1, 1, 1, 1)			\
NW_BLOCK_FN(sfx, isa, V, I, W, FMA, NV, NP, s2, 2, 1, 0)			\
NW_BLOCK_FN(sfx, isa, V, I, W, FMA, NV, NP, s2, 2, 1, 1)			\
NW_BLOCK_FN(sfx, isa, V, I, W, FMA, NV, NP, sx, c->sw, c->xs[3], 0)		\
NW_BLOCK_FN(sfx, isa, V, I, W, FMA, NV, NP, sx, c->sw, c->xs[3], 1)

/*
 * One output row for channel vectors [vb, vb + NV), in blocks of NP
 * columns: unchecked where every tap of each is inside the input,
 * checked at the borders and past the row's end.
 */
#define NW_ROW(sfx, NV, NP, tag)						\
do {										\
	for (wo = 0; wo < c->wo; wo += (NP)) {					\
		if (wo >= c->wlo && wo + (NP) <= c->whi)			\
			nw_block_##sfx##_##NV##_##tag##_0(q, ho, wo, vb, NP);	\
		else								\
			nw_block_##sfx##_##NV##_##tag##_1(q, ho, wo, vb,	\
				c->wo - wo < (NP) ? c->wo - wo : (NP));		\
	}									\
} while (0)

/* NW_ROW for @nv vectors of channels, each count with its columns per block. */
#define NW_ROWS(sfx, P1, P2, P3, P4, tag)					\
do {										\
	if (nv == 1)								\
		NW_ROW(sfx, 1, P1, tag);					\
	else if (nv == 2)							\
		NW_ROW(sfx, 2, P2, tag);					\
	else if (nv == 3)							\
		NW_ROW(sfx, 3, P3, tag);					\
	else									\
		NW_ROW(sfx, 4, P4, tag);					\
} while (0)

/*
 * nw_rows_<sfx>(q): every output row of the call. Channel vectors go in
 * blocks of up to NVMAX (NVMAX x P accumulators fit the registers).
 */
#define NW_KERNEL(sfx, isa, V, I, W, FMA, ZLO, ZHI, NVMAX, P1, P2, P3, P4)	\
NEURON_TRANSPOSE_FN(nw_transpose_##sfx, isa, V, W, ZLO, ZHI)			\
NW_BLOCKS(sfx, isa, V, I, W, FMA, 1, P1)					\
NW_BLOCKS(sfx, isa, V, I, W, FMA, 2, P2)					\
NW_BLOCKS(sfx, isa, V, I, W, FMA, 3, P3)					\
NW_BLOCKS(sfx, isa, V, I, W, FMA, 4, P4)					\
										\
static __attribute__((target(isa)))						\
void nw_rows_##sfx(const struct nw_conv *q)					\
{										\
	const struct neuron_conv_args *c = q->c;				\
	u32 vectors = q->cp / (W), ho, wo, vb, nv, g, l;			\
	u64 done;								\
										\
	for (ho = 0; ho < c->ho; ho++) {					\
		for (vb = 0; vb < vectors; vb += nv) {				\
			nv = vectors - vb < (NVMAX) ? vectors - vb : (NVMAX);	\
			if (c->xs[3] == 1 && c->sw == 1)			\
				NW_ROWS(sfx, P1, P2, P3, P4, s1);		\
			else if (c->xs[3] == 1 && c->sw == 2)			\
				NW_ROWS(sfx, P1, P2, P3, P4, s2);		\
			else							\
				NW_ROWS(sfx, P1, P2, P3, P4, sx);		\
		}								\
		/* Channels last: each column's channels as they are. */	\
		for (wo = 0; c->os[1] == 1 && wo < c->wo; wo++) {		\
			float *ob = q->o + (u64)ho * c->os[2] + (u64)wo * c->os[3]; \
			const float *sg = q->stage + (u64)wo * q->cp;		\
										\
			for (l = 0; l + (W) <= q->cos; l += (W))		\
				*(V *)(ob + l) = *(const V *)(sg + l);		\
			for (; l < q->cos; l++)					\
				ob[l] = sg[l];					\
		}								\
		/* Into the planes: whole vectors of channels by transposes	\
		 * (the last columns one by one), the rest lane by lane. */	\
		for (g = 0; c->os[1] != 1 && g < vectors; g++) {		\
			float *ob = q->o + (u64)g * (W) * c->os[1] + (u64)ho * c->os[2]; \
			const float *sg = q->stage + (u64)g * (W);		\
										\
			done = (g + 1) * (W) <= q->cos ?			\
			       nw_transpose_##sfx(sg, q->cp, q->cp, c->wo, ob, c->os[1], 1) : 0; \
			for (l = 0; l < (W) && g * (W) + l < q->cos; l++)	\
				for (wo = (u32)done; wo < c->wo; wo++)		\
					ob[(u64)l * c->os[1] + wo] = sg[(u64)wo * q->cp + l]; \
		}								\
	}									\
}

/*
 * AVX2: sixteen registers, so at most twelve accumulators; AVX-512 (and
 * its logic on AVX2, in halves): up to 24 (four vectors of channels by
 * six columns, or two by twelve).
 */
NW_KERNEL(avx2, "avx2,fma", nw_v8f, nw_v8i, 8, NW_FMA8, NEURON_ZIPLO8, NEURON_ZIPHI8, 2, 8, 6, 6, 6)
NW_KERNEL(avx512, "avx512f", nw_v16f, nw_v16i, 16, NW_FMA16, NEURON_ZIPLO16, NEURON_ZIPHI16, 4, 12, 10, 6, 5)
#ifndef __KERNEL__	/* tests only: neuron_simd_set_thread() */
NW_KERNEL(wide, "avx2,fma", nw_v16f, nw_v16i, 16, NW_FMA_HALVES, NEURON_ZIPLO16, NEURON_ZIPHI16, 4, 12, 10, 6, 5)
#endif

/* Element (co, ci, kh, kw) of the weights, as given or packed. */
static float nw_weight(const struct neuron_conv_args *c, u32 co, u32 ci, u32 kh, u32 kw)
{
	if (c->packed)
		return c->wt[(((u64)(co / NEURON_CONV_PACK_ROWS) * c->cig + ci) * c->kh * c->kw +
			      (u64)kh * c->kw + kw) * NEURON_CONV_PACK_ROWS + co % NEURON_CONV_PACK_ROWS];
	return c->wt[co * c->ws[0] + ci * c->ws[1] + kh * c->ws[2] + kw * c->ws[3]];
}

int neuron_conv_narrow(const struct neuron_conv_args *c, u32 n, u32 co0, u32 cos,
		       const struct neuron_engine_slot *scratch)
{
	u32 level = neuron_simd_level(), lanes = level == NEURON_SIMD_AVX2 ? 8 : 16;
	u32 taps = c->cig * c->kh * c->kw, cp = (cos + lanes - 1) / lanes * lanes, co, t;
	struct nw_conv q = {
		.c = c, .cos = cos, .cp = cp,
		.x = c->x + n * c->xs[0] + (u64)c->c0 * c->xs[1],
		.o = c->o + n * c->os[0] + (u64)co0 * c->os[1],
	};
	float *wp = scratch ? scratch->base : NULL, *bias;

	if (level == NEURON_SIMD_SCALAR || c->accumulate || c->cig > NW_MAX_CIG || !cos ||
	    (c->os[3] != 1 && c->os[1] != 1) || c->wo < 8 || !wp ||
	    ((u64)taps * cp + cp + (u64)c->wo * cp) * 4 > scratch->size)
		return 0;
	bias = wp + (u64)taps * cp;
	for (t = 0; t < taps; t++)
		for (co = 0; co < cp; co++) {
			float v = co < cos ? nw_weight(c, co0 + co, t / (c->kh * c->kw),
							t / c->kw % c->kh, t % c->kw) : 0.0f;
			union { float f; u32 u; } b = { .f = v };

			/* Packed weights multiply the padding by zero: only finite ones skip it alike. */
			if (c->packed && (b.u & 0x7f800000u) == 0x7f800000u)
				return 0;
			wp[(u64)t * cp + co] = v;
		}
	for (co = 0; co < cp; co++)
		bias[co] = c->bias && co < cos ? c->bias[(u64)(co0 + co) * c->bs] : 0.0f;
	q.wp = wp;
	q.bias = bias;
	q.stage = bias + cp;
	if (level == NEURON_SIMD_AVX512)
		nw_rows_avx512(&q);
#ifndef __KERNEL__
	else if (level == NEURON_SIMD_WIDE_ON_AVX2)
		nw_rows_wide(&q);
#endif
	else
		nw_rows_avx2(&q);
	return 1;
}
