// SPDX-License-Identifier: GPL-2.0
/*
 * Engine: the fast CONV2D path, in GCC vector extensions with per-function
 * target attributes, chosen at run time (AVX-512, AVX2 with FMA).
 *
 * Lanes are output channels: a block of two vectors of channels (16 with
 * AVX2, 32 with AVX-512) of one group, whose weights are packed into
 * scratch memory tap by tap ([ci][kh][kw][channel]). For each output
 * position every lane runs the reference's chain exactly,
 * acc = fma(x, w, acc) over the group's input channels, kernel rows and
 * kernel columns in that order; a tap in the padding is skipped for all
 * lanes at once, since they share the position. So the bits are the
 * reference's. A register block holds six neighbouring output columns
 * (away from the borders, where no tap is skipped) or one (at the
 * borders). When the packed weights do not fit the scratch, the input
 * channels run in chunks and the partial sums wait in the output, each
 * lane's chain unbroken. op_conv2d then adds the bias and applies relu.
 */
#include "neuron_engine.h"

typedef float conv_v8f __attribute__((vector_size(32), aligned(4)));
typedef float conv_v16f __attribute__((vector_size(64), aligned(4)));

#ifdef __CHECKER__
conv_v8f __builtin_ia32_vfmaddps256(conv_v8f a, conv_v8f b, conv_v8f c);
conv_v16f __builtin_ia32_vfmaddps512_mask(conv_v16f a, conv_v16f b, conv_v16f c,
					  unsigned short mask, int rounding);
#endif

#define CONV_COLS	6	/* output columns per register block */

/* Lanes past the block's channels repeat its last one, never stored. */
#define CONV_LANE(l)	((l) < cos ? (l) : cos - 1)

/* Element (n, c, h, w) of the input, output or weights. */
static inline u64 conv_at(const u64 *s, u64 n, u64 c, u64 h, u64 w)
{
	return n * s[0] + c * s[1] + h * s[2] + w * s[3];
}

/*
 * One register block: @cols output columns from @wo (CONV_COLS, whose
 * taps are all inside, or 1 with checks) of row @ho, over input channels
 * [ci0, ci1) of the packed weights @wp, continuing the sums in the output
 * when @ci0 > 0.
 */
#define CONV_BLOCK(vec, width, fma, cols, checked)				\
do {										\
	vec a0[cols], a1[cols];							\
	float t_[2 * (width)];							\
	u32 p_, ci_, kh_, kw_, l_;						\
										\
	for (p_ = 0; p_ < (cols); p_++) {					\
		a0[p_] = a1[p_] = (vec){ 0 };					\
		if (!ci0)							\
			continue;						\
		for (l_ = 0; l_ < 2 * (width); l_++)				\
			t_[l_] = c->o[conv_at(c->os, n, co0 + CONV_LANE(l_), ho, wo + p_)]; \
		a0[p_] = *(const vec *)t_;					\
		a1[p_] = *(const vec *)(t_ + (width));				\
	}								\
	for (ci_ = ci0; ci_ < ci1; ci_++)					\
	for (kh_ = 0; kh_ < c->kh; kh_++) {					\
		s64 ih_ = (s64)ho * c->sh - c->pt + (s64)kh_ * c->dh;		\
		const float *xr_;						\
										\
		if (ih_ < 0 || ih_ >= c->h)					\
			continue;						\
		xr_ = c->x + conv_at(c->xs, n, c->c0 + ci_, ih_, 0);		\
		for (kw_ = 0; kw_ < c->kw; kw_++) {				\
			const float *w_ = wp + (((u64)(ci_ - ci0) * c->kh + kh_) * c->kw + kw_) * \
					  2 * (width);				\
			vec w0 = *(const vec *)w_;				\
			vec w1 = *(const vec *)(w_ + (width));			\
			s64 iw_ = (s64)wo * c->sw - c->pl + (s64)kw_ * c->dw;	\
										\
			_Pragma("GCC unroll 8")					\
			for (p_ = 0; p_ < (cols); p_++) {			\
				s64 at_ = iw_ + (s64)p_ * c->sw;		\
				vec xv;						\
										\
				if ((checked) && (at_ < 0 || at_ >= c->w))	\
					continue;				\
				xv = xr_[at_ * c->xs[3]] - (vec){ 0 };		\
				a0[p_] = fma(xv, w0, a0[p_]);			\
				a1[p_] = fma(xv, w1, a1[p_]);			\
			}							\
		}								\
	}									\
	for (p_ = 0; p_ < (cols); p_++) {					\
		*(vec *)t_ = a0[p_];						\
		*(vec *)(t_ + (width)) = a1[p_];				\
		for (l_ = 0; l_ < 2 * (width) && l_ < cos; l_++)		\
			c->o[conv_at(c->os, n, co0 + l_, ho, wo + p_)] = t_[l_]; \
	}									\
} while (0)

#define CONV_KERNEL(name, isa, vec, width, fma)				\
static __attribute__((target(isa)))						\
void name(const struct neuron_conv_args *c, u32 n, u32 co0, u32 cos,		\
	  const float *wp, u32 ci0, u32 ci1, u32 ho0, u32 ho1)			\
{										\
	u32 ho, wo;								\
										\
	for (ho = ho0; ho < ho1; ho++) {					\
		for (wo = 0; wo < c->wo; ) {					\
			if (wo >= c->wlo && wo + CONV_COLS <= c->whi) {		\
				CONV_BLOCK(vec, width, fma, CONV_COLS, 0);	\
				wo += CONV_COLS;				\
			} else {						\
				CONV_BLOCK(vec, width, fma, 1, 1);		\
				wo++;						\
			}							\
		}								\
	}									\
}

#define FMA8(a, b, c)	__builtin_ia32_vfmaddps256((a), (b), (c))
#define FMA16(a, b, c)	__builtin_ia32_vfmaddps512_mask((a), (b), (c), (unsigned short)0xffff, 4)

CONV_KERNEL(conv_avx2, "avx2,fma", conv_v8f, 8, FMA8)
CONV_KERNEL(conv_avx512, "avx512f", conv_v16f, 16, FMA16)

u32 neuron_conv_lanes(void)
{
	return neuron_cpu_has_avx512f() ? 32 : neuron_cpu_has_avx2_fma() ? 16 : 0;
}

int neuron_conv_block(const struct neuron_conv_args *c, u32 n, u32 co0, u32 cos,
		      const struct neuron_engine_slot *scratch)
{
	u32 lanes = neuron_conv_lanes(), taps = c->kh * c->kw, chunk, ci0, ci1, ci, t, l;
	float *wp = scratch ? scratch->base : NULL;

	if (!lanes || !wp || !cos || cos > lanes || (u64)taps * lanes * 4 > scratch->size)
		return 0;
	/* Input channels whose packed weights fit the scratch at once. */
	chunk = (u32)(scratch->size / ((u64)taps * lanes * 4));
	for (ci0 = 0; ci0 < c->cig; ci0 = ci1) {
		ci1 = c->cig - ci0 < chunk ? c->cig : ci0 + chunk;
		for (ci = ci0; ci < ci1; ci++)
			for (t = 0; t < taps; t++)
				for (l = 0; l < lanes; l++)
					wp[((u64)(ci - ci0) * taps + t) * lanes + l] =
						c->wt[conv_at(c->ws, co0 + (l < cos ? l : cos - 1),
							      ci, t / c->kw, t % c->kw)];
		if (lanes == 32)
			conv_avx512(c, n, co0, cos, wp, ci0, ci1, 0, c->ho);
		else
			conv_avx2(c, n, co0, cos, wp, ci0, ci1, 0, c->ho);
	}
	return 1;
}
