// SPDX-License-Identifier: GPL-2.0
/*
 * Engine: CONV2D with NEURON_CONV_WINOGRAD, 3x3 of stride 1 as Winograd's
 * F(2x2, 3x3): 16 multiplications per 2x2 outputs and input channel
 * instead of 36.
 *
 * The output is cut into 2x2 tiles from its first row and column. For a
 * tile (th, tw) and input channel ci, d is the 4x4 input from row
 * 2th - pad_top and column 2tw - pad_left (zeros outside), and
 *
 *   t = rows of d:    t0 = d0 - d2, t1 = d1 + d2, t2 = d2 - d1, t3 = d1 - d3
 *   V = columns of t, the same four (V[i][j], element xi = 4i + j)
 *   M[xi] = fma(U[xi][co][ci], V[xi], M[xi]) over ci in order, from 0
 *   s = rows of M:    s0 = (M0 + M1) + M2, s1 = (M1 - M2) - M3
 *   y = columns of s, the same two (y[i][j] is output (2th + i, 2tw + j))
 *
 * then, as for every convolution, y = out + y with NEURON_CONV_ACCUMULATE,
 * y + bias, relu; outputs past the last row or column are not stored.
 * U is the compiler's transform of the weights (G g G^T), laid out
 * [16][ceil(Co/6)][Ci][6]. The vector path computes sixteen tiles at once
 * with the same operations, so both paths give the same bits.
 */
#include "neuron_engine.h"

typedef float wg_v8f __attribute__((vector_size(32), aligned(4)));

#ifdef __CHECKER__
wg_v8f __builtin_ia32_vfmaddps256(wg_v8f a, wg_v8f b, wg_v8f c);
#endif

#define WG_FMA(a, b, c)			__builtin_ia32_vfmaddps256((a), (b), (c))

#define WG_ROWS		NEURON_CONV_PACK_ROWS	/* output channels per block of U */
#define WG_LANES	16			/* tiles at once: two vectors */

/*
 * The transforms, written once for floats and for vectors alike, so that
 * both paths run the same operations: four of d (rows or columns) into
 * four of V, and four of M into two of y.
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

/* U[xi][co][ci]. */
static inline const float *wg_u(const struct neuron_conv_args *c, u32 xi, u32 co)
{
	u32 blocks = (c->co + WG_ROWS - 1) / WG_ROWS;

	return c->wt + (((u64)xi * blocks + co / WG_ROWS) * c->cig) * WG_ROWS + co % WG_ROWS;
}

/*
 * Output (2th + i, 2tw + j) of channel @co, when inside: finished as every
 * convolution (accumulate, bias, relu) and stored.
 */
static inline void wg_store(const struct neuron_conv_args *c, u32 n, u32 co, u32 th, u32 tw,
			    u32 i, u32 j, float y)
{
	u32 ho = 2 * th + i, wo = 2 * tw + j;
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
	*out = y;
}

static void wg_reference(const struct neuron_conv_args *c, u32 n)
{
	u32 th, tw, co, ci, i, j, xi;

	for (th = 0; th < (c->ho + 1) / 2; th++)
	for (tw = 0; tw < (c->wo + 1) / 2; tw++)
	for (co = 0; co < c->co; co++) {
		float m[16] = { 0 }, s[2][4], y[2][2];

		for (ci = 0; ci < c->cig; ci++) {
			float d[4][4], t[4][4], v[4][4];

			for (i = 0; i < 4; i++)
				for (j = 0; j < 4; j++) {
					s64 ih = 2 * (s64)th - c->pt + i, iw = 2 * (s64)tw - c->pl + j;

					d[i][j] = ih >= 0 && ih < c->h && iw >= 0 && iw < c->w ?
						  c->x[n * c->xs[0] + ci * c->xs[1] + (u64)ih * c->xs[2] +
						       (u64)iw * c->xs[3]] : 0.0f;
				}
			for (j = 0; j < 4; j++)
				WG_IN(t[0][j], t[1][j], t[2][j], t[3][j], d[0][j], d[1][j], d[2][j], d[3][j]);
			for (i = 0; i < 4; i++)
				WG_IN(v[i][0], v[i][1], v[i][2], v[i][3], t[i][0], t[i][1], t[i][2], t[i][3]);
			for (xi = 0; xi < 16; xi++)
				m[xi] = neuron_fmaf(wg_u(c, xi, co)[(u64)ci * WG_ROWS], v[xi / 4][xi % 4], m[xi]);
		}
		for (j = 0; j < 4; j++)
			WG_OUT(s[0][j], s[1][j], m[j], m[4 + j], m[8 + j], m[12 + j]);
		for (i = 0; i < 2; i++)
			WG_OUT(y[i][0], y[i][1], s[i][0], s[i][1], s[i][2], s[i][3]);
		for (i = 0; i < 2; i++)
			for (j = 0; j < 2; j++)
				wg_store(c, n, co, th, tw, i, j, y[i][j]);
	}
}

/*
 * V of sixteen tiles from @t0 for every input channel, into @v as
 * [xi][ci][16]. Each tile's 4x4 input is copied lane by lane (zeros
 * outside the input) into @patch (scratch), [i][j][16], then transformed
 * by vector.
 * Plain loads, no gathers: QEMU's emulation of AVX2's gather gave wrong
 * values here.
 */
static __attribute__((target("avx2,fma")))
void wg_input(const struct neuron_conv_args *c, u32 n, u32 t0, u32 tiles, float *v, float *patch)
{
	u32 tw_count = (c->wo + 1) / 2, l, ci, i, j, half;
	s64 row[WG_LANES], col[WG_LANES];

	for (l = 0; l < WG_LANES; l++) {
		u32 t = t0 + l;

		/* A lane past the tiles reads nothing: a row far outside. */
		row[l] = t < tiles ? 2 * (s64)(t / tw_count) - c->pt : -8;
		col[l] = t < tiles ? 2 * (s64)(t % tw_count) - c->pl : 0;
	}
	for (ci = 0; ci < c->cig; ci++) {
		const float *x = c->x + n * c->xs[0] + ci * c->xs[1];

		for (l = 0; l < WG_LANES; l++) {
			/* Whole rows of four inside the input's columns, or checked. */
			int cols = col[l] >= 0 && col[l] + 3 < c->w && c->xs[3] == 1;

			for (i = 0; i < 4; i++) {
				s64 ih = row[l] + i;
				float *p = patch + i * 4 * WG_LANES + l;
				const float *xr;

				if (ih < 0 || ih >= c->h) {
					p[0] = p[WG_LANES] = p[2 * WG_LANES] = p[3 * WG_LANES] = 0.0f;
					continue;
				}
				xr = x + (u64)ih * c->xs[2];
				if (cols) {
					xr += col[l];
					p[0] = xr[0];
					p[WG_LANES] = xr[1];
					p[2 * WG_LANES] = xr[2];
					p[3 * WG_LANES] = xr[3];
					continue;
				}
				for (j = 0; j < 4; j++) {
					s64 iw = col[l] + j;

					p[j * WG_LANES] = iw >= 0 && iw < c->w ? xr[(u64)iw * c->xs[3]] : 0.0f;
				}
			}
		}
		for (half = 0; half < 2; half++) {
			wg_v8f d[4][4], t[4][4];

			for (i = 0; i < 4; i++)
				for (j = 0; j < 4; j++)
					d[i][j] = *(const wg_v8f *)(patch + (i * 4 + j) * WG_LANES + 8 * half);
			for (j = 0; j < 4; j++)
				WG_IN(t[0][j], t[1][j], t[2][j], t[3][j], d[0][j], d[1][j], d[2][j], d[3][j]);
			for (i = 0; i < 4; i++) {
				float *o = v + ((u64)(4 * i) * c->cig + ci) * WG_LANES + 8 * half;
				u64 step = (u64)c->cig * WG_LANES;

				WG_IN(*(wg_v8f *)o, *(wg_v8f *)(o + step), *(wg_v8f *)(o + 2 * step),
				      *(wg_v8f *)(o + 3 * step), t[i][0], t[i][1], t[i][2], t[i][3]);
			}
		}
	}
}

/* M[xi] of six output channels from @co0 for the sixteen tiles: [xi][6][16]. */
static __attribute__((target("avx2,fma")))
void wg_multiply(const struct neuron_conv_args *c, u32 co0, const float *v, float *m)
{
	u32 xi, r, k;

	for (xi = 0; xi < 16; xi++) {
		const float *a = wg_u(c, xi, co0), *b = v + (u64)xi * c->cig * WG_LANES;
		wg_v8f m0[WG_ROWS], m1[WG_ROWS];

		for (r = 0; r < WG_ROWS; r++)
			m0[r] = m1[r] = (wg_v8f){ 0 };
		for (k = 0; k < c->cig; k++, a += WG_ROWS, b += WG_LANES) {
			wg_v8f b0 = *(const wg_v8f *)b, b1 = *(const wg_v8f *)(b + 8);

			_Pragma("GCC unroll 8")
			for (r = 0; r < WG_ROWS; r++) {
				wg_v8f av = a[r] - (wg_v8f){ 0 };

				m0[r] = WG_FMA(av, b0, m0[r]);
				m1[r] = WG_FMA(av, b1, m1[r]);
			}
		}
		for (r = 0; r < WG_ROWS; r++) {
			*(wg_v8f *)(m + (xi * WG_ROWS + r) * WG_LANES) = m0[r];
			*(wg_v8f *)(m + (xi * WG_ROWS + r) * WG_LANES + 8) = m1[r];
		}
	}
}

/* y of the sixteen tiles for channels [co0, co0 + rows), finished and stored. */
static __attribute__((target("avx2,fma")))
void wg_output(const struct neuron_conv_args *c, u32 n, u32 co0, u32 rows, u32 t0, u32 tiles,
	       const float *m)
{
	u32 tw_count = (c->wo + 1) / 2, r, half, j, l, i;

	for (r = 0; r < rows; r++) {
		float y[2][2][WG_LANES];

		for (half = 0; half < 2; half++) {
			wg_v8f mv[16], s[2][4];

			for (j = 0; j < 16; j++)
				mv[j] = *(const wg_v8f *)(m + (j * WG_ROWS + r) * WG_LANES + 8 * half);
			for (j = 0; j < 4; j++)
				WG_OUT(s[0][j], s[1][j], mv[j], mv[4 + j], mv[8 + j], mv[12 + j]);
			for (i = 0; i < 2; i++)
				WG_OUT(*(wg_v8f *)(y[i][0] + 8 * half), *(wg_v8f *)(y[i][1] + 8 * half),
				       s[i][0], s[i][1], s[i][2], s[i][3]);
		}
		for (l = 0; l < WG_LANES && t0 + l < tiles; l++) {
			u32 th = (t0 + l) / tw_count, tw = (t0 + l) % tw_count;

			for (i = 0; i < 2; i++)
				for (j = 0; j < 2; j++)
					wg_store(c, n, co0 + r, th, tw, i, j, y[i][j][l]);
		}
	}
}

void neuron_conv_winograd(const struct neuron_conv_args *c, u32 n,
			  const struct neuron_engine_slot *scratch)
{
	u64 v_floats = 16ull * c->cig * WG_LANES, m_floats = 16 * WG_ROWS * WG_LANES;
	u64 patch_floats = 16 * WG_LANES;
	u32 tiles = ((c->ho + 1) / 2) * ((c->wo + 1) / 2), t0, co;
	float *v, *m;

	if (!neuron_cpu_has_avx2_fma() || !scratch || !scratch->base ||
	    (v_floats + m_floats + patch_floats) * sizeof(float) > scratch->size) {
		wg_reference(c, n);
		return;
	}
	v = scratch->base;
	m = v + v_floats;
	for (t0 = 0; t0 < tiles; t0 += WG_LANES) {
		wg_input(c, n, t0, tiles, v, m + m_floats);
		for (co = 0; co < c->co; co += WG_ROWS) {
			wg_multiply(c, co, v, m);
			wg_output(c, n, co, c->co - co < WG_ROWS ? c->co - co : WG_ROWS, t0, tiles, m);
		}
	}
}
