// SPDX-License-Identifier: GPL-2.0
/*
 * Engine: CONV2D with NEURON_CONV_WINOGRAD, 3x3 of stride 1 as Winograd's
 * F(2x2, 3x3) (U of 16 elements: 16 multiplications per 2x2 outputs and
 * input channel instead of 36) or F(4x4, 3x3) (U of 36 elements: 36 per
 * 4x4 outputs instead of 144).
 *
 * The output is cut into t x t tiles (t = 2 or 4) from its first row and
 * column. For a tile (th, tw) and input channel ci, d is the a x a input
 * (a = t + 2) from row t th - pad_top and column t tw - pad_left (zeros
 * outside), and
 *
 *   t = rows of d transformed (WG_IN, WG4_IN)
 *   V = columns of t transformed the same way (V[i][j], element xi = a i + j)
 *   M[xi] = fma(U[xi][co][ci], V[xi], M[xi]) over ci in order, from 0
 *   s = rows of M transformed (WG_OUT, WG4_OUT)
 *   y = columns of s, the same way (y[i][j] is output (t th + i, t tw + j))
 *
 * then, as for every convolution, y = out + y with NEURON_CONV_ACCUMULATE,
 * y + bias, relu; outputs past the last row or column are not stored.
 * U is the compiler's transform of the weights (G g G^T), laid out
 * [a*a][ceil(Co/6)][Ci][6]. The vector path computes sixteen tiles at once
 * with the same operations, so both paths give the same bits.
 */
#include "neuron_engine.h"
#include "engine_gather.h"

typedef float wg_v8f __attribute__((vector_size(32), aligned(4)));
typedef int wg_v8i __attribute__((vector_size(32), aligned(4)));

#ifdef __CHECKER__
wg_v8f __builtin_ia32_vfmaddps256(wg_v8f a, wg_v8f b, wg_v8f c);
#endif

#define WG_FMA(a, b, c)			__builtin_ia32_vfmaddps256((a), (b), (c))

#define WG_ROWS		NEURON_CONV_PACK_ROWS	/* output channels per block of U */
#define WG_LANES	16			/* tiles at once: two vectors */
#define WG_CHUNK	16			/* blocks of channels multiplied at once */

/*
 * The transforms, written once for floats and for vectors alike, so that
 * both paths run the same operations: F(2x2, 3x3)'s four of d (rows or
 * columns) into four of V and four of M into two of y; F(4x4, 3x3)'s six
 * of d into six of V and six of M into four of y, K(n) being the constant
 * n of the operands' type (every product by it is exact: 2, 4 and 8 are
 * powers of two, and no other appears).
 */
#define WG_IN(o0, o1, o2, o3, a0, a1, a2, a3)					\
do {										\
	(o0) = (a0) - (a2);							\
	(o1) = (a1) + (a2);							\
	(o2) = (a2) - (a1);							\
	(o3) = (a1) - (a3);							\
} while (0)
#define WG_OUT(o0, o1, a0, a1, a2, a3)						\
do {										\
	(o0) = ((a0) + (a1)) + (a2);						\
	(o1) = ((a1) - (a2)) - (a3);						\
} while (0)
/* B^T d: rows 4 0 -5 0 1 0, 0 -4 -4 1 1 0, 0 4 -4 -1 1 0, 0 -2 -1 2 1 0, 0 2 -1 -2 1 0, 0 4 0 -5 0 1. */
#define WG4_IN(K, o0, o1, o2, o3, o4, o5, a0, a1, a2, a3, a4, a5)		\
do {										\
	(o0) = ((a4) - (a2)) + ((a0) - (a2)) * K(4);				\
	(o1) = ((a3) + (a4)) - ((a1) + (a2)) * K(4);				\
	(o2) = ((a4) - (a3)) + ((a1) - (a2)) * K(4);				\
	(o3) = ((a4) - (a2)) + ((a3) - (a1)) * K(2);				\
	(o4) = ((a4) - (a2)) - ((a3) - (a1)) * K(2);				\
	(o5) = ((a5) - (a3)) + ((a1) - (a3)) * K(4);				\
} while (0)
/* A^T m: rows 1 1 1 1 1 0, 0 1 -1 2 -2 0, 0 1 1 4 4 0, 0 1 -1 8 -8 1. */
#define WG4_OUT(K, o0, o1, o2, o3, a0, a1, a2, a3, a4, a5)			\
do {										\
	(o0) = (((a0) + ((a1) + (a2))) + ((a3) + (a4)));			\
	(o1) = ((a1) - (a2)) + ((a3) - (a4)) * K(2);				\
	(o2) = ((a1) + (a2)) + ((a3) + (a4)) * K(4);				\
	(o3) = (((a1) - (a2)) + ((a3) - (a4)) * K(8)) + (a5);			\
} while (0)
#define WG_KF(n)	((float)(n))
#define WG_KV(n)	((float)(n) - (wg_v8f){ 0 })

/* Elements of U and of V: (t + 2)^2. */
static inline u32 wg_xis(const struct neuron_conv_args *c)
{
	return (c->wtile + 2) * (c->wtile + 2);
}

/* Tiles along the output's rows and columns. */
static inline u32 wg_tiles_h(const struct neuron_conv_args *c)
{
	return (c->ho + c->wtile - 1) / c->wtile;
}

static inline u32 wg_tiles_w(const struct neuron_conv_args *c)
{
	return (c->wo + c->wtile - 1) / c->wtile;
}

/* The input transform of the a values @d (@ds apart) into @o (@os apart). */
static inline void wg_in_f(u32 t, float *o, u32 os, const float *d, u32 ds)
{
	if (t == 2)
		WG_IN(o[0], o[os], o[2 * os], o[3 * os], d[0], d[ds], d[2 * ds], d[3 * ds]);
	else
		WG4_IN(WG_KF, o[0], o[os], o[2 * os], o[3 * os], o[4 * os], o[5 * os],
		       d[0], d[ds], d[2 * ds], d[3 * ds], d[4 * ds], d[5 * ds]);
}

/* The output transform of the a values @m (@ms apart) into the t of @o (@os apart). */
static inline void wg_out_f(u32 t, float *o, u32 os, const float *m, u32 ms)
{
	if (t == 2)
		WG_OUT(o[0], o[os], m[0], m[ms], m[2 * ms], m[3 * ms]);
	else
		WG4_OUT(WG_KF, o[0], o[os], o[2 * os], o[3 * os],
			m[0], m[ms], m[2 * ms], m[3 * ms], m[4 * ms], m[5 * ms]);
}

/* U[xi][co][ci]. */
static inline const float *wg_u(const struct neuron_conv_args *c, u32 xi, u32 co)
{
	u32 blocks = (c->co + WG_ROWS - 1) / WG_ROWS;

	return c->wt + (((u64)xi * blocks + co / WG_ROWS) * c->cig) * WG_ROWS + co % WG_ROWS;
}

/*
 * Output (t th + i, t tw + j) of channel @co, when inside: finished as
 * every convolution (accumulate, bias, relu) and stored.
 */
static inline void wg_store(const struct neuron_conv_args *c, u32 n, u32 co, u32 th, u32 tw,
			    u32 i, u32 j, float y)
{
	u32 ho = c->wtile * th + i, wo = c->wtile * tw + j;
	float *out;

	if (ho >= c->ho || wo >= c->wo)
		return;
	out = &c->o[n * c->os[0] + co * c->os[1] + ho * c->os[2] + wo * c->os[3]];
	if (c->accumulate)
		y = *out + y;
	if (c->bias)
		y = y + c->bias[co * c->bs];
	if (c->relu && !(y > 0.0f))
		y = y != y ? y : 0.0f;
	if (c->clamp)
		y = NEURON_CONV_BOUND(y, c->hi);
	*out = y;
}

static void wg_reference(const struct neuron_conv_args *c, u32 n)
{
	const u32 t = c->wtile, a = t + 2, xis = a * a;
	u32 th, tw, co, ci, i, j, xi;

	for (th = 0; th < wg_tiles_h(c); th++)
	for (tw = 0; tw < wg_tiles_w(c); tw++)
	for (co = 0; co < c->co; co++) {
		float m[36] = { 0 }, s[4][6], y[4][4];

		for (ci = 0; ci < c->cig; ci++) {
			float d[6][6], tr[6][6], v[6][6];

			for (i = 0; i < a; i++)
				for (j = 0; j < a; j++) {
					s64 ih = (s64)t * th - c->pt + i, iw = (s64)t * tw - c->pl + j;

					d[i][j] = ih >= 0 && ih < c->h && iw >= 0 && iw < c->w ?
						  c->x[n * c->xs[0] + ci * c->xs[1] + (u64)ih * c->xs[2] +
						       (u64)iw * c->xs[3]] : 0.0f;
				}
			for (j = 0; j < a; j++)
				wg_in_f(t, &tr[0][j], 6, &d[0][j], 6);
			for (i = 0; i < a; i++)
				wg_in_f(t, v[i], 1, tr[i], 1);
			for (xi = 0; xi < xis; xi++)
				m[xi] = neuron_fmaf(wg_u(c, xi, co)[(u64)ci * WG_ROWS], v[xi / a][xi % a], m[xi]);
		}
		for (j = 0; j < a; j++)
			wg_out_f(t, &s[0][j], 6, &m[j], a);
		for (i = 0; i < t; i++)
			wg_out_f(t, y[i], 1, s[i], 1);
		for (i = 0; i < t; i++)
			for (j = 0; j < t; j++)
				wg_store(c, n, co, th, tw, i, j, y[i][j]);
	}
}

/*
 * V of sixteen tiles for input channel @ci from their a x a inputs in
 * @patch ([i][j][16]), transformed by vector into @v as [xi][ci][16].
 * Inline with a constant @t, so that every loop unrolls.
 */
static inline __attribute__((target("avx2,fma"), always_inline))
void wg_transform_in(const struct neuron_conv_args *c, u32 t, u32 ci, const float *patch, float *v)
{
	const u32 a = t + 2;
	const u64 step = (u64)c->cig * WG_LANES;
	u32 half, i, j;

#define WG_D(i, j)	(*(const wg_v8f *)(p + ((i) * a + (j)) * WG_LANES))
#define WG_V(j)		(*(wg_v8f *)(o + (j) * step))
	for (half = 0; half < 2; half++) {
		const float *p = patch + 8 * half;
		wg_v8f tr[6][6];

		for (j = 0; j < a; j++) {
			if (t == 2)
				WG_IN(tr[0][j], tr[1][j], tr[2][j], tr[3][j],
				      WG_D(0, j), WG_D(1, j), WG_D(2, j), WG_D(3, j));
			else
				WG4_IN(WG_KV, tr[0][j], tr[1][j], tr[2][j], tr[3][j], tr[4][j], tr[5][j],
				       WG_D(0, j), WG_D(1, j), WG_D(2, j), WG_D(3, j), WG_D(4, j), WG_D(5, j));
		}
		for (i = 0; i < a; i++) {
			float *o = v + ((u64)(a * i) * c->cig + ci) * WG_LANES + 8 * half;

			if (t == 2)
				WG_IN(WG_V(0), WG_V(1), WG_V(2), WG_V(3), tr[i][0], tr[i][1], tr[i][2], tr[i][3]);
			else
				WG4_IN(WG_KV, WG_V(0), WG_V(1), WG_V(2), WG_V(3), WG_V(4), WG_V(5),
				       tr[i][0], tr[i][1], tr[i][2], tr[i][3], tr[i][4], tr[i][5]);
		}
	}
#undef WG_D
#undef WG_V
}

/*
 * V of sixteen tiles (the runs @run) for every input channel, into @v as
 * [xi][ci][16]. Each tile's a x a input goes into @patch (scratch) as
 * [i][j][16], zeros outside the input, then is transformed by vector.
 * Element (i, j) of sixteen neighbouring tiles lies on every other column
 * (F(2x2, 3x3)) or every fourth (F(4x4, 3x3)): it is gathered by vector
 * shuffles where the loads stay inside the image. Else it is copied lane
 * by lane (no AVX2 gathers: QEMU's emulation of them gave wrong values
 * here).
 */
static inline __attribute__((target("avx2,fma"), always_inline))
void wg_input_tiles(const struct neuron_conv_args *c, const u32 t, u32 n, const struct neuron_run *run,
		    u32 runs, float *v, float *patch)
{
	const float *image = c->x + n * c->xs[0];
	struct neuron_plane plane = {
		.x = image, .row = c->xs[2], .h = c->h, .w = c->w,
		/* No input rows (a slice wholly in the bottom padding): nothing to read. */
		.end = !c->h ? image : image + (u64)(c->cig - 1) * c->xs[1] +
				       (u64)(c->h - 1) * c->xs[2] + (u64)(c->w - 1) * c->xs[3] + 1,
	};
	const u32 a = t + 2, xis = a * a;
	/* Tiles t columns apart over contiguous rows: every element by vectors. */
	int vectors = c->xs[3] == 1 && c->w < (1u << 30) && c->h < (1u << 30);
	u32 l, ci, i, j, r, xi;
	s64 row[WG_LANES], col[WG_LANES];

	for (l = 0; l < WG_LANES; l++) {
		/* A lane past the tiles reads nothing: a row far outside. */
		row[l] = -8;
		col[l] = 0;
	}
	for (r = 0; r < runs; r++)
		for (l = run[r].at; l < run[r].at + run[r].len; l++) {
			row[l] = run[r].ih - c->pt;
			col[l] = run[r].iw + (s64)t * (l - run[r].at) - c->pl;
		}
	for (ci = 0; ci < c->cig; ci++) {
		const float *x = image + ci * c->xs[1];

		xi = 0;
		while (vectors && xi < xis &&
		       neuron_gather_stride(&plane, ci * c->xs[1], (s64)(xi / a) - c->pt,
					    (s64)(xi % a) - c->pl, run, runs, patch + xi * WG_LANES, t))
			xi++;
		for (l = 0; l < WG_LANES && !(vectors && xi == xis); l++) {
			/* Whole rows of a inside the input's columns, or checked. */
			int cols = col[l] >= 0 && col[l] + a - 1 < c->w && c->xs[3] == 1;

			for (i = 0; i < a; i++) {
				s64 ih = row[l] + i;
				float *p = patch + i * a * WG_LANES + l;
				const float *xr;

				if (ih < 0 || ih >= c->h) {
					for (j = 0; j < a; j++)
						p[j * WG_LANES] = 0.0f;
					continue;
				}
				xr = x + (u64)ih * c->xs[2];
				if (cols) {
					xr += col[l];
					for (j = 0; j < a; j++)
						p[j * WG_LANES] = xr[j];
					continue;
				}
				for (j = 0; j < a; j++) {
					s64 iw = col[l] + j;

					p[j * WG_LANES] = iw >= 0 && iw < c->w ? xr[(u64)iw * c->xs[3]] : 0.0f;
				}
			}
		}
		wg_transform_in(c, t, ci, patch, v);
	}
}

/* wg_input_tiles() with a constant tile, so that its loops unroll. */
static __attribute__((target("avx2,fma")))
void wg_input(const struct neuron_conv_args *c, u32 n, const struct neuron_run *run, u32 runs,
	      float *v, float *patch)
{
	if (c->wtile == 2)
		wg_input_tiles(c, 2, n, run, runs, v, patch);
	else
		wg_input_tiles(c, 4, n, run, runs, v, patch);
}

/* Floats of U fetched ahead of the multiplication (U streams from memory when cold). */
#define WG_AHEAD	384

/*
 * M[xi] of the sixteen tiles for the blocks of six output channels from
 * @co0 to @co1, into @m as [block][xi][6][16] (xi < a*a): V[xi] stays in
 * L1 while every block's U[xi] passes over it. With @half (no tile past the
 * eighth), the last eight lanes are zeros, not computed.
 */
static __attribute__((target("avx2,fma")))
void wg_multiply(const struct neuron_conv_args *c, u32 xi, u32 co0, u32 co1, const float *v, float *m,
		 int half)
{
	u32 co, r, k;

	for (co = co0; co < co1; co += WG_ROWS) {
		const float *a = wg_u(c, xi, co), *b = v + (u64)xi * c->cig * WG_LANES;
		float *mb = m + ((u64)(co - co0) / WG_ROWS * wg_xis(c) + xi) * WG_ROWS * WG_LANES;
		wg_v8f m0[WG_ROWS], m1[WG_ROWS];

		for (r = 0; r < WG_ROWS; r++)
			m0[r] = m1[r] = (wg_v8f){ 0 };
		for (k = 0; half && k < c->cig; k++, a += WG_ROWS, b += WG_LANES) {
			wg_v8f b0 = *(const wg_v8f *)b;

			_Pragma("GCC unroll 8")
			for (r = 0; r < WG_ROWS; r++)
				m0[r] = WG_FMA(a[r] - (wg_v8f){ 0 }, b0, m0[r]);
		}
		for (k = 0; !half && k < c->cig; k++, a += WG_ROWS, b += WG_LANES) {
			wg_v8f b0 = *(const wg_v8f *)b, b1 = *(const wg_v8f *)(b + 8);

			__builtin_prefetch(a + WG_AHEAD);

			_Pragma("GCC unroll 8")
			for (r = 0; r < WG_ROWS; r++) {
				wg_v8f av = a[r] - (wg_v8f){ 0 };

				m0[r] = WG_FMA(av, b0, m0[r]);
				m1[r] = WG_FMA(av, b1, m1[r]);
			}
		}
		for (r = 0; r < WG_ROWS; r++) {
			*(wg_v8f *)(mb + r * WG_LANES) = m0[r];
			*(wg_v8f *)(mb + r * WG_LANES + 8) = m1[r];
		}
	}
}

/*
 * wg_multiply over 16-lane vectors, two blocks of six channels at a time
 * (twelve accumulators, as AVX-512's 32 registers allow): for AVX-512F,
 * and (tests only) for AVX2, where each vector is two halves. Sixteen
 * tiles only; each lane's chain is wg_multiply's. Returns the channel up
 * to which it did whole pairs of blocks.
 */
typedef float wg_w16f __attribute__((vector_size(64), aligned(4)));

#define WG_FMA_HALVES(a, b, c)	NEURON_FMA_HALVES(wg_w16f, wg_v8f, WG_FMA, a, b, c)
#define WG_FMA16(a, b, c)	__builtin_ia32_vfmaddps512_mask((a), (b), (c), (unsigned short)0xffff, 4)

#ifdef __CHECKER__
wg_w16f __builtin_ia32_vfmaddps512_mask(wg_w16f a, wg_w16f b, wg_w16f c, unsigned short mask,
					 int rounding);
#endif

#define WG_MULTIPLY16(name, isa, FMA)						\
static __attribute__((target(isa)))						\
u32 name(const struct neuron_conv_args *c, u32 xi, u32 co0, u32 co1, const float *v, float *m) \
{										\
	const u64 pair = (u64)wg_xis(c) * WG_ROWS * WG_LANES;			\
	u32 co, r, k;								\
										\
	for (co = co0; co + WG_ROWS < co1; co += 2 * WG_ROWS) {		\
		const float *a0 = wg_u(c, xi, co), *a1 = a0 + (u64)c->cig * WG_ROWS; \
		const float *b = v + (u64)xi * c->cig * WG_LANES;		\
		float *mb = m + ((u64)(co - co0) / WG_ROWS * wg_xis(c) + xi) * WG_ROWS * WG_LANES; \
		wg_w16f acc[2 * WG_ROWS];					\
										\
		for (r = 0; r < 2 * WG_ROWS; r++)				\
			acc[r] = (wg_w16f){ 0 };				\
		for (k = 0; k < c->cig; k++, a0 += WG_ROWS, a1 += WG_ROWS, b += WG_LANES) { \
			wg_w16f x = *(const wg_w16f *)b;			\
										\
			/* U streams from memory when cold: ahead of both. */	\
			__builtin_prefetch(a0 + WG_AHEAD);			\
			__builtin_prefetch(a1 + WG_AHEAD);			\
			_Pragma("GCC unroll 6")					\
			for (r = 0; r < WG_ROWS; r++) {				\
				acc[r] = FMA(a0[r] - (wg_w16f){ 0 }, x, acc[r]); \
				acc[WG_ROWS + r] = FMA(a1[r] - (wg_w16f){ 0 }, x, \
						       acc[WG_ROWS + r]);	\
			}							\
		}								\
		for (r = 0; r < WG_ROWS; r++) {					\
			*(wg_w16f *)(mb + r * WG_LANES) = acc[r];		\
			*(wg_w16f *)(mb + pair + r * WG_LANES) = acc[WG_ROWS + r]; \
		}								\
	}									\
	return co;								\
}

WG_MULTIPLY16(wg_multiply_avx512, "avx512f", WG_FMA16)
#ifndef __KERNEL__	/* tests only: neuron_simd_set_thread() */
WG_MULTIPLY16(wg_multiply_wide, "avx2,fma", WG_FMA_HALVES)
#endif

/* wg_multiply at this thread's vector width: pairs of blocks, then the rest. */
static void wg_multiply_any(const struct neuron_conv_args *c, u32 xi, u32 co0, u32 co1,
			    const float *v, float *m, int half)
{
	u32 co = co0;

	if (!half) {
		switch (neuron_simd_level()) {
		case NEURON_SIMD_AVX512:
			co = wg_multiply_avx512(c, xi, co0, co1, v, m);
			break;
#ifndef __KERNEL__
		case NEURON_SIMD_WIDE_ON_AVX2:
			co = wg_multiply_wide(c, xi, co0, co1, v, m);
			break;
#endif
		}
	}
	if (co < co1)
		wg_multiply(c, xi, co, co1, v,
			    m + (u64)(co - co0) / WG_ROWS * wg_xis(c) * WG_ROWS * WG_LANES, half);
}

/*
 * Outputs [wo, wo + count) of one row from @y (count <= 8), finished as
 * every convolution is (accumulate, bias, relu) and stored.
 */
static inline __attribute__((target("avx2,fma")))
void wg_finish(const struct neuron_conv_args *c, u32 co, float *out, const float *y, u32 count)
{
	wg_v8f v;
	u32 l;

	if (count < 8) {
		for (l = 0; l < count; l++) {
			float e = y[l];

			if (c->accumulate)
				e = out[l] + e;
			if (c->bias)
				e = e + c->bias[co * c->bs];
			if (c->relu && !(e > 0.0f))
				e = e != e ? e : 0.0f;
			if (c->clamp)
				e = NEURON_CONV_BOUND(e, c->hi);
			out[l] = e;
		}
		return;
	}
	v = *(const wg_v8f *)y;
	if (c->accumulate)
		v = *(const wg_v8f *)out + v;
	if (c->bias)
		v = v + (c->bias[co * c->bs] - (wg_v8f){ 0 });
	if (c->relu)
		v = (wg_v8f)((wg_v8i)v & ((wg_v8i)(v > 0.0f) | (wg_v8i)(v != v)));
	if (c->clamp)
		v = NEURON_CONV_BOUND_V(wg_v8f, wg_v8i, v, c->hi - (wg_v8f){ 0 });
	*(wg_v8f *)out = v;
}

/* Elements 0..7 of @a and @b interleaved: a0 b0 a1 b1 ... (lo), a4 b4 ... (hi). */
#ifdef __CHECKER__
#define WG_ZIP_LO(a, b)	(a)
#define WG_ZIP_HI(a, b)	(b)
#else
#define WG_ZIP_LO(a, b)	__builtin_shufflevector(a, b, 0, 8, 1, 9, 2, 10, 3, 11)
#define WG_ZIP_HI(a, b)	__builtin_shufflevector(a, b, 4, 12, 5, 13, 6, 14, 7, 15)
#endif

/* Four vectors of eight interleaved: y0[0] y1[0] y2[0] y3[0] y0[1] ... into @o (32 floats). */
static inline __attribute__((target("avx2,fma"), always_inline))
void wg_zip4(float *o, wg_v8f y0, wg_v8f y1, wg_v8f y2, wg_v8f y3)
{
	wg_v8f lo02 = WG_ZIP_LO(y0, y2), hi02 = WG_ZIP_HI(y0, y2);
	wg_v8f lo13 = WG_ZIP_LO(y1, y3), hi13 = WG_ZIP_HI(y1, y3);

	*(wg_v8f *)o = WG_ZIP_LO(lo02, lo13);
	*(wg_v8f *)(o + 8) = WG_ZIP_HI(lo02, lo13);
	*(wg_v8f *)(o + 16) = WG_ZIP_LO(hi02, hi13);
	*(wg_v8f *)(o + 24) = WG_ZIP_HI(hi02, hi13);
}

/*
 * The t rows of outputs of sixteen tiles for channel @r of the block @m
 * ([xi][6][16]), into @line as [i][t * 16]: a tile's t outputs of a row
 * side by side. Inline with a constant @t.
 */
static inline __attribute__((target("avx2,fma"), always_inline))
void wg_transform_out(u32 t, u32 r, const float *m, float line[4][4 * WG_LANES])
{
	const u32 a = t + 2;
	u32 half, i, j;

#define WG_M(xi)	(*(const wg_v8f *)(m + ((xi) * WG_ROWS + r) * WG_LANES + 8 * half))
	for (half = 0; half < 2; half++) {
		wg_v8f s[4][6], y[4];

		for (j = 0; j < a; j++) {
			if (t == 2)
				WG_OUT(s[0][j], s[1][j], WG_M(j), WG_M(4 + j), WG_M(8 + j), WG_M(12 + j));
			else
				WG4_OUT(WG_KV, s[0][j], s[1][j], s[2][j], s[3][j], WG_M(j), WG_M(6 + j),
					WG_M(12 + j), WG_M(18 + j), WG_M(24 + j), WG_M(30 + j));
		}
		for (i = 0; i < t; i++) {
			if (t == 2) {
				WG_OUT(y[0], y[1], s[i][0], s[i][1], s[i][2], s[i][3]);
				*(wg_v8f *)(line[i] + 16 * half) = WG_ZIP_LO(y[0], y[1]);
				*(wg_v8f *)(line[i] + 16 * half + 8) = WG_ZIP_HI(y[0], y[1]);
				continue;
			}
			WG4_OUT(WG_KV, y[0], y[1], y[2], y[3], s[i][0], s[i][1], s[i][2], s[i][3], s[i][4],
				s[i][5]);
			wg_zip4(line[i] + 32 * half, y[0], y[1], y[2], y[3]);
		}
	}
#undef WG_M
}

/*
 * y of the sixteen tiles (the runs @run) for channels [co0, co0 + rows),
 * finished and stored. The t outputs of a tile in one row sit side by
 * side, so a run's row of outputs is contiguous when the output's columns
 * are: its y are interleaved and finished by vector.
 */
static __attribute__((target("avx2,fma")))
void wg_output(const struct neuron_conv_args *c, u32 n, u32 co0, u32 rows,
	       const struct neuron_run *run, u32 runs, const float *m)
{
	const u32 t = c->wtile;
	u32 r, l, i, k;

	for (r = 0; r < rows; r++) {
		float line[4][4 * WG_LANES];

		if (t == 2)
			wg_transform_out(2, r, m, line);
		else
			wg_transform_out(4, r, m, line);
		for (k = 0; k < runs; k++) {
			/* The run's tiles: row th, columns tw0 .. tw0 + len - 1. */
			u32 th = (u32)(run[k].ih / t), tw0 = (u32)(run[k].iw / t), at = run[k].at;

			for (i = 0; i < t && t * th + i < c->ho; i++) {
				float *out = c->o + n * c->os[0] + (u64)(co0 + r) * c->os[1] +
					     (u64)(t * th + i) * c->os[2];
				u32 count = t * run[k].len, done;

				if (count > c->wo - t * tw0)
					count = c->wo - t * tw0;
				if (c->os[3] != 1) {
					for (l = 0; l < count; l++)
						wg_store(c, n, co0 + r, th, tw0 + l / t, i, l % t,
							 line[i][t * at + l]);
					continue;
				}
				out += t * tw0;
				for (done = 0; done < count; done += 8)
					wg_finish(c, co0 + r, out + done, line[i] + t * at + done,
						  count - done < 8 ? count - done : 8);
			}
		}
	}
}

void neuron_conv_winograd(const struct neuron_conv_args *c, u32 n,
			  const struct neuron_engine_slot *scratch)
{
	const u32 xis = wg_xis(c), tiles_w = wg_tiles_w(c), tiles = wg_tiles_h(c) * tiles_w;
	/* M of one block of six output channels: [a*a][6][16]. */
	const u64 block_floats = (u64)xis * WG_ROWS * WG_LANES;
	u64 v_floats = (u64)xis * c->cig * WG_LANES, patch_floats = xis * WG_LANES, blocks = 0;
	u32 t0, co0, co1, co, xi;
	float *v, *m;

	if (scratch && scratch->size / sizeof(float) >= v_floats + patch_floats)
		blocks = (scratch->size / sizeof(float) - v_floats - patch_floats) / block_floats;
	if (!neuron_cpu_has_avx2_fma() || !scratch || !scratch->base || !blocks) {
		wg_reference(c, n);
		return;
	}
	/* Up to WG_CHUNK blocks of channels at once. */
	if (blocks > WG_CHUNK)
		blocks = WG_CHUNK;
	v = scratch->base;
	m = v + v_floats;
	for (t0 = 0; t0 < tiles; t0 += WG_LANES) {
		struct neuron_run run[NEURON_RUN_LANES];
		u32 runs = neuron_runs(t0, tiles, tiles_w, c->wtile, c->wtile, run);

		wg_input(c, n, run, runs, v, m + blocks * block_floats);
		for (co0 = 0; co0 < c->co; co0 = co1) {
			co1 = c->co - co0 < blocks * WG_ROWS ? c->co : co0 + (u32)blocks * WG_ROWS;
			for (xi = 0; xi < xis; xi++)
				wg_multiply_any(c, xi, co0, co1, v, m, tiles - t0 <= 8);
			for (co = co0; co < co1; co += WG_ROWS)
				wg_output(c, n, co, co1 - co < WG_ROWS ? co1 - co : WG_ROWS, run, runs,
					  m + (u64)(co - co0) / WG_ROWS * block_floats);
		}
	}
}
