// SPDX-License-Identifier: GPL-2.0
/*
 * Engine: CONV2D of groups with few output channels each (depthwise and
 * grouped convolutions, weights as given), one output channel at a time,
 * neighbouring output columns of a row in the lanes of a vector.
 *
 * All lanes share the chain's taps, in the reference's order: the group's
 * input channels, kernel rows, kernel columns. So each lane runs exactly
 * the reference's chain, acc = fma(x, w, acc) from +0 over the taps inside
 * the input. A kernel row outside the input is skipped for all lanes, as
 * the reference skips it; a tap outside the row for some lanes (padding,
 * or lanes past the last column) leaves those lanes' sums as they were (a
 * select, not a multiplication by zero). Runs of columns whose every tap
 * is inside read their taps as whole vectors, several vectors at once for
 * independent chains; the others as whole vectors where the vector lies
 * inside the channel's plane (AVX2: a plain load, the select keeping the
 * lanes inside the row; AVX-512: a masked load), else lane by lane.
 *
 * Written once over a vector of W floats and built for AVX2 (8 lanes),
 * AVX-512F (16) and, for tests, 16 lanes under the AVX2 target (each
 * vector as two halves), chosen by neuron_simd_level().
 */
#include "engine_insn.h"
#include "engine_transpose.h"

typedef float grp_w8f __attribute__((vector_size(32), aligned(4)));
typedef float grp_w16f __attribute__((vector_size(64), aligned(4)));

#ifdef __CHECKER__
grp_w8f __builtin_ia32_vfmaddps256(grp_w8f a, grp_w8f b, grp_w8f c);
grp_w16f __builtin_ia32_vfmaddps512_mask(grp_w16f a, grp_w16f b, grp_w16f c,
					 unsigned short m, int r);
grp_w16f __builtin_ia32_loadups512_mask(const float *p, grp_w16f src, unsigned short m);
void __builtin_ia32_storeups512_mask(float *p, grp_w16f v, unsigned short m);
grp_w16f __builtin_ia32_vfmaddps512_mask3(grp_w16f a, grp_w16f b, grp_w16f c,
					  unsigned short m, int r);
#define GRP_EVENS8(a, b)	(a)
#define GRP_EVENS16(a, b)	(a)
#else
#define GRP_EVENS8(a, b)	__builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14)
#define GRP_EVENS16(a, b)	\
	__builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
#endif

#define GRP_SPLAT(V, v)	((v) - (V){ 0 })
/* @m's lanes (all ones or zero) take @a, the others @b. */
#define GRP_SEL(V, I, m, a, b)	((V)(((m) & (I)(a)) | (~(m) & (I)(b))))

#define GRP_FMA8(a, b, c)	__builtin_ia32_vfmaddps256((a), (b), (c))
#define GRP_FMA16(a, b, c)	\
	__builtin_ia32_vfmaddps512_mask((a), (b), (c), (unsigned short)0xffff, 4)
#define GRP_FMA_HALVES(a, b, c)	NEURON_FMA_HALVES(grp_w16f, grp_w8f, GRP_FMA8, a, b, c)

/*
 * The W at @p, for a vector that lies wholly inside its channel's plane,
 * lanes [lo, hi) to be kept (the bits @m): AVX2 reads it whole, and MFMA's
 * select keeps those lanes (the others read the row's neighbours and
 * are never used). A masked load (whose masked-out lanes may fault under
 * QEMU's emulation of AVX2, found by the ioctl fuzzer in the VM) cost a
 * fifth of a 3x3 depthwise layer on an AMD EPYC Zen 1.
 */
static const int grp_iota[16] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
#define GRP_LOAD8M(p, lo, hi, m)	((void)(lo), (void)(hi), (void)(m), *(const grp_w8f *)(p))
#define GRP_LOAD_HALVES_M(p, lo, hi, m)	((void)(lo), (void)(hi), (void)(m), *(const grp_w16f *)(p))
/* Lanes @m (bits) of the 16 at @p, zeros elsewhere: masked-out lanes never fault. */
#define GRP_LOAD16(p, lo, hi, m)						\
	__builtin_ia32_loadups512_mask((p), (grp_w16f){ 0 }, (unsigned short)(m))
/*
 * MFMA(V, I, x, w, acc, lo, hi, m): fma(x, w, acc) in lanes [lo, hi) (the
 * bits of @m), acc in the others: a select, or AVX-512's merge-masked FMA.
 */
#define GRP_MFMA_SEL(V, I, FMA, x, w, acc, lo, hi)			\
	GRP_SEL(V, I, (*(const I *)grp_iota >= (int)(lo)) & (*(const I *)grp_iota < (int)(hi)), \
		FMA((x), (w), (acc)), (acc))
#define GRP_MFMA8(V, I, x, w, acc, lo, hi, m)	GRP_MFMA_SEL(V, I, GRP_FMA8, x, w, acc, lo, hi)
#define GRP_MFMA_HALVES(V, I, x, w, acc, lo, hi, m)				\
	GRP_MFMA_SEL(V, I, GRP_FMA_HALVES, x, w, acc, lo, hi)
#define GRP_MFMA16(V, I, x, w, acc, lo, hi, m)					\
	__builtin_ia32_vfmaddps512_mask3((x), (w), (acc), (unsigned short)(m), 4)

/*
 * MSTORE(p, v, n, ok): when @ok, the @n first lanes of @v stored at @p
 * (the others left as they are), and true; else false.
 */
#define GRP_MSTORE16(p, v, n, ok)						\
	((ok) ? (__builtin_ia32_storeups512_mask((p), (v), (unsigned short)((1u << (n)) - 1)), 1) : 0)
#define GRP_NO_MSTORE(p, v, n, ok)	0
/*
 * What one output channel's rows need: its input channels (the group's),
 * its weights [cig][kh][kw] contiguous, its bias, its output.
 */
struct grp_channel {
	const struct neuron_conv_args *c;
	const float *x;		/* the group's first input channel of the image */
	const float *wk;	/* [cig][kh][kw] */
	float *o;		/* the channel's output plane */
	float bias;
	s64 span;		/* (kw - 1) * dw */
};

/*
 * After the chain: + bias, then relu keeping NaN, as the reference; then
 * the @valid first lanes stored at @out, @os apart (by MSTORE where it
 * stores them: AVX-512's masked store, where they are neighbours).
 */
#define GRP_STORE(V, I, W, acc, q, out, valid, MSTORE)			\
do {										\
	V v_ = (acc);								\
	u32 l_;									\
										\
	if ((q)->c->bias)							\
		v_ = v_ + GRP_SPLAT(V, (q)->bias);				\
	if ((q)->c->relu)							\
		v_ = (V)((I)v_ & ((v_ > GRP_SPLAT(V, 0.0f)) | (v_ != v_)));	\
	if ((q)->c->clamp)							\
		v_ = NEURON_CONV_BOUND_V(V, I, v_, GRP_SPLAT(V, (q)->c->hi));	\
	if ((q)->c->os[3] == 1 && (valid) == (W)) {			\
		*(V *)(out) = v_;						\
	} else if (MSTORE((out), v_, (valid), (q)->c->os[3] == 1)) {	\
	} else {								\
		float t_[W];					\
										\
		*(V *)t_ = v_;							\
		for (l_ = 0; l_ < (valid); l_++)				\
			(out)[l_ * (q)->c->os[3]] = t_[l_];			\
	}									\
} while (0)

/* Widest kernel the vector rows take (wider ones: the reference's loop). */
#define GRP_MAX_KW	16

/* ceil(@a / @b) for a > 0: strides 1 and 2 without a division. */
#define GRP_CEILDIV(a, b)	((b) == 1 ? (a) : (b) == 2 ? ((a) + 1) >> 1 : ((a) + (b) - 1) / (b))

/*
 * The W taps of lanes 0.. from element @p: one vector (stride 1), or the
 * even elements of two (@two, stride 2).
 */
#define GRP_LD(V, W, EV, two, p)	\
	((two) ? EV(*(const V *)(p), *(const V *)((p) + (W))) : *(const V *)(p))

/*
 * GRP_WHOLE: @count (1 or 4, a constant) whole vectors as independent
 * chains, the first at row @ho from column @wo (input from @first), the
 * others @step input and @ostep output elements after the one before:
 * neighbouring vectors of the row, or the same columns of the next rows
 * (then every kernel row of each is inside the input, as of the first).
 */
#define GRP_WHOLE(V, I, W, FMA, EV, two, count, step, ostep)			\
do {										\
	V a0 = (V){ 0 }, a1 = (V){ 0 }, a2 = (V){ 0 }, a3 = (V){ 0 };		\
	const s64 st_ = (step);							\
										\
	for (ci = 0; ci < c->cig; ci++)						\
	for (kh = 0; kh < c->kh; kh++) {					\
		s64 ih = (s64)ho * c->sh - c->pt + (s64)kh * c->dh;		\
		const float *p, *wp = q->wk + ((u64)ci * c->kh + kh) * c->kw;	\
										\
		if (ih < 0 || ih >= c->h)					\
			continue;						\
		p = q->x + (u64)ci * c->xs[1] + (u64)ih * c->xs[2] + first;	\
		for (kw = 0; kw < c->kw; kw++, p += c->dw) {			\
			V w_ = GRP_SPLAT(V, wp[kw]);				\
										\
			a0 = FMA(GRP_LD(V, W, EV, two, p), w_, a0);		\
			if ((count) == 1)					\
				continue;					\
			a1 = FMA(GRP_LD(V, W, EV, two, p + st_), w_, a1);	\
			a2 = FMA(GRP_LD(V, W, EV, two, p + 2 * st_), w_, a2);	\
			a3 = FMA(GRP_LD(V, W, EV, two, p + 3 * st_), w_, a3);	\
		}								\
	}									\
	GRP_STORE(V, I, W, a0, q, out, (W), GRP_NO_MSTORE);			\
	if ((count) == 4) {							\
		GRP_STORE(V, I, W, a1, q, out + (ostep), (W), GRP_NO_MSTORE);	\
		GRP_STORE(V, I, W, a2, q, out + 2 * (ostep), (W), GRP_NO_MSTORE); \
		GRP_STORE(V, I, W, a3, q, out + 3 * (ostep), (W), GRP_NO_MSTORE); \
	}									\
} while (0)

/* Edge vectors of a row whose lane tables one channel keeps for all its rows. */
#define GRP_EDGES	4
/* Output rows run at once (as chains) where every kernel row of each is inside. */
#define GRP_ROWS	4

/*
 * GRP_TAP: into @x, lanes [lo, hi) (bits @b0, or @b1 of the 2W read at
 * stride 2) of the vector of taps from element @iw of the row at @xr;
 * the others zeros, or what a whole read found there (MFMA leaves them
 * out). @at: that element's offset in its channel's
 * plane, @plen elements long: a vector read wholly inside the plane
 * (past the row into its neighbours, in the lanes left out) cannot fault.
 */
#define GRP_TAP(V, W, LOAD, EVENS, ANYWHERE, x, xr, iw, at, lo, hi, b0, b1)	\
do {										\
	if (vec && sw == 1 && (ANYWHERE || ((at) >= 0 && (at) + (W) <= plen))) { \
		x = LOAD((xr) + (iw), lo, hi, b0);				\
	} else if (vec && sw == 2 &&						\
		   (ANYWHERE || ((at) >= 0 && (at) + 2 * (W) <= plen))) {	\
		/* Elements [2 lo, 2 hi - 1) of the 2W. */			\
		x = EVENS(LOAD((xr) + (iw), 2 * (lo), 2 * (hi) - 1, b1),	\
			  LOAD((xr) + (iw) + (W), 2 * (lo) - (W), 2 * (hi) - 1 - (W), \
			       (b1) >> (W)));					\
	} else {								\
		float t_[W];							\
										\
		for (l = 0; l < (W); l++)					\
			t_[l] = l >= (lo) && l < (hi) ?				\
				(xr)[((iw) + (s64)l * sw) * c->xs[3]] : 0.0f;	\
		x = *(const V *)t_;						\
	}									\
} while (0)

/*
 * GRP_KERNEL(sfx, isa, W, FMA, LOAD, EVENS, ANYWHERE, MSTORE, MFMA):
 * grp_plane_<sfx>(q), every output of one channel, finished: GRP_ROWS
 * rows at a time where every kernel row of each is inside the input
 * (one chain per row), else row by row (neighbouring vectors of a wide
 * row as chains). Taps of stride 1 are read as vectors, of stride 2 as
 * the even elements of two; others element by element. ANYWHERE: LOAD
 * may reach past the row with the lanes it leaves out (AVX-512's masked
 * load, whose masked-out lanes never fault: the edges of every row then
 * take vectors too).
 */
#define GRP_KERNEL(sfx, isa, W, FMA, LOAD, EVENS, ANYWHERE, MSTORE, MFMA)	\
typedef float grp_vf_##sfx __attribute__((vector_size(4 * (W)), aligned(4)));	\
typedef int grp_vi_##sfx __attribute__((vector_size(4 * (W)), aligned(4)));	\
										\
static __attribute__((target(isa)))						\
void grp_plane_##sfx(const struct grp_channel *q)				\
{										\
	const struct neuron_conv_args *c = q->c;				\
	const s64 sw = c->sw, w = c->w, span = q->span;				\
	const s64 rs = (s64)c->sh * c->xs[2];					\
	const s64 plen = (s64)(c->h - 1) * c->xs[2] + w;			\
	int vec = (sw == 1 || sw == 2) && c->xs[3] == 1;			\
	u32 ho, wo, ci, kh, kw, l, rows, ready = 0;				\
	/* The lanes of each edge vector's taps: the first GRP_EDGES	\
	 * vectors' kept for every row, others' worked out in the last. */	\
	s32 inside_t[GRP_EDGES + 1][GRP_MAX_KW][2];				\
	u32 bits_t[GRP_EDGES + 1][GRP_MAX_KW][2];				\
										\
	for (ho = 0; ho < c->ho; ho += rows) {					\
	s64 top = (s64)ho * c->sh - c->pt;					\
										\
	rows = ho + GRP_ROWS <= c->ho && top >= 0 &&				\
	       top + (GRP_ROWS - 1) * (s64)c->sh + (s64)(c->kh - 1) * c->dh < c->h ? \
	       GRP_ROWS : 1;							\
	for (wo = 0; wo < c->wo; ) {						\
		s64 first = (s64)wo * sw - c->pl;				\
		float *out = q->o + (u64)ho * c->os[2] + (u64)wo * c->os[3];	\
		u32 valid = c->wo - wo < (W) ? c->wo - wo : (W);		\
		grp_vf_##sfx a0, a1, a2, a3;					\
		u32 e_ = wo / (W) < GRP_EDGES ? wo / (W) : GRP_EDGES, kws;	\
		s32 (*inside)[2] = inside_t[e_];				\
		u32 (*bits)[2] = bits_t[e_];					\
		int whole = vec && first >= 0 && wo + (W) <= c->wo &&		\
			    first + (W) * sw + span <= w;			\
										\
		/* Whole vectors: every element read (stride 2: the odd	\
		 * ones too) inside the row; four rows, or four vectors. */	\
		if (whole && rows == GRP_ROWS) {				\
			if (sw == 1)						\
				GRP_WHOLE(grp_vf_##sfx, grp_vi_##sfx, W, FMA, EVENS, 0, 4, rs, c->os[2]); \
			else							\
				GRP_WHOLE(grp_vf_##sfx, grp_vi_##sfx, W, FMA, EVENS, 1, 4, rs, c->os[2]); \
			wo += (W);						\
			continue;						\
		}								\
		if (whole && wo + 4 * (W) <= c->wo &&				\
		    first + 4 * (W) * sw + span <= w) {				\
			if (sw == 1)						\
				GRP_WHOLE(grp_vf_##sfx, grp_vi_##sfx, W, FMA, EVENS, 0, 4, \
					  (W) * sw, (W) * c->os[3]);		\
			else							\
				GRP_WHOLE(grp_vf_##sfx, grp_vi_##sfx, W, FMA, EVENS, 1, 4, \
					  (W) * sw, (W) * c->os[3]);		\
			wo += 4 * (W);						\
			continue;						\
		}								\
		if (whole) {							\
			if (sw == 1)						\
				GRP_WHOLE(grp_vf_##sfx, grp_vi_##sfx, W, FMA, EVENS, 0, 1, 0, 0); \
			else							\
				GRP_WHOLE(grp_vf_##sfx, grp_vi_##sfx, W, FMA, EVENS, 1, 1, 0, 0); \
			wo += (W);						\
			continue;						\
		}								\
		/* Lanes whose tap kw is inside: [lo, hi), the same for	\
		 * every input channel, kernel row and output row. */		\
		/* (A kept vector's lanes are worked out once.) */		\
		kws = e_ < GRP_EDGES && (ready & (1u << e_)) ? 0 : c->kw;	\
		for (kw = 0; kw < kws; kw++) {					\
			s64 iw = first + (s64)kw * c->dw, lo, hi;		\
										\
			lo = iw >= 0 ? 0 : GRP_CEILDIV(-iw, sw);		\
			hi = iw >= w ? 0 : GRP_CEILDIV(w - iw, sw);		\
			hi = hi < (s64)valid ? hi : (s64)valid;			\
			if (lo >= hi)						\
				lo = hi = 0;					\
			inside[kw][0] = (s32)lo;				\
			inside[kw][1] = (s32)hi;				\
			/* The lanes as bits; stride 2: elements [2 lo,	\
			 * 2 hi - 1) of the 2W read. */				\
			bits[kw][0] = ((1u << hi) - 1) & ~((1u << lo) - 1);	\
			bits[kw][1] = hi ? (u32)(((1ull << (2 * hi - 1)) - 1) &	\
					   ~((1ull << (2 * lo)) - 1)) : 0;	\
		}								\
		ready |= e_ < GRP_EDGES ? 1u << e_ : 0;			\
		a0 = a1 = a2 = a3 = (grp_vf_##sfx){ 0 };			\
		for (ci = 0; ci < c->cig; ci++)					\
		for (kh = 0; kh < c->kh; kh++) {				\
			s64 ih = top + (s64)kh * c->dh, ro;			\
			const float *xr, *wp = q->wk + ((u64)ci * c->kh + kh) * c->kw; \
										\
			if (ih < 0 || ih >= c->h)				\
				continue;					\
			ro = ih * (s64)c->xs[2];				\
			xr = q->x + (u64)ci * c->xs[1] + ro;			\
			for (kw = 0; kw < c->kw; kw++) {			\
				s64 iw = first + (s64)kw * c->dw;		\
				s64 lo = inside[kw][0], hi = inside[kw][1];	\
				u32 b0 = bits[kw][0], b1 = bits[kw][1];		\
				grp_vf_##sfx x, w_ = GRP_SPLAT(grp_vf_##sfx, wp[kw]); \
										\
				if (lo >= hi)					\
					continue;				\
				GRP_TAP(grp_vf_##sfx, W, LOAD, EVENS, ANYWHERE, x, xr, \
					iw, ro + iw, lo, hi, b0, b1);		\
				a0 = MFMA(grp_vf_##sfx, grp_vi_##sfx, x, w_, a0, lo, hi, b0); \
				if (rows == 1)					\
					continue;				\
				GRP_TAP(grp_vf_##sfx, W, LOAD, EVENS, ANYWHERE, x, xr + rs, \
					iw, ro + rs + iw, lo, hi, b0, b1);		\
				a1 = MFMA(grp_vf_##sfx, grp_vi_##sfx, x, w_, a1, lo, hi, b0); \
				GRP_TAP(grp_vf_##sfx, W, LOAD, EVENS, ANYWHERE, x, xr + 2 * rs, \
					iw, ro + 2 * rs + iw, lo, hi, b0, b1);		\
				a2 = MFMA(grp_vf_##sfx, grp_vi_##sfx, x, w_, a2, lo, hi, b0); \
				GRP_TAP(grp_vf_##sfx, W, LOAD, EVENS, ANYWHERE, x, xr + 3 * rs, \
					iw, ro + 3 * rs + iw, lo, hi, b0, b1);		\
				a3 = MFMA(grp_vf_##sfx, grp_vi_##sfx, x, w_, a3, lo, hi, b0); \
			}							\
		}								\
		GRP_STORE(grp_vf_##sfx, grp_vi_##sfx, W, a0, q, out, valid, MSTORE); \
		if (rows == GRP_ROWS) {						\
			GRP_STORE(grp_vf_##sfx, grp_vi_##sfx, W, a1, q, out + c->os[2], valid, MSTORE); \
			GRP_STORE(grp_vf_##sfx, grp_vi_##sfx, W, a2, q, out + 2 * c->os[2], valid, MSTORE); \
			GRP_STORE(grp_vf_##sfx, grp_vi_##sfx, W, a3, q, out + 3 * c->os[2], valid, MSTORE); \
		}								\
		wo += (W);							\
	}									\
	}									\
}

GRP_KERNEL(avx2, "avx2,fma", 8, GRP_FMA8, GRP_LOAD8M, GRP_EVENS8, 0, GRP_NO_MSTORE, GRP_MFMA8)

GRP_KERNEL(avx512, "avx512f", 16, GRP_FMA16, GRP_LOAD16, GRP_EVENS16, 1, GRP_MSTORE16, GRP_MFMA16)
#ifndef __KERNEL__	/* tests only: neuron_simd_set_thread() */
GRP_KERNEL(wide, "avx2,fma", 16, GRP_FMA_HALVES, GRP_LOAD_HALVES_M, GRP_EVENS16, 0, GRP_NO_MSTORE, GRP_MFMA_HALVES)
#endif

/*
 * Depthwise convolutions of narrow images, or of images channels last
 * (one input and one output channel per group): W neighbouring channels
 * in the lanes instead. The image is read in place when it is channels
 * last in whole vectors of channels (a block @bs = 1 float on, positions
 * @xp = xs[3] apart), else first laid out channels-last in @pack by
 * blocks of W channels ([cp / W][h][w][W], cp the channels rounded up to
 * W, zeros past them: a block's image is contiguous, for the cache); the
 * weights [taps][cp] in @wpk. Then each output position of W channels
 * runs the reference's chain, a tap outside the input skipped for all
 * lanes alike. Positions of a row none of whose taps is outside it run
 * eight or four at once as independent chains with no test per tap
 * (DWC_WHOLE); the others four at once, each tap tested. Outputs go into
 * planes by transposes of a staged block, into a channels-last output as
 * they are, else lane by lane.
 */
#define DWC_STEP(V, W, FMA, p, acc)						\
do {										\
	s64 iw_ = (s64)(wo + (p)) * c->sw - c->pl + (s64)kw * c->dw;	\
										\
	if ((p) < cnt && iw_ >= 0 && iw_ < c->w)				\
		acc = FMA(*(const V *)(row + (u64)iw_ * xp), wv, acc);	\
} while (0)

/*
 * Whether kernel tap @k of an axis reads the input for some output: some o
 * in [0, @out) with 0 <= o * @s - @pad + k * @d < @in.
 */
static inline int dwc_tap_used(u32 k, u32 s, u32 pad, u32 d, u32 in, u32 out)
{
	s64 lo = (s64)pad - (s64)k * d, first, last;

	first = lo > 0 ? (lo + s - 1) / s : 0;
	if ((s64)in - 1 + lo < 0)
		return 0;
	last = ((s64)in - 1 + lo) / s;
	if (last > (s64)out - 1)
		last = (s64)out - 1;
	return first <= last;
}

/*
 * DWC_PUT: position @p of the block at (ho, wo), if it is one of the @cnt
 * there: + bias, relu keeping NaN, the bound; then staged (a whole block
 * of channels) or stored channel by channel.
 */
#define DWC_PUT(V, I, W, acc, p)						\
do {										\
	V v_ = (acc);								\
										\
	if ((p) < cnt) {							\
		if (c->bias)							\
			v_ = v_ + bv;						\
		if (c->relu)							\
			v_ = (V)((I)v_ & ((v_ > GRP_SPLAT(V, 0.0f)) | (v_ != v_))); \
		if (c->clamp)							\
			v_ = NEURON_CONV_BOUND_V(V, I, v_, GRP_SPLAT(V, c->hi)); \
		if (stage && cb + (W) <= co_count) {				\
			*(V *)(stage + ((u64)ho * c->wo + wo + (p)) * (W)) = v_; \
		} else if (c->os[1] == 1 && cb + (W) <= co_count) {		\
			*(V *)(c->o + n * c->os[0] + cb + (u64)ho * c->os[2] +	\
			       (u64)(wo + (p)) * c->os[3]) = v_;		\
		} else {							\
			*(V *)t1 = v_;						\
			ob = c->o + n * c->os[0] + (u64)cb * c->os[1] +		\
			     (u64)ho * c->os[2] + (u64)(wo + (p)) * c->os[3];	\
			for (l = 0; l < (W) && cb + l < co_count; l++)		\
				ob[(u64)l * c->os[1]] = t1[l];			\
		}								\
	}									\
} while (0)

/*
 * DWC_WHOLE: @count (8 or 4, a constant) positions from (ho, wo) as
 * independent chains a0.., every tap of each in a row inside it.
 */
#define DWC_WHOLE(V, W, FMA, count)						\
do {										\
	const s64 ps_ = (s64)c->sw * xp;					\
										\
	for (kh = 0; kh < c->kh; kh++) {					\
		s64 ih_ = (s64)ho * c->sh - c->pt + (s64)kh * c->dh;		\
		const float *r_, *wk_;						\
										\
		if (ih_ < 0 || ih_ >= c->h)					\
			continue;						\
		r_ = src + (u64)cb * bs +					\
		     ((u64)ih_ * c->w + (u64)wo * c->sw - c->pl) * xp;		\
		wk_ = wpk + (u64)kh * c->kw * cp + cb;				\
		for (kw = 0; kw < c->kw; kw++, r_ += (u64)c->dw * xp) {		\
			V wv_ = *(const V *)(wk_ + (u64)kw * cp);		\
										\
			a0 = FMA(*(const V *)r_, wv_, a0);			\
			a1 = FMA(*(const V *)(r_ + ps_), wv_, a1);		\
			a2 = FMA(*(const V *)(r_ + 2 * ps_), wv_, a2);		\
			a3 = FMA(*(const V *)(r_ + 3 * ps_), wv_, a3);		\
			if ((count) == 4)					\
				continue;					\
			a4 = FMA(*(const V *)(r_ + 4 * ps_), wv_, a4);		\
			a5 = FMA(*(const V *)(r_ + 5 * ps_), wv_, a5);		\
			a6 = FMA(*(const V *)(r_ + 6 * ps_), wv_, a6);		\
			a7 = FMA(*(const V *)(r_ + 7 * ps_), wv_, a7);		\
		}								\
	}									\
} while (0)

#define DWC_KERNEL(sfx, isa, W, FMA)						\
static __attribute__((target(isa)))						\
void dwc_##sfx(const struct neuron_conv_args *c, u32 n, u32 co_count, float *pack, \
	       float *wpk, float *stage)					\
{										\
	const u32 cp = (co_count + (W) - 1) / (W) * (W), taps = c->kh * c->kw;	\
	const u64 outs = (u64)c->ho * c->wo, hw = (u64)c->h * c->w;		\
	int plane_in = pack && c->xs[3] == 1 && c->xs[2] == c->w;		\
	/* The image: in @pack ([cp / W][h][w][W]), or without one read in	\
	 * place channels last (a block @bs floats on, positions @xp apart). */ \
	const float *src = pack ? pack : c->x + n * c->xs[0];			\
	const u64 bs = pack ? hw : 1, xp = pack ? (W) : c->xs[3];		\
	u32 cb, ch, ih, iw, t, ho, wo, kh, kw, l, cnt, wch;			\
	/* Positions [in_lo, in_hi): every tap of theirs in a row inside it. */ \
	const u32 in_lo = GRP_CEILDIV(c->pl, c->sw);				\
	const s64 in_last = (s64)c->w - 1 + c->pl - (s64)(c->kw - 1) * c->dw;	\
	const u32 in_hi = in_last < 0 ? 0 :					\
		(u32)(in_last / c->sw + 1 < (s64)c->wo ? in_last / c->sw + 1 : c->wo); \
	float t1[W], *ob;							\
	u64 done = 0;								\
										\
	/* Each position's channels in turn: whole blocks of channels of a	\
	 * contiguous plane by transposes (the last positions by a part of	\
	 * one), the rest one by one. */					\
	for (cb = 0; plane_in && cb + (W) <= co_count; cb += (W)) {		\
		const float *xb = c->x + n * c->xs[0] + (u64)cb * c->xs[1];	\
		float *pb = pack + (u64)cb * hw;				\
										\
		done = dwc_transpose_##sfx(xb, c->xs[1], 1, hw, pb, (W), (W));	\
		if (done < hw)							\
			dwc_transpose_##sfx##_in(xb + done, c->xs[1], hw - done, \
						 pb + done * (W), (W));		\
		done = hw;							\
	}									\
	/* Channels last: each position's whole blocks by vectors. */		\
	for (cb = plane_in ? cb : 0;						\
	     pack && !plane_in && c->xs[1] == 1 && cb + (W) <= co_count; cb += (W)) { \
		for (ih = 0; ih < c->h; ih++)					\
			for (iw = 0; iw < c->w; iw++)				\
				*(grp_vf_##sfx *)(pack + (u64)cb * hw +		\
						  ((u64)ih * c->w + iw) * (W)) =	\
					*(const grp_vf_##sfx *)(c->x + n * c->xs[0] + \
						(u64)ih * c->xs[2] + (u64)iw * c->xs[3] + cb); \
		done = hw;							\
	}									\
	for (ih = 0; pack && ih < c->h; ih++)					\
		for (iw = 0; iw < c->w; iw++) {					\
			const float *xr = c->x + n * c->xs[0] + (u64)ih * c->xs[2] + \
					  (u64)iw * c->xs[3];			\
			u64 at = (u64)ih * c->w + iw;				\
			float *pr = pack + at * (W);				\
										\
			for (ch = at < done ? cb : 0; ch < cp; ch++)		\
				pr[(u64)(ch / (W)) * c->h * c->w * (W) + ch % (W)] = \
					ch < co_count ? xr[(u64)ch * c->xs[1]] : 0.0f; \
		}								\
	/* The weights [taps][cp]: whole blocks of channels whose taps are	\
	 * contiguous by transposes; the rest one by one, only the taps some	\
	 * output reads (a small map leaves most of a large kernel in the	\
	 * padding; the others' lanes are read, not used). */			\
	for (wch = 0; c->ws[3] == 1 && c->ws[2] == c->kw && wch + (W) <= co_count; \
	     wch += (W)) {							\
		const float *wb = c->wt + (u64)wch * c->ws[0];			\
										\
		t = dwc_transpose_##sfx(wb, c->ws[0], 1, taps, wpk + wch, cp, cp); \
		if (t < taps)							\
			dwc_transpose_##sfx##_in(wb + t, c->ws[0], taps - t,	\
						 wpk + (u64)t * cp + wch, cp);	\
	}									\
	for (t = 0; wch < cp && t < taps; t++) {				\
		const float *wt = c->wt + (t / c->kw) * c->ws[2] + (t % c->kw) * c->ws[3]; \
										\
		if (!dwc_tap_used(t / c->kw, c->sh, c->pt, c->dh, c->h, c->ho) ||	\
		    !dwc_tap_used(t % c->kw, c->sw, c->pl, c->dw, c->w, c->wo))	\
			continue;						\
		for (ch = wch; ch < cp; ch++)					\
			wpk[(u64)t * cp + ch] = ch < co_count ? wt[ch * c->ws[0]] : 0.0f; \
	}									\
	for (cb = 0; cb < cp; cb += (W)) {					\
	grp_vf_##sfx bv = (grp_vf_##sfx){ 0 };					\
										\
	/* The block's biases, once. */						\
	if (c->bias) {								\
		for (l = 0; l < (W); l++)					\
			t1[l] = cb + l < co_count ? c->bias[(u64)(cb + l) * c->bs] : 0.0f; \
		bv = *(const grp_vf_##sfx *)t1;				\
	}									\
	for (ho = 0; ho < c->ho; ho++)						\
	for (wo = 0; wo < c->wo; wo += cnt) {					\
		grp_vf_##sfx a0 = (grp_vf_##sfx){ 0 }, a1 = a0, a2 = a0, a3 = a0; \
										\
		/* Runs of 8 or 4 positions none of whose taps in a row of	\
		 * the input is outside it: no tap skipped but whole rows. */	\
		if (wo >= in_lo && wo + 8 <= in_hi) {				\
			grp_vf_##sfx a4 = a0, a5 = a0, a6 = a0, a7 = a0;	\
										\
			cnt = 8;						\
			DWC_WHOLE(grp_vf_##sfx, W, FMA, 8);			\
			DWC_PUT(grp_vf_##sfx, grp_vi_##sfx, W, a4, 4);		\
			DWC_PUT(grp_vf_##sfx, grp_vi_##sfx, W, a5, 5);		\
			DWC_PUT(grp_vf_##sfx, grp_vi_##sfx, W, a6, 6);		\
			DWC_PUT(grp_vf_##sfx, grp_vi_##sfx, W, a7, 7);		\
		} else if (wo >= in_lo && wo + 4 <= in_hi) {			\
			grp_vf_##sfx a4 = a0, a5 = a0, a6 = a0, a7 = a0;	\
										\
			cnt = 4;						\
			DWC_WHOLE(grp_vf_##sfx, W, FMA, 4);			\
		} else {							\
			cnt = c->wo - wo < 4 ? c->wo - wo : 4;			\
			/* (Up to a run of 8 after it; a block of fewer	\
			 * chains waits on their latency.) */			\
			if (wo < in_lo && in_lo - wo < cnt && in_lo + 8 <= in_hi) \
				cnt = in_lo - wo;				\
			for (kh = 0; kh < c->kh; kh++) {			\
				s64 ihs = (s64)ho * c->sh - c->pt + (s64)kh * c->dh; \
				const float *row;				\
										\
				if (ihs < 0 || ihs >= c->h)			\
					continue;				\
				row = src + (u64)cb * bs + (u64)ihs * c->w * xp; \
				for (kw = 0; kw < c->kw; kw++) {		\
					grp_vf_##sfx wv = *(const grp_vf_##sfx *)(wpk + ((u64)kh * c->kw + kw) * cp + cb); \
										\
					DWC_STEP(grp_vf_##sfx, W, FMA, 0, a0);	\
					DWC_STEP(grp_vf_##sfx, W, FMA, 1, a1);	\
					DWC_STEP(grp_vf_##sfx, W, FMA, 2, a2);	\
					DWC_STEP(grp_vf_##sfx, W, FMA, 3, a3);	\
				}						\
			}							\
		}								\
		DWC_PUT(grp_vf_##sfx, grp_vi_##sfx, W, a0, 0);			\
		DWC_PUT(grp_vf_##sfx, grp_vi_##sfx, W, a1, 1);			\
		DWC_PUT(grp_vf_##sfx, grp_vi_##sfx, W, a2, 2);			\
		DWC_PUT(grp_vf_##sfx, grp_vi_##sfx, W, a3, 3);			\
	}									\
	/* A whole block staged: into the output's planes by transposes,	\
	 * the last positions by part of one. */				\
	if (stage && cb + (W) <= co_count) {					\
		ob = c->o + n * c->os[0] + (u64)cb * c->os[1];			\
		done = dwc_transpose_##sfx(stage, (W), (W), outs, ob, c->os[1], 1); \
		if (done < outs)						\
			dwc_transpose_##sfx##_out(stage + done * (W), (W),	\
						  outs - done, ob + done, c->os[1]); \
	}									\
	}									\
}

NEURON_TRANSPOSE_FN(dwc_transpose_avx2, "avx2,fma", grp_vf_avx2, 8, NEURON_ZIPLO8, NEURON_ZIPHI8)
NEURON_TRANSPOSE_PART_FN(dwc_transpose_avx2, "avx2,fma", grp_vf_avx2, 8, NEURON_ZIPLO8, NEURON_ZIPHI8)
NEURON_TRANSPOSE_FN(dwc_transpose_avx512, "avx512f", grp_vf_avx512, 16, NEURON_ZIPLO16, NEURON_ZIPHI16)
NEURON_TRANSPOSE_PART_FN(dwc_transpose_avx512, "avx512f", grp_vf_avx512, 16, NEURON_ZIPLO16, NEURON_ZIPHI16)
DWC_KERNEL(avx2, "avx2,fma", 8, GRP_FMA8)
DWC_KERNEL(avx512, "avx512f", 16, GRP_FMA16)
#ifndef __KERNEL__	/* tests only: neuron_simd_set_thread() */
NEURON_TRANSPOSE_FN(dwc_transpose_wide, "avx2,fma", grp_vf_wide, 16, NEURON_ZIPLO16, NEURON_ZIPHI16)
NEURON_TRANSPOSE_PART_FN(dwc_transpose_wide, "avx2,fma", grp_vf_wide, 16, NEURON_ZIPLO16, NEURON_ZIPHI16)
DWC_KERNEL(wide, "avx2,fma", 16, GRP_FMA_HALVES)
#endif


int neuron_conv_depthwise(const struct neuron_conv_args *c, u32 n, u32 co_count,
			  const struct neuron_engine_slot *scratch)
{
	u32 level = neuron_simd_level(), lanes = level == NEURON_SIMD_AVX2 ? 8 : 16;
	u64 cp = ((u64)co_count + lanes - 1) / lanes * lanes;
	/* Channels last, whole blocks of them, rows of positions one axis:
	 * the image is read in place (no layout). */
	int inplace = c->xs[1] == 1 && co_count % lanes == 0 && c->xs[2] == (u64)c->w * c->xs[3];
	u64 used = ((inplace ? 0 : (u64)c->h * c->w) + (u64)c->kh * c->kw) * cp;
	float *stage = NULL, *pack, *wpk;

	/*
	 * Channels in lanes pay (for laying the image out again) on rows
	 * narrower than 32 outputs, or 64 of stride 2 or more with 8 lanes
	 * (whose stride-2 rows take more shuffles; AMD EPYC, 3x3 kernels:
	 * 48x48x48 of stride 2 27.5 -> 22 us with 16); and with 16 lanes on
	 * rows of stride 1 narrower than 64 padded on the left, of whole
	 * blocks of channels, where a row's vectors are mostly edges (3x3,
	 * 48x48: 16 channels 17.9 -> 13.6 us, 144 161 -> 123; unpadded, or
	 * 24 channels, the rows are faster).
	 */
	u32 narrow = c->sw != 1 && lanes == 8 ? 64 :
		     c->sw == 1 && lanes == 16 && c->pl && co_count % 16 == 0 ? 64 : 32;

	/* Always when either side is channels last (planes of rows would
	 * be read or written element by element). */
	if (level == NEURON_SIMD_SCALAR || c->accumulate || c->packed || c->cig != 1 ||
	    (c->wo >= narrow && c->xs[1] != 1 && c->os[1] != 1) || !scratch || !scratch->base ||
	    used * 4 > scratch->size)
		return 0;
	pack = inplace ? NULL : scratch->base;
	/* A block's outputs staged after the layout and the weights, to go
	 * into contiguous output planes by transposes, where they fit. */
	if (c->os[3] == 1 && c->os[2] == c->wo &&
	    (used + (u64)c->ho * c->wo * lanes) * 4 <= scratch->size)
		stage = (float *)scratch->base + used;
	wpk = (float *)scratch->base + (inplace ? 0 : (u64)c->h * c->w * cp);
	if (level == NEURON_SIMD_AVX512)
		dwc_avx512(c, n, co_count, pack, wpk, stage);
#ifndef __KERNEL__
	else if (level == NEURON_SIMD_WIDE_ON_AVX2)
		dwc_wide(c, n, co_count, pack, wpk, stage);
#endif
	else
		dwc_avx2(c, n, co_count, pack, wpk, stage);
	return 1;
}

int neuron_conv_grouped(const struct neuron_conv_args *c, u32 n, u32 co0, u32 cos,
			const struct neuron_engine_slot *scratch)
{
	u32 level = neuron_simd_level(), taps = c->cig * c->kh * c->kw, co, t;
	struct grp_channel q = {
		.c = c,
		.x = c->x + n * c->xs[0] + (u64)c->c0 * c->xs[1],
		.span = (s64)(c->kw - 1) * c->dw,
	};
	float *copy = scratch ? scratch->base : NULL;
	int inplace = c->ws[3] == 1 && c->ws[2] == c->kw && c->ws[1] == (u64)c->kh * c->kw;

	if (level == NEURON_SIMD_SCALAR || c->accumulate || c->packed || c->kw > GRP_MAX_KW)
		return 0;
	if (!inplace && (!copy || (u64)taps * 4 > scratch->size))
		return 0;
	for (co = co0; co < co0 + cos; co++) {
		const float *wc = c->wt + co * c->ws[0];

		if (inplace) {
			q.wk = wc;
		} else {
			for (t = 0; t < taps; t++)
				copy[t] = wc[(t / (c->kh * c->kw)) * c->ws[1] +
					     (t / c->kw % c->kh) * c->ws[2] + (t % c->kw) * c->ws[3]];
			q.wk = copy;
		}
		q.o = c->o + n * c->os[0] + co * c->os[1];
		q.bias = c->bias ? c->bias[co * c->bs] : 0.0f;
		if (level == NEURON_SIMD_AVX512)
			grp_plane_avx512(&q);
#ifndef __KERNEL__
		else if (level == NEURON_SIMD_WIDE_ON_AVX2)
			grp_plane_wide(&q);
#endif
		else
			grp_plane_avx2(&q);
	}
	return 1;
}
