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
 *
 * Most convolutions take the gemm path first (neuron_conv_gemm, below);
 * this one covers the rest (non-finite weights, scattered outputs).
 */
#include "neuron_engine.h"
#include "engine_gather.h"

typedef float conv_v8f __attribute__((vector_size(32), aligned(4)));
typedef float conv_v16f __attribute__((vector_size(64), aligned(4)));

#ifdef __CHECKER__
conv_v8f __builtin_ia32_vfmaddps256(conv_v8f a, conv_v8f b, conv_v8f c);
conv_v16f __builtin_ia32_vfmaddps512_mask(conv_v16f a, conv_v16f b, conv_v16f c,
					  unsigned short mask, int rounding);
conv_v8f __builtin_ia32_gathersiv8sf(conv_v8f src, const float *base,
				      int __attribute__((vector_size(32))) index, conv_v8f mask,
				      int scale);
#endif

/* The pointer type of AVX's masked load (which needs no alignment). */
typedef float conv_v8m __attribute__((vector_size(32)));

#ifdef __CHECKER__
conv_v8f __builtin_ia32_maskloadps256(const conv_v8m *p, int __attribute__((vector_size(32))) mask);
#endif

/* AVX2's masked gather of eight floats (the builtin's name differs). */
#ifdef __clang__
#define CONV_GATHER(src, base, index, mask)	__builtin_ia32_gatherd_ps256(src, base, index, mask, 4)
#else
#define CONV_GATHER(src, base, index, mask)	__builtin_ia32_gathersiv8sf(src, base, index, mask, 4)
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

/*
 * The gemm path: out[co][p] = sum over k of w[co][k] * col[k][p] with
 * k = (ci, kh, kw) in the reference's order and p = (ho, wo), a matrix
 * product whose B operand, the im2col matrix, is never stored whole.
 *
 * Blocks, as in BLIS: CG_NC positions by CG_KC taps of the columns are
 * gathered from the input straight into panels of CG_PW positions (L2),
 * once for all the output channels; then up to CG_MC output channels of
 * weights are packed in blocks of CG_ROWS rows, k-major (L2), unless the
 * compiler packed them; for each panel, which stays in L1, every block
 * of rows runs a register block of CG_ROWS channels by CG_PW positions
 * (AVX2: 12 accumulators, 2 panel vectors and a broadcast; with 16 lanes,
 * whole panels four or two at once, CG_TILE6XN, the others twelve rows
 * by one panel, CG_TILE12).
 * Rows and positions past the ends are zeros, computed but never stored.
 *
 * Bits: each output runs acc = fma(x, w, acc) over k in order, its partial
 * sums waiting in the output across blocks of k (starting from it with
 * NEURON_CONV_ACCUMULATE), then adds the bias and applies relu, as the
 * reference does. Weights the compiler packed
 * (NEURON_CONV_PACKED) are already in the blocks of rows, so they are read
 * in place, with no copy and no check, since their definition multiplies
 * the padding by zero too. The reference skips a tap in the
 * padding where this path multiplies a zero: fma(0, w, acc) is acc again
 * for every finite w (acc is never -0, as sums that start at +0 cannot
 * become -0), so the path gives up, before storing anything, when a
 * weight as given is not finite.
 */
#define CG_KC		256
#define CG_NC		256
#define CG_MC		192
#define CG_PW		16	/* positions per panel: two AVX2 vectors */
#define CG_ROWS		NEURON_CONV_PACK_ROWS	/* the packed layout's blocks */
#define CG_B_FLOATS	(CG_KC * CG_NC)
#define CG_A_FLOATS	(CG_KC * CG_MC)

/* What one call gathers and multiplies: one image, one group. */
struct conv_gemm {
	const struct neuron_conv_args *c;
	const float *x;		/* the image's first channel of the group */
	const float *xend;	/* past its last element */
	const float *w;		/* the first row of weights */
	float *o;		/* the first output channel */
	u32 co0, M, K, P, taps;
	int packed;		/* w is in blocks of CG_ROWS rows, k-major: read in place */
};

static inline s64 conv_min(s64 a, s64 b)
{
	return a < b ? a : b;
}

/* Where tap k of the block reads: its channel's offset and row and column shifts. */
struct conv_tap {
	u64 offset;
	s32 dh, dw;
};

static void conv_taps(const struct conv_gemm *q, u32 k0, u32 k1, struct conv_tap *tap)
{
	const struct neuron_conv_args *c = q->c;
	u32 k, ci = k0 / q->taps, t = k0 % q->taps;

	for (k = k0; k < k1; k++) {
		tap[k - k0].offset = ci * c->xs[1];
		tap[k - k0].dh = (s32)((s64)(t / c->kw) * c->dh - c->pt);
		tap[k - k0].dw = (s32)((s64)(t % c->kw) * c->dw - c->pl);
		if (++t == q->taps) {
			t = 0;
			ci++;
		}
	}
}

typedef int conv_v8i __attribute__((vector_size(32), aligned(4)));
typedef unsigned int conv_v8u __attribute__((vector_size(32), aligned(4)));

/*
 * Where each of a panel's positions reads, for the vector gather: its
 * input row and column before the tap's shifts, and their offset.
 */
struct conv_lanes {
	conv_v8u row[2], col[2], base[2];
};

/* Lanes past the positions get a row that no shift brings inside. */
#define CONV_NO_ROW	0xc0000000u

static __attribute__((target("avx2,fma")))
void conv_lanes(const struct conv_gemm *q, u32 pb, struct conv_lanes *l)
{
	const struct neuron_conv_args *c = q->c;
	u32 ho = pb / c->wo, wo = pb % c->wo, j;
	u32 row[CG_PW], col[CG_PW], base[CG_PW];

	for (j = 0; j < CG_PW; j++) {
		row[j] = CONV_NO_ROW;
		col[j] = 0;
		if (pb + j < q->P) {
			row[j] = ho * c->sh;
			col[j] = wo * c->sw;
			if (++wo == c->wo) {
				wo = 0;
				ho++;
			}
		}
		base[j] = row[j] * (u32)c->xs[2] + col[j] * (u32)c->xs[3];
	}
	for (j = 0; j < 2; j++) {
		l->row[j] = *(const conv_v8u *)(row + 8 * j);
		l->col[j] = *(const conv_v8u *)(col + 8 * j);
		l->base[j] = *(const conv_v8u *)(base + 8 * j);
	}
}

/*
 * Tap @tp of one panel by AVX2 gathers: a lane reads where its row and
 * column, shifted by the tap, fall inside the input, and is zero elsewhere
 * (its offset is then 0 too, should a CPU or emulator read it anyway).
 * Offsets are 32-bit: conv_gather_fits() says when they are.
 */
static inline __attribute__((target("avx2,fma")))
void conv_gather_tap(const struct conv_gemm *q, const struct conv_tap *tp,
		     const struct conv_lanes *l, float *dst)
{
	const struct neuron_conv_args *c = q->c;
	conv_v8u h = (conv_v8u){ 0 } + (u32)c->h, w = (conv_v8u){ 0 } + (u32)c->w;
	u32 shift = (u32)tp->offset + (u32)tp->dh * (u32)c->xs[2] + (u32)tp->dw * (u32)c->xs[3];
	u32 j;

	for (j = 0; j < 2; j++) {
		conv_v8i inside = (conv_v8i)(l->row[j] + (u32)tp->dh < h) &
				  (conv_v8i)(l->col[j] + (u32)tp->dw < w);

		*(conv_v8f *)(dst + 8 * j) =
			CONV_GATHER((conv_v8f){ 0 }, q->x, (conv_v8i)(l->base[j] + shift) & inside,
				    (conv_v8f)inside);
	}
}

/*
 * Tap @tp of one panel of stride 1 over contiguous columns, by masked
 * loads: each run of positions within an output row reads one stretch of
 * an input row, its lanes outside the input (and the other runs' lanes)
 * masked off and zero. Returns 0, having written nothing, when a load's
 * 64 bytes would pass the image's input: masked lanes must not fault, but
 * QEMU's emulation faults on them, so every byte loaded lies inside.
 */
static inline __attribute__((target("avx2,fma")))
int conv_masked_tap(const struct conv_gemm *q, const struct conv_tap *tp,
		    const struct neuron_run *run, u32 runs, float *dst)
{
	const struct neuron_conv_args *c = q->c;
	static const int lanes[8] = { 0, 1, 2, 3, 4, 5, 6, 7 };
	conv_v8i lane = *(const conv_v8i *)lanes, v0 = { 0 }, v1 = { 0 };
	u32 r;

	for (r = 0; r < runs; r++) {
		s64 ih = run[r].ih + tp->dh, iw = run[r].iw + tp->dw;
		/* Lanes [lo, hi) read columns iw - at + lane, inside [0, w). */
		s64 lo = run[r].at, hi = run[r].at + run[r].len;
		uintptr_t at;

		if (ih < 0 || ih >= c->h)
			continue;
		if (lo < run[r].at - iw)
			lo = run[r].at - iw;
		if (hi > run[r].at - iw + c->w)
			hi = run[r].at - iw + c->w;
		if (lo >= hi)
			continue;
		/* Where lane 0 would read (never read itself unless inside). */
		at = (uintptr_t)(q->x + tp->offset + (u64)ih * c->xs[2]) +
		     (uintptr_t)((iw - (s64)run[r].at) * (s64)sizeof(float));
		if (at < (uintptr_t)q->x || at + CG_PW * sizeof(float) > (uintptr_t)q->xend)
			return 0;
		v0 |= (conv_v8i)__builtin_ia32_maskloadps256(
			(const conv_v8m *)at, (lane >= (int)lo) & (lane < (int)hi));
		v1 |= (conv_v8i)__builtin_ia32_maskloadps256(
			(const conv_v8m *)(at + 8 * sizeof(float)), (lane + 8 >= (int)lo) & (lane + 8 < (int)hi));
	}
	*(conv_v8f *)dst = (conv_v8f)v0;
	*(conv_v8f *)(dst + 8) = (conv_v8f)v1;
	return 1;
}

/* Every offset of the image's input, and its dimensions, fit 31 bits. */
static int conv_gather_fits(const struct conv_gemm *q)
{
	const struct neuron_conv_args *c = q->c;
	u64 extent = (u64)(c->cig - 1) * c->xs[1] + (u64)(c->h - 1) * c->xs[2] +
		     (u64)(c->w - 1) * c->xs[3];

	return extent < (1ull << 30) && c->h < (1u << 29) && c->w < (1u << 29) &&
	       (u64)c->ho * c->sh < (1u << 29) && (u64)c->wo * c->sw < (1u << 29) &&
	       (u64)(c->kh - 1) * c->dh + c->pt < (1u << 29) &&
	       (u64)(c->kw - 1) * c->dw + c->pl < (1u << 29);
}

/*
 * A 1x1 convolution of stride 1 over whole rows reads position p at p:
 * no padding before the input, and none after it either, so that every
 * output position is an input position (the output no larger than the
 * input). Padding at the bottom or right would put output positions past
 * the input's last element, where the reads in place would leave the
 * tensor (and its buffer).
 */
static int conv_plane(const struct neuron_conv_args *c)
{
	return c->kh == 1 && c->kw == 1 && c->sh == 1 && c->sw == 1 && !c->pt && !c->pl &&
	       c->ho <= c->h && c->wo <= c->w && c->xs[3] == 1 &&
	       (c->ho == 1 || (c->xs[2] == c->w && c->wo == c->w));
}

/* Runs of a panel that conv_pack_even() takes (a row at least CG_PW / 4 wide). */
#define CG_EVEN_RUNS	4

/*
 * A panel's taps [k0, k1) of stride 2 (contiguous input rows), into @dst
 * (CG_PW floats a tap) as neuron_gather_even() reads them, but kernel tap
 * by kernel tap across the input channels: each run's row, first column
 * and lanes are worked out once per kernel row and column, not once per
 * input channel too. Returns 0 when a load would leave the input; the
 * caller then reads the panel's every tap again, tap by tap.
 */
static __attribute__((target("avx2,fma"), __noinline__))
int conv_pack_even(const struct conv_gemm *q, const struct neuron_run *run, u32 runs,
		   u32 k0, u32 k1, float *dst)
{
	static const int lanes[8] = { 0, 1, 2, 3, 4, 5, 6, 7 };
	const struct neuron_conv_args *c = q->c;
	gather_v8i lane = *(const gather_v8i *)lanes, m0[CG_EVEN_RUNS], m1[CG_EVEN_RUNS];
	s64 at[CG_EVEN_RUNS], span = q->xend - q->x;
	u32 ci0 = k0 / q->taps, ci1 = (k1 - 1) / q->taps, t, ci, r, n;
	int use0[CG_EVEN_RUNS], use1[CG_EVEN_RUNS];

	for (t = 0; t < q->taps; t++) {
		s64 dh = (s64)(t / c->kw) * c->dh - c->pt, dw = (s64)(t % c->kw) * c->dw - c->pl;

		for (n = 0, r = 0; r < runs; r++) {
			s64 ih = run[r].ih + dh, iw = run[r].iw + dw;
			s64 lo, hi, first;

			if (ih < 0 || ih >= c->h)
				continue;
			neuron_even_span(&run[r], iw, c->w, &lo, &hi);
			if (lo >= hi)
				continue;
			/* Element of lane 0 from the channel's start; 31 read from it. */
			first = ih * (s64)c->xs[2] + iw - 2 * (s64)run[r].at;
			if (first + (s64)(ci0 * c->xs[1]) < 0 ||
			    first + (s64)(ci1 * c->xs[1]) + 2 * NEURON_RUN_LANES - 1 > span)
				return 0;
			at[n] = first;
			use0[n] = lo < 8;
			use1[n] = hi > 8;
			m0[n] = (lane >= (int)lo) & (lane < (int)hi);
			m1[n] = (lane + 8 >= (int)lo) & (lane + 8 < (int)hi);
			n++;
		}
		for (ci = ci0; ci <= ci1; ci++) {
			u32 k = ci * q->taps + t;
			const float *x = q->x + ci * c->xs[1];
			gather_v8i v0 = { 0 }, v1 = { 0 };
			float *d;

			if (k < k0 || k >= k1)
				continue;
			for (r = 0; r < n; r++) {
				if (use0[r])
					v0 |= (gather_v8i)gather_evens8(x + at[r]) & m0[r];
				if (use1[r])
					v1 |= (gather_v8i)gather_evens8(x + at[r] + 16) & m1[r];
			}
			d = dst + (u64)(k - k0) * CG_PW;
			*(gather_v8f *)d = (gather_v8f)v0;
			*(gather_v8f *)(d + 8) = (gather_v8f)v1;
		}
	}
	return 1;
}

/*
 * Gather col[k0:k1][g:g1] panel by panel (each CG_PW positions by the
 * block's taps, written in order), zeros for taps in the padding and for
 * positions past P. A panel's positions fall in runs along output rows;
 * each run is zeros, then the taps inside the input (copied with the
 * stride), then zeros.
 */
static __attribute__((target("avx2,fma")))
void conv_pack_cols(const struct conv_gemm *q, const struct conv_tap *tap,
		    u32 k0, u32 k1, u32 g, u32 g1, float *pack)
{
	const struct neuron_conv_args *c = q->c;
	int plane = conv_plane(c);
	int masked = c->sw == 1 && c->xs[3] == 1 && c->w < (1u << 30);
	int strided = c->sw == 2 && c->xs[3] == 1 && c->w < (1u << 30);
	int gather = !masked && conv_gather_fits(q);
	struct neuron_plane plane_of = {
		.x = q->x, .end = q->xend, .row = c->xs[2], .h = c->h, .w = c->w,
	};
	struct conv_lanes lanes;
	u32 pb, k, i, r, runs;

	for (pb = g; pb < g1; pb += CG_PW) {
		float *dst = pack + (pb - g) * CG_KC;
		struct neuron_run run[NEURON_RUN_LANES];
		u32 at;

		if (plane && q->P - pb >= CG_PW) {
			for (k = k0; k < k1; k++, dst += CG_PW) {
				const float *src = q->x + tap[k - k0].offset + pb;

				*(conv_v8f *)dst = *(const conv_v8f *)src;
				*(conv_v8f *)(dst + 8) = *(const conv_v8f *)(src + 8);
			}
			continue;
		}

		runs = neuron_runs(pb, q->P, c->wo, c->sh, c->sw, run);
		at = runs ? run[runs - 1].at + run[runs - 1].len : 0;
		/* Stride 2: kernel tap by kernel tap across the input channels. */
		if (strided && runs <= CG_EVEN_RUNS && conv_pack_even(q, run, runs, k0, k1, dst))
			continue;
		if (gather)
			conv_lanes(q, pb, &lanes);
		for (k = k0; k < k1; k++, dst += CG_PW) {
			const struct conv_tap *tp = &tap[k - k0];

			/* One whole run, inside the input, of stride 1 or 2: two vectors. */
			if (at == CG_PW && runs == 1 && c->sw <= 2 && c->xs[3] == 1) {
				s64 ih = run[0].ih + tp->dh, iw = run[0].iw + tp->dw;

				if (ih >= 0 && ih < c->h && iw >= 0 && iw + c->sw * CG_PW <= c->w) {
					const float *src = q->x + tp->offset + (u64)ih * c->xs[2] + iw;

					if (c->sw == 1) {
						*(conv_v8f *)dst = *(const conv_v8f *)src;
						*(conv_v8f *)(dst + 8) = *(const conv_v8f *)(src + 8);
					} else {
						*(conv_v8f *)dst = gather_evens8(src);
						*(conv_v8f *)(dst + 8) = gather_evens8(src + 16);
					}
					continue;
				}
			}
			if (masked && conv_masked_tap(q, tp, run, runs, dst))
				continue;
			if (strided && neuron_gather_even(&plane_of, tp->offset, tp->dh, tp->dw, run, runs, dst))
				continue;
			if (gather) {
				conv_gather_tap(q, tp, &lanes, dst);
				continue;
			}
			for (i = at; i < CG_PW; i++)
				dst[i] = 0.0f;
			for (r = 0; r < runs; r++) {
				s64 ih = run[r].ih + tp->dh, iw = run[r].iw + tp->dw;
				u32 len = run[r].len, lo = 0, hi = len;
				float *d = dst + run[r].at;
				const float *xr;

				if (ih < 0 || ih >= c->h) {
					for (i = 0; i < len; i++)
						d[i] = 0.0f;
					continue;
				}
				/* Positions [lo, hi) of the run read inside the row. */
				if (iw < 0)
					lo = (u32)conv_min(len, (-iw + c->sw - 1) / c->sw);
				if (iw + (s64)(len - 1) * c->sw >= c->w)
					hi = iw >= c->w ? lo : (u32)conv_min(len, (c->w - 1 - iw) / c->sw + 1);
				if (hi < lo)
					hi = lo;
				xr = q->x + tp->offset + (u64)ih * c->xs[2];
				for (i = 0; i < lo; i++)
					d[i] = 0.0f;
				if (c->sw == 1 && c->xs[3] == 1) {
					const float *src = xr + iw;

					for (i = lo; i < hi; i++)
						d[i] = src[i];
				} else {
					for (i = lo; i < hi; i++)
						d[i] = xr[(u64)(iw + (s64)i * c->sw) * c->xs[3]];
				}
				for (i = hi; i < len; i++)
					d[i] = 0.0f;
			}
		}
	}
}

/*
 * Pack rows [m0, m0 + rows) of the weights, taps [k0, k1), in blocks of
 * CG_ROWS rows (the last padded with zeros), k-major within a block.
 */
static __attribute__((target("avx2,fma")))
void conv_pack_rows(const struct conv_gemm *q, u32 m0, u32 rows, u32 k0, u32 k1, float *apack)
{
	u64 ws = q->c->ws[0];
	u32 m, k, r, valid;

	for (m = 0; m < rows; m += CG_ROWS) {
		float *blk = apack + (u64)m * CG_KC;
		const float *w[CG_ROWS];

		/* Rows past the last repeat it, then are zeroed. */
		valid = rows - m < CG_ROWS ? rows - m : CG_ROWS;
		for (r = 0; r < CG_ROWS; r++)
			w[r] = q->w + (u64)(m0 + m + (r < valid ? r : valid - 1)) * ws;
		for (k = k0; k < k1; k++, blk += CG_ROWS)
			for (r = 0; r < CG_ROWS; r++)
				blk[r] = r < valid ? w[r][k] : 0.0f;
	}
}

/*
 * After the last tap: acc + bias, then relu keeping NaN, both as the
 * reference's scalar operations.
 */
#define CG_FINISH(acc, row)							\
do {										\
	if (c->bias)								\
		(acc) = (acc) + (c->bias[(u64)(q->co0 + (row)) * c->bs] - (conv_v8f){ 0 }); \
	if (c->relu)								\
		(acc) = (conv_v8f)((conv_v8i)(acc) &				\
				   ((conv_v8i)((acc) > 0.0f) | (conv_v8i)((acc) != (acc)))); \
	if (c->clamp)								\
		(acc) = NEURON_CONV_BOUND_V(conv_v8f, conv_v8i, (acc),		\
					    c->hi - (conv_v8f){ 0 });		\
} while (0)

/* One tap of the register block: every row's two fma chains. */
#define CG_STEP(c0, c1, ap, bp)							\
do {										\
	conv_v8f b0_ = *(const conv_v8f *)(bp);					\
	conv_v8f b1_ = *(const conv_v8f *)((bp) + 8);				\
	u32 r_;									\
										\
	_Pragma("GCC unroll 8")							\
	for (r_ = 0; r_ < CG_ROWS; r_++) {					\
		conv_v8f av_ = (ap)[r_] - (conv_v8f){ 0 };			\
										\
		(c0)[r_] = FMA8(av_, b0_, (c0)[r_]);				\
		(c1)[r_] = FMA8(av_, b1_, (c1)[r_]);				\
	}									\
} while (0)

/*
 * A whole register block (CG_ROWS rows by CG_PW positions), every loop
 * unrolled so that the sums stay in registers from the first load to the
 * last store.
 */
static inline __attribute__((target("avx2,fma"), always_inline))
void conv_tile_whole(const struct conv_gemm *q, const float *ap, const float *bp, u64 bs, u32 m,
		     u32 nb, u32 k0, u32 k1, const float *next, const float *bnext)
{
	const struct neuron_conv_args *c = q->c;
	int start = k0 || c->accumulate, finish = k1 == q->K;
	conv_v8f c0[CG_ROWS], c1[CG_ROWS];
	/* Cache lines of the next block's weights, one fetched per tap. */
	u32 r, k, lines = next ? ((k1 - k0) * CG_ROWS + 15) / 16 : 0;

	_Pragma("GCC unroll 8")
	for (r = 0; r < CG_ROWS; r++) {
		const float *out = q->o + (u64)(m + r) * c->os[1] + nb;

		c0[r] = start ? *(const conv_v8f *)out : (conv_v8f){ 0 };
		c1[r] = start ? *(const conv_v8f *)(out + 8) : (conv_v8f){ 0 };
	}
	if (lines > k1 - k0)
		lines = k1 - k0;
	for (k = 0; k < lines; k++, bp += bs, ap += CG_ROWS) {
		__builtin_prefetch(next + 16 * k);
		CG_STEP(c0, c1, ap, bp);
	}
	/* Columns read in place: the next panel's, one line a tap. */
	for (k = 0; bnext && k < k1 - k0 - lines; k++, bp += bs, ap += CG_ROWS) {
		__builtin_prefetch(bnext + k * bs);
		CG_STEP(c0, c1, ap, bp);
	}
	for (k = bnext ? 0 : k1 - k0 - lines; k; k--, bp += bs, ap += CG_ROWS)
		CG_STEP(c0, c1, ap, bp);
	_Pragma("GCC unroll 8")
	for (r = 0; r < CG_ROWS; r++) {
		float *out = q->o + (u64)(m + r) * c->os[1] + nb;

		if (finish) {
			CG_FINISH(c0[r], m + r);
			CG_FINISH(c1[r], m + r);
		}
		*(conv_v8f *)out = c0[r];
		*(conv_v8f *)(out + 8) = c1[r];
	}
}

/*
 * One register block: rows [m, m + valid) by the panel's @cols positions
 * from @nb; the sums continue those in the output when k0 > 0 and are
 * finished after the last tap.
 */
static __attribute__((target("avx2,fma")))
void conv_tile(const struct conv_gemm *q, const float *ap, const float *bp, u64 bs, u32 m, u32 valid,
	       u32 nb, u32 cols, u32 k0, u32 k1, const float *next, const float *bnext)
{
	const struct neuron_conv_args *c = q->c;
	conv_v8f c0[CG_ROWS], c1[CG_ROWS];
	float t[CG_PW];
	u32 r, j, k;

	if (valid == CG_ROWS && cols == CG_PW) {
		conv_tile_whole(q, ap, bp, bs, m, nb, k0, k1, next, bnext);
		return;
	}

	for (r = 0; r < CG_ROWS; r++) {
		const float *out = q->o + (u64)(m + r) * c->os[1] + nb;

		c0[r] = c1[r] = (conv_v8f){ 0 };
		if ((!k0 && !c->accumulate) || r >= valid)
			continue;
		if (cols == CG_PW) {
			c0[r] = *(const conv_v8f *)out;
			c1[r] = *(const conv_v8f *)(out + 8);
			continue;
		}
		NEURON_LOAD_PART(t, out, cols, CG_PW);
		c0[r] = *(conv_v8f *)t;
		c1[r] = *(conv_v8f *)(t + 8);
	}
	if (cols <= 8) {
		/* A panel's last positions, in its first vector only. */
		for (k = k1 - k0; k; k--, bp += bs, ap += CG_ROWS) {
			conv_v8f b0 = *(const conv_v8f *)bp;

			_Pragma("GCC unroll 8")
			for (r = 0; r < CG_ROWS; r++)
				c0[r] = FMA8(ap[r] - (conv_v8f){ 0 }, b0, c0[r]);
		}
	}
	for (k = cols <= 8 ? 0 : k1 - k0; k; k--, bp += bs, ap += CG_ROWS)
		CG_STEP(c0, c1, ap, bp);
	for (r = 0; r < valid; r++) {
		float *out = q->o + (u64)(m + r) * c->os[1] + nb;

		if (k1 == q->K) {
			CG_FINISH(c0[r], m + r);
			CG_FINISH(c1[r], m + r);
		}
		if (cols == CG_PW) {
			*(conv_v8f *)out = c0[r];
			*(conv_v8f *)(out + 8) = c1[r];
			continue;
		}
		*(conv_v8f *)t = c0[r];
		*(conv_v8f *)(t + 8) = c1[r];
		for (j = 0; j < cols; j++)
			out[j] = t[j];
	}
}

/*
 * Two whole blocks of rows (rows [m, m + 12), weights @ap0 and @ap1) by
 * a panel's last @cols positions (at most 8, one vector): twelve
 * accumulators, so that a narrow panel costs each row half of what one
 * block of rows would.
 */
static __attribute__((target("avx2,fma")))
void conv_tile_narrow(const struct conv_gemm *q, const float *ap0, const float *ap1, const float *bp,
		      u32 m, u32 nb, u32 cols, u32 k0, u32 k1)
{
	const struct neuron_conv_args *c = q->c;
	conv_v8f acc[2 * CG_ROWS];
	float t[8];
	u32 r, j, k;

	for (r = 0; r < 2 * CG_ROWS; r++) {
		const float *out = q->o + (u64)(m + r) * c->os[1] + nb;

		acc[r] = (conv_v8f){ 0 };
		if (!k0 && !c->accumulate)
			continue;
		NEURON_LOAD_PART(t, out, cols, 8);
		acc[r] = *(conv_v8f *)t;
	}
	for (k = k1 - k0; k; k--, bp += CG_PW, ap0 += CG_ROWS, ap1 += CG_ROWS) {
		conv_v8f b0 = *(const conv_v8f *)bp;

		_Pragma("GCC unroll 8")
		for (r = 0; r < CG_ROWS; r++) {
			acc[r] = FMA8(ap0[r] - (conv_v8f){ 0 }, b0, acc[r]);
			acc[CG_ROWS + r] = FMA8(ap1[r] - (conv_v8f){ 0 }, b0, acc[CG_ROWS + r]);
		}
	}
	for (r = 0; r < 2 * CG_ROWS; r++) {
		float *out = q->o + (u64)(m + r) * c->os[1] + nb;

		if (k1 == q->K)
			CG_FINISH(acc[r], m + r);
		*(conv_v8f *)t = acc[r];
		for (j = 0; j < cols; j++)
			out[j] = t[j];
	}
}

/*
 * A panel's positions from which the last ones run one at a time as
 * matrix-vector products (conv_gemv): fewer than this many.
 */
#define CG_GEMV_COLS	3
#define CG_GEMV_BLOCKS	4	/* blocks of rows at once */

/*
 * One position (column @col of the outputs, @bp its taps at stride
 * CG_PW) for @blocks blocks of CG_ROWS rows from @m (@w their weights,
 * @block apart, k-major): each block's rows are the first six lanes of
 * one vector, so one fma serves six rows where a register block would
 * spend a vector on each. Every output is the same fma chain over the
 * taps as in a register block, finished the same way. The last tap's
 * weights are copied: a vector load there would read past the block.
 */
static inline __attribute__((target("avx2,fma"), always_inline))
void conv_gemv_blocks(const struct conv_gemm *q, const float *w, u64 block, const u32 blocks,
		      const float *bp, u32 m, u32 valid, u32 col, u32 k0, u32 k1)
{
	const struct neuron_conv_args *c = q->c;
	int start = k0 || c->accumulate, finish = k1 == q->K;
	conv_v8f acc[CG_GEMV_BLOCKS];
	float t[8];
	u32 b, r, k, n = k1 - k0;

	for (b = 0; b < blocks; b++) {
		for (r = 0; r < 8; r++) {
			u32 row = m + b * CG_ROWS + r;

			t[r] = start && r < CG_ROWS && row < m + valid ?
			       q->o[(u64)row * c->os[1] + col] : 0.0f;
		}
		acc[b] = *(conv_v8f *)t;
	}
	for (k = 0; k + 1 < n; k++) {
		conv_v8f x = bp[(u64)k * CG_PW] - (conv_v8f){ 0 };

		_Pragma("GCC unroll 4")
		for (b = 0; b < blocks; b++)
			acc[b] = FMA8(*(const conv_v8f *)(w + b * block + (u64)k * CG_ROWS), x, acc[b]);
	}
	for (b = 0; b < blocks; b++) {
		conv_v8f x = bp[(u64)k * CG_PW] - (conv_v8f){ 0 };

		NEURON_LOAD_PART(t, w + b * block + (u64)k * CG_ROWS, CG_ROWS, 8);
		acc[b] = FMA8(*(conv_v8f *)t, x, acc[b]);
		*(conv_v8f *)t = acc[b];
		for (r = 0; r < CG_ROWS; r++) {
			u32 row = m + b * CG_ROWS + r;
			float y = t[r];

			if (row >= m + valid)
				break;
			if (finish) {
				if (c->bias)
					y = y + c->bias[(u64)(q->co0 + row) * c->bs];
				if (c->relu && !(y > 0.0f))
					y = y != y ? y : 0.0f;
				if (c->clamp)
					y = NEURON_CONV_BOUND(y, c->hi);
			}
			q->o[(u64)row * c->os[1] + col] = y;
		}
	}
}

/* Rows [m, m + rows) by one position, CG_GEMV_BLOCKS blocks at a time. */
static __attribute__((target("avx2,fma")))
void conv_gemv(const struct conv_gemm *q, const float *w, u64 block, const float *bp, u32 m,
	       u32 rows, u32 col, u32 k0, u32 k1)
{
	u32 done;

	for (done = 0; done + CG_GEMV_BLOCKS * CG_ROWS <= rows; done += CG_GEMV_BLOCKS * CG_ROWS)
		conv_gemv_blocks(q, w + done / CG_ROWS * block, block, CG_GEMV_BLOCKS, bp, m + done,
				 CG_GEMV_BLOCKS * CG_ROWS, col, k0, k1);
	for (; done < rows; done += CG_ROWS)
		conv_gemv_blocks(q, w + done / CG_ROWS * block, block, 1, bp, m + done,
				 rows - done < CG_ROWS ? rows - done : CG_ROWS, col, k0, k1);
}

/*
 * Rows up to which a 1x1 convolution of stride 1 over whole rows reads
 * its whole panels in place (the input's channels are rows of positions)
 * instead of copying them: with few rows, the copy costs a large share of
 * the products it feeds.
 */
#define CG_DIRECT_ROWS	256

/*
 * The weights of the block of rows from @row (a multiple of CG_ROWS) at
 * tap k0: the compiler's packed ones in place, else the block packed
 * here for rows from @mc.
 */
static inline const float *conv_block_weights(const struct conv_gemm *q, const float *apack, u32 mc,
					      u32 row, u32 k0)
{
	return q->packed ? q->w + ((u64)row / CG_ROWS * q->K + k0) * CG_ROWS :
			   apack + (u64)(row - mc) * CG_KC;
}

/*
 * Two whole blocks of rows (rows [m, m + 12), weights @ap0 and @ap1) by
 * a panel's @cols positions (9 to CG_PW = 16, one 16-lane vector; the
 * panel holds zeros past them, never stored): twelve
 * accumulators, each row's chain as conv_tile_whole() runs it. Written
 * once over 16 lanes: for AVX-512F, and (tests only) for AVX2, where each
 * vector is two halves.
 */
typedef float conv_w16f __attribute__((vector_size(64), aligned(4)));
typedef int conv_w16i __attribute__((vector_size(64), aligned(4)));

#define CG_FMA_HALVES(a, b, c)	NEURON_FMA_HALVES(conv_w16f, conv_v8f, FMA8, a, b, c)

/*
 * Floats of the compiler's packed weights fetched ahead of the 16-lane
 * tiles while the first panel of a block reads them (from memory, when a
 * whole model's weights pass through the cache).
 */
#define CG_AHEAD	384

/* CG_FINISH over 16 lanes: the bias, then relu keeping NaN. */
#define CG_FINISH16(v, row)							\
do {										\
	if (c->bias)								\
		(v) = (v) + (c->bias[(u64)(q->co0 + (row)) * c->bs] - (conv_w16f){ 0 }); \
	if (c->relu)								\
		(v) = (conv_w16f)((conv_w16i)(v) &				\
				  (((v) > (conv_w16f){ 0 }) | ((v) != (v))));	\
	if (c->clamp)								\
		(v) = NEURON_CONV_BOUND_V(conv_w16f, conv_w16i, (v),		\
					  c->hi - (conv_w16f){ 0 });		\
} while (0)

#define CG_TILE12(name, isa, FMA)						\
static __attribute__((target(isa)))						\
void name(const struct conv_gemm *q, const float *ap0, const float *ap1, const float *bp, \
	  u64 bs, u32 m, u32 nb, u32 cols, u32 k0, u32 k1, int cold)		\
{										\
	const struct neuron_conv_args *c = q->c;				\
	int start = k0 || c->accumulate;					\
	conv_w16f acc[2 * CG_ROWS];						\
	float t[CG_PW];								\
	u32 r, k, j;								\
										\
	_Pragma("GCC unroll 12")						\
	for (r = 0; r < 2 * CG_ROWS; r++) {					\
		const float *out = q->o + (u64)(m + r) * c->os[1] + nb;		\
										\
		if (start && cols < CG_PW) {					\
			NEURON_LOAD_PART(t, out, cols, CG_PW);			\
			acc[r] = *(const conv_w16f *)t;				\
			continue;						\
		}								\
		acc[r] = start ? *(const conv_w16f *)out : (conv_w16f){ 0 };	\
	}									\
	for (k = k0; k < k1; k++, bp += bs, ap0 += CG_ROWS, ap1 += CG_ROWS) {	\
		conv_w16f b = *(const conv_w16f *)bp;				\
										\
		if (cold) {							\
			__builtin_prefetch(ap0 + CG_AHEAD);			\
			__builtin_prefetch(ap1 + CG_AHEAD);			\
		}								\
		_Pragma("GCC unroll 6")						\
		for (r = 0; r < CG_ROWS; r++) {					\
			acc[r] = FMA(ap0[r] - (conv_w16f){ 0 }, b, acc[r]);	\
			acc[CG_ROWS + r] = FMA(ap1[r] - (conv_w16f){ 0 }, b,	\
					       acc[CG_ROWS + r]);		\
		}								\
	}									\
	_Pragma("GCC unroll 12")						\
	for (r = 0; r < 2 * CG_ROWS; r++) {					\
		float *out = q->o + (u64)(m + r) * c->os[1] + nb;		\
		conv_w16f v = acc[r];						\
										\
		if (k1 == q->K)							\
			CG_FINISH16(v, m + r);					\
		if (cols < CG_PW) {						\
			*(conv_w16f *)t = v;					\
			for (j = 0; j < cols; j++)				\
				out[j] = t[j];					\
			continue;						\
		}								\
		*(conv_w16f *)out = v;						\
	}									\
}

CG_TILE12(conv_tile12_avx512, "avx512f", FMA16)
#ifndef __KERNEL__	/* tests only: neuron_simd_set_thread() */
CG_TILE12(conv_tile12_wide, "avx2,fma", CG_FMA_HALVES)
#endif

/*
 * One block of rows (rows [m, m + valid), valid at most CG_ROWS, weights
 * @ap) by @N whole panels side by side (the first at @bp, each @pstep
 * after the one before, each read at stride @bs): 6N accumulators, every
 * tap one broadcast of each row's weight for N panel vectors. Broadcasts,
 * not multiplications, bound the twelve rows by one panel of conv_tile12
 * (AMD EPYC: a 1x1 convolution of 1024 to 256 channels on 14x14 takes 12%
 * less time by two panels, 6 rows, and less again by four), so whole
 * panels go by four or two. Rows past @valid (zeros or the compiler's
 * padding) are computed but neither read nor written. Each stored output
 * runs the same chain as in conv_tile12.
 */
#define CG_TILE6XN(name, isa, FMA, N)						\
static __attribute__((target(isa)))						\
void name(const struct conv_gemm *q, const float *ap, const float *bp, u64 pstep, \
	  u64 bs, u32 m, u32 valid, u32 nb, u32 k0, u32 k1, int cold)		\
{										\
	const struct neuron_conv_args *c = q->c;				\
	int start = k0 || c->accumulate;					\
	conv_w16f acc[(N) * CG_ROWS];						\
	u32 r, k, h;								\
										\
	_Pragma("GCC unroll 6")							\
	for (r = 0; r < CG_ROWS; r++) {						\
		const float *out = q->o + (u64)(m + r) * c->os[1] + nb;		\
										\
		_Pragma("GCC unroll 4")						\
		for (h = 0; h < (N); h++)					\
			acc[h * CG_ROWS + r] = start && r < valid ?		\
				*(const conv_w16f *)(out + h * CG_PW) : (conv_w16f){ 0 }; \
	}									\
	for (k = k0; k < k1; k++, bp += bs, ap += CG_ROWS) {			\
		conv_w16f b[N];							\
										\
		_Pragma("GCC unroll 4")						\
		for (h = 0; h < (N); h++)					\
			b[h] = *(const conv_w16f *)(bp + h * pstep);		\
		if (cold)							\
			__builtin_prefetch(ap + CG_AHEAD);			\
		_Pragma("GCC unroll 6")						\
		for (r = 0; r < CG_ROWS; r++) {					\
			conv_w16f a = ap[r] - (conv_w16f){ 0 };			\
										\
			_Pragma("GCC unroll 4")					\
			for (h = 0; h < (N); h++)				\
				acc[h * CG_ROWS + r] = FMA(a, b[h], acc[h * CG_ROWS + r]); \
		}								\
	}									\
	for (r = 0; r < valid; r++) {						\
		float *out = q->o + (u64)(m + r) * c->os[1] + nb;		\
										\
		for (h = 0; h < (N); h++) {					\
			conv_w16f v = acc[h * CG_ROWS + r];			\
										\
			if (k1 == q->K)						\
				CG_FINISH16(v, m + r);				\
			*(conv_w16f *)(out + h * CG_PW) = v;			\
		}								\
	}									\
}

CG_TILE6XN(conv_tile6x2_avx512, "avx512f", FMA16, 2)
CG_TILE6XN(conv_tile6x4_avx512, "avx512f", FMA16, 4)
#ifndef __KERNEL__	/* tests only: neuron_simd_set_thread() */
CG_TILE6XN(conv_tile6x2_wide, "avx2,fma", CG_FMA_HALVES, 2)
CG_TILE6XN(conv_tile6x4_wide, "avx2,fma", CG_FMA_HALVES, 4)
#endif

/* The 16-lane tiles for this thread's vector width (NULL: none). */
struct conv_tiles16 {
	void (*tile12)(const struct conv_gemm *q, const float *ap0, const float *ap1,
		       const float *bp, u64 bs, u32 m, u32 nb, u32 cols, u32 k0, u32 k1, int cold);
	/* by two and four panels: conv_tile6x2_<isa>, conv_tile6x4_<isa> */
	void (*tile6xn[2])(const struct conv_gemm *q, const float *ap, const float *bp, u64 pstep,
			   u64 bs, u32 m, u32 valid, u32 nb, u32 k0, u32 k1, int cold);
};

static struct conv_tiles16 conv_tiles16(void)
{
	struct conv_tiles16 t = { NULL, { NULL, NULL } };

	switch (neuron_simd_level()) {
	case NEURON_SIMD_AVX512:
		t.tile12 = conv_tile12_avx512;
		t.tile6xn[0] = conv_tile6x2_avx512;
		t.tile6xn[1] = conv_tile6x4_avx512;
		break;
#ifndef __KERNEL__
	case NEURON_SIMD_WIDE_ON_AVX2:
		t.tile12 = conv_tile12_wide;
		t.tile6xn[0] = conv_tile6x2_wide;
		t.tile6xn[1] = conv_tile6x4_wide;
		break;
#endif
	}
	return t;
}

/*
 * Whether the @count panels from position @nb are whole (they end by @g1,
 * the block's end) and read the same way: all in place (before @tail) or
 * all from the copied columns.
 */
static inline int conv_panels_alike(u32 nb, u32 count, u32 g1, u32 tail)
{
	u32 end = nb + count * CG_PW;

	return end <= g1 && (end <= tail || nb >= tail);
}

/*
 * The loops, outermost first: blocks of CG_NC positions, blocks of CG_KC
 * taps (their columns gathered once, for every row), blocks of CG_MC rows
 * (weights packed here unless the compiler did), panels, register blocks.
 */
static __attribute__((target("avx2,fma")))
void conv_gemm_avx2(const struct conv_gemm *q, float *pack)
{
	float *apack = pack + CG_B_FLOATS;
	struct conv_tap *tap = (struct conv_tap *)(apack + CG_A_FLOATS);
	/* One block of rows reads each gathered column once: fewer columns
	 * then stay closer to the register blocks. */
	u32 nc = q->M <= CG_MC ? CG_NC / 4 : CG_NC;
	/* From one block of rows' weights to the next's. */
	u64 block = q->packed ? (u64)q->K * CG_ROWS : (u64)CG_ROWS * CG_KC;
	int direct = q->M <= CG_DIRECT_ROWS && conv_plane(q->c);
	struct conv_tiles16 wide = conv_tiles16();
	u32 g, g1, k0, k1, mc, rows, m, nb, tail, span;

	for (g = 0; g < q->P; g = g1) {
		g1 = q->P - g < nc ? q->P : g + nc;
		/* Read in place, the whole panels; the last, when partial, is copied. */
		tail = direct ? g + (g1 - g) / CG_PW * CG_PW : g;
		for (k0 = 0; k0 < q->K; k0 = k1) {
			k1 = q->K - k0 < CG_KC ? q->K : k0 + CG_KC;
			conv_taps(q, k0, k1, tap);
			if (tail < g1)
				conv_pack_cols(q, tap, k0, k1, tail, g1, pack);
			for (mc = 0; mc < q->M; mc += rows) {
				rows = q->M - mc < CG_MC ? q->M - mc : CG_MC;
				if (!q->packed)
					conv_pack_rows(q, mc, rows, k0, k1, apack);
				for (nb = g; nb < g1; nb += span) {
					u32 cols = (u32)conv_min(CG_PW, q->P - nb), j, n = 0;
					const float *bp = pack + (u64)(nb - tail) * CG_KC;
					const float *bnext = NULL;
					u64 bs = CG_PW;

					if (nb < tail) {
						bs = q->c->xs[1];
						bp = q->x + k0 * bs + nb;
						/* The first block of rows fetches the next panel's. */
						bnext = nb + CG_PW < tail ? bp + CG_PW : NULL;
					}
					/* Whole panels four or two at once, where as many from
					 * this one are whole and read the same way. */
					if (wide.tile12 && cols == CG_PW)
						n = conv_panels_alike(nb, 4, g1, tail) ? 2 :
						    conv_panels_alike(nb, 2, g1, tail) ? 1 : 0;
					span = CG_PW << n;

					if (cols < CG_GEMV_COLS) {
						const float *w = conv_block_weights(q, apack, mc, mc, k0);

						for (j = 0; j < cols; j++)
							conv_gemv(q, w, block, bp + j, mc, rows, nb + j, k0, k1);
						continue;
					}

					for (m = 0; m < rows; m += CG_ROWS) {
						const float *w = conv_block_weights(q, apack, mc, mc + m, k0);
						/* The first panel reads the compiler's weights from
						 * memory: fetch the next block's while this one runs. */
						const float *next = q->packed && nb == g && m + CG_ROWS < rows ?
							w + block : NULL;

						if (n) {
							wide.tile6xn[n - 1](q, w, bp, nb < tail ? CG_PW : CG_PW * CG_KC,
									    bs, mc + m, (u32)conv_min(CG_ROWS, rows - m),
									    nb, k0, k1, q->packed && nb == g);
							continue;
						}
						if (wide.tile12 && cols > 8 && rows - m >= 2 * CG_ROWS) {
							wide.tile12(q, w, w + block, bp, bs, mc + m, nb, cols, k0, k1,
								    q->packed && nb == g);
							m += CG_ROWS;
							continue;
						}
						if (cols <= 8 && rows - m >= 2 * CG_ROWS) {
							conv_tile_narrow(q, w, w + block, bp, mc + m, nb, cols, k0, k1);
							m += CG_ROWS;
							continue;
						}
						conv_tile(q, w, bp, bs, mc + m, (u32)conv_min(CG_ROWS, rows - m), nb,
							  cols, k0, k1, next, m ? NULL : bnext);
					}
				}
			}
		}
	}
}

/* Every weight of rows [0, M) (as given: rows of K) is finite. */
static int conv_weights_finite(const struct conv_gemm *q)
{
	u32 m, k, bad = 0;

	for (m = 0; m < q->M; m++) {
		const u32 *row = (const u32 *)(q->w + (u64)m * q->c->ws[0]);

		for (k = 0; k < q->K; k++)
			bad |= (row[k] & 0x7f800000u) == 0x7f800000u;
	}
	return !bad;
}

int neuron_conv_gemm(const struct neuron_conv_args *c, u32 n, u32 co0, u32 cos,
		     const struct neuron_engine_slot *scratch)
{
	struct conv_gemm q = {
		.c = c, .co0 = co0, .M = cos, .taps = c->kh * c->kw,
		.x = c->x + n * c->xs[0] + c->c0 * c->xs[1],
		.o = c->o + n * c->os[0] + co0 * c->os[1],
		.packed = c->packed,
	};
	u64 k = (u64)c->cig * q.taps, p = (u64)c->ho * c->wo;

	/* Weights [co][k] (or packed) and outputs [co][p] must be rows in memory. */
	if (!neuron_cpu_has_avx2_fma() || !scratch || !scratch->base ||
	    scratch->size < (CG_B_FLOATS + CG_A_FLOATS) * sizeof(float) +
			    CG_KC * sizeof(struct conv_tap) ||
	    !cos || !k || !p || k > 0xffffffffu || p > 0xffffffffu ||
	    (c->packed ? co0 % CG_ROWS :
	     c->ws[3] != 1 || c->ws[2] != c->kw || c->ws[1] != q.taps) ||
	    c->os[3] != 1 || (c->ho > 1 && c->os[2] != c->wo))
		return 0;
	q.w = c->wt + (c->packed ? (u64)co0 * k : co0 * c->ws[0]);
	q.K = (u32)k;
	q.P = (u32)p;
	/* A slice of rows wholly in the bottom padding has no input rows: nothing to read. */
	q.xend = !c->h ? q.x : q.x + (u64)(c->cig - 1) * c->xs[1] + (u64)(c->h - 1) * c->xs[2] +
			       (u64)(c->w - 1) * c->xs[3] + 1;
	if (!q.packed && !conv_weights_finite(&q))
		return 0;
	conv_gemm_avx2(&q, scratch->base);
	return 1;
}

/*
 * CONV2D in bf16 pairs (NEURON_CONV_BF16_PAIRS): MATMUL in pairs of the
 * weights [cos, K] (K = Ci/g * Kh * Kw, as the ISA flattens them) by the
 * windows [K, positions]. A 1x1 convolution of stride 1 without padding
 * over whole rows reads its image in place; others gather the windows of
 * a block of positions into the scratch's upper half (as the input's
 * bits, a padding tap zero), which neuron_gemm_block() leaves alone. The
 * product's sums are the reference's; the residual (accumulate: the
 * block's products go to the scratch after the windows, and the output's
 * values are added to them), the bias and relu follow on each block, as
 * IEEE.
 */
#define PAIRS_WINDOWS	(NEURON_GEMM_SCRATCH / 2)
#define PAIRS_SUMS	65536

/*
 * Whether the index over @count axes (outermost first) of @dims maps to
 * one stride in memory: stored in *@step (1 if every axis has one index).
 */
static int flat_axes(const u32 *dims, const u64 *strides, u32 count, u64 *step)
{
	u64 next = 0;
	int i;

	*step = 1;
	for (i = (int)count - 1; i >= 0; i--) {
		if (dims[i] <= 1)
			continue;
		if (!next)
			*step = strides[i];
		else if (strides[i] != next)
			return 0;
		next = strides[i] * dims[i];
	}
	return 1;
}

/* A run of a tap's row in elements of type T: zeros, [lo, hi) read, zeros. */
#define PAIRS_GATHER_RUN(T)							\
	do {									\
		T *d_ = (T *)dst + k * np + j;					\
		const T *x_ = c->xv;						\
										\
		for (t = 0; t < lo; t++)					\
			d_[t] = 0;						\
		for (; t < hi; t++)						\
			d_[t] = x_[at + (u64)((s64)(wo + t) * c->sw + off) * c->xs[3]]; \
		for (; t < run; t++)						\
			d_[t] = 0;						\
	} while (0)

/* Positions [p0, p0 + np) of each tap of batch @n's windows, rows of @np. */
static void conv_pairs_gather(const struct neuron_conv_args *c, u32 n, u32 p0, u32 np, void *dst)
{
	u32 taps = c->kh * c->kw, esize = c->xhalf ? 2 : 4;
	u64 k, K = (u64)c->cig * taps;

	for (k = 0; k < K; k++) {
		u32 ci = (u32)(k / taps), kh = (u32)(k % taps) / c->kw, kw = (u32)(k % taps) % c->kw;
		s64 off = (s64)kw * c->dw - c->pl;
		u64 base = n * c->xs[0] + (u64)(c->c0 + ci) * c->xs[1];
		u32 ho = p0 / c->wo, wo = p0 % c->wo, j = 0;

		while (j < np) {
			u32 run = c->wo - wo < np - j ? c->wo - wo : np - j, lo = run, hi = run, t;
			s64 ih = (s64)ho * c->sh - c->pt + (s64)kh * c->dh, first, l, h;
			u64 at;

			/* Columns t of the run whose tap lies in the input: [lo, hi). */
			if (ih >= 0 && ih < c->h) {
				first = (s64)wo * c->sw + off;
				l = first >= 0 ? 0 : (-first + c->sw - 1) / c->sw;
				h = (s64)c->w - first <= 0 ? 0 : ((s64)c->w - first + c->sw - 1) / c->sw;
				h = h > run ? run : h;
				l = l > h ? h : l;
				lo = (u32)l;
				hi = (u32)h;
			}
			at = base + (u64)ih * c->xs[2];
			if (esize == 2)
				PAIRS_GATHER_RUN(u16);
			else
				PAIRS_GATHER_RUN(u32);
			j += run;
			ho++;
			wo = 0;
		}
	}
}

/*
 * A block's outputs finished, eight at a time: + the product (@sums,
 * rows of @np, when accumulating), + the bias, relu (NaN kept, -0 to +0),
 * the bound. Called after the vector product ran, so AVX2 is there.
 */
static __attribute__((target("avx2,fma")))
void pairs_finish(const struct neuron_conv_args *c, float *o, const float *sums, u32 co0, u32 cos,
		  u32 np)
{
	u32 r, j;

	for (r = 0; r < cos; r++) {
		float *row = o + r * c->os[1], bias = c->bias ? c->bias[(co0 + r) * c->bs] : 0.0f;
		const float *s = sums + (u64)r * np;
		conv_v8f hv = c->hi - (conv_v8f){ 0 };

		for (j = 0; j + 8 <= np; j += 8) {
			conv_v8f v = *(conv_v8f *)(row + j);

			if (c->accumulate)
				v = *(const conv_v8f *)(s + j) + v;
			if (c->bias)
				v = v + bias;
			if (c->relu)
				v = (conv_v8f)((conv_v8i)v & ((v > 0.0f) | (v != v)));
			if (c->clamp)
				v = NEURON_CONV_BOUND_V(conv_v8f, conv_v8i, v, hv);
			*(conv_v8f *)(row + j) = v;
		}
		for (; j < np; j++) {
			float v = c->accumulate ? s[j] + row[j] : row[j];

			v = c->bias ? v + bias : v;
			if (c->relu && !(v > 0.0f))
				v = v != v ? v : 0.0f;
			if (c->clamp)
				v = NEURON_CONV_BOUND(v, c->hi);
			row[j] = v;
		}
	}
}

int neuron_conv_pairs(const struct neuron_conv_args *c, u32 n, u32 co0, u32 cos,
		      const struct neuron_engine_slot *scratch)
{
	u32 wdims[3] = { c->cig, c->kh, c->kw }, odims[2] = { c->ho, c->wo };
	u32 kind = NEURON_GEMM_PAIRS | (c->whalf ? NEURON_GEMM_A_BF16 : 0) |
		   (c->xhalf ? NEURON_GEMM_B_BF16 : 0);
	u32 esize = c->xhalf ? 2 : 4, rows, cols, p0, np;
	u64 K = (u64)c->cig * c->kh * c->kw, P = (u64)c->ho * c->wo, as_k, os_p, xs_p, bs_k, per;
	const u8 *a = (const u8 *)c->wv + co0 * c->ws[0] * (c->whalf ? 2 : 4), *b;
	u8 *windows = scratch && scratch->base && scratch->size >= NEURON_GEMM_SCRATCH ?
		      (u8 *)scratch->base + PAIRS_WINDOWS : NULL;
	int direct;

	if (!windows || !cos || !K || !P || K > 0xffffffffu || P > 0xffffffffu ||
	    !flat_axes(wdims, c->ws + 1, 3, &as_k) || !flat_axes(odims, c->os + 2, 2, &os_p) ||
	    os_p != 1)
		return 0;
	/* 1x1 of stride 1 over whole rows from the top: the image is the matrix. */
	odims[1] = c->w;
	direct = c->kh == 1 && c->kw == 1 && !c->pt && !c->pl && c->wo == c->w &&
		 (c->ho == 1 || c->sh == 1) && (c->wo == 1 || c->sw == 1) && c->ho <= c->h &&
		 flat_axes(odims, c->xs + 2, 2, &xs_p) && xs_p == 1;
	/* Scratch bytes a position takes: its windows, its products (accumulating). */
	per = (direct ? 0 : esize * K) + (c->accumulate ? 4 * (u64)cos : 0);
	np = !per ? (u32)P : (u32)((PAIRS_WINDOWS - 64) / per < P ? (PAIRS_WINDOWS - 64) / per : P);
	/* Accumulating: the products' block stays in cache (256 KB) for the sums. */
	if (c->accumulate && np > 32 && np > PAIRS_SUMS / cos)
		np = PAIRS_SUMS / cos > 32 ? PAIRS_SUMS / cos : 32;
	if (np >= 64 && np < P)
		np -= np % 32;
	if (!np)
		return 0;
	for (p0 = 0; p0 < P; p0 += np) {
		float *o = c->o + n * c->os[0] + co0 * c->os[1] + p0;
		float *sums;

		np = P - p0 < np ? (u32)(P - p0) : np;
		/*
		 * Accumulating, the products go to the scratch after the
		 * windows (64-byte aligned: the 64 held back above), the
		 * output still holding the residual.
		 */
		sums = (float *)(windows + (direct ? 0 : ((u64)esize * K * np + 63) / 64 * 64));
		if (direct) {
			b = (const u8 *)c->xv + (n * c->xs[0] + c->c0 * c->xs[1] + p0) * esize;
			bs_k = c->xs[1];
		} else {
			conv_pairs_gather(c, n, p0, np, windows);
			b = windows;
			bs_k = np;
		}
		neuron_gemm_block(a, c->ws[0], as_k, b, bs_k, kind, c->accumulate ? sums : o,
				  c->accumulate ? np : c->os[1], cos, np, (u32)K, &rows, &cols, scratch);
		if (rows != cos || cols != np)
			return 0;	/* no vector unit (so the first block): nothing written */
		if (c->bias || c->relu || c->clamp || c->accumulate)
			pairs_finish(c, o, sums, co0, cos, np);
	}
	return 1;
}
