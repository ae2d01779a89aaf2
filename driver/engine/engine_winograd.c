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
 * V of sixteen tiles (the runs @run) for every input channel, into @v as
 * [xi][ci][16]. Each tile's 4x4 input goes into @patch (scratch) as
 * [i][j][16], zeros outside the input, then is transformed by vector.
 * Element (i, j) of sixteen neighbouring tiles lies on every other
 * column: it is gathered by vector where the loads stay inside the image,
 * else copied lane by lane (no AVX2 gathers: QEMU's emulation of them
 * gave wrong values here).
 */
static __attribute__((target("avx2,fma")))
void wg_input(const struct neuron_conv_args *c, u32 n, const struct neuron_run *run, u32 runs,
	      float *v, float *patch)
{
	const float *image = c->x + n * c->xs[0];
	struct neuron_plane plane = {
		.x = image, .row = c->xs[2], .h = c->h, .w = c->w,
		.end = image + (u64)(c->cig - 1) * c->xs[1] + (u64)(c->h - 1) * c->xs[2] +
		       (u64)(c->w - 1) * c->xs[3] + 1,
	};
	int even = c->xs[3] == 1 && c->w < (1u << 30) && c->h < (1u << 30);
	u32 l, ci, i, j, half, r, xi;
	s64 row[WG_LANES], col[WG_LANES];

	for (l = 0; l < WG_LANES; l++) {
		/* A lane past the tiles reads nothing: a row far outside. */
		row[l] = -8;
		col[l] = 0;
	}
	for (r = 0; r < runs; r++)
		for (l = run[r].at; l < run[r].at + run[r].len; l++) {
			row[l] = run[r].ih - c->pt;
			col[l] = run[r].iw + 2 * (s64)(l - run[r].at) - c->pl;
		}
	for (ci = 0; ci < c->cig; ci++) {
		const float *x = image + ci * c->xs[1];

		for (xi = 0; even && xi < 16; xi++)
			if (!neuron_gather_even(&plane, ci * c->xs[1], (s64)(xi / 4) - c->pt,
						(s64)(xi % 4) - c->pl, run, runs, patch + xi * WG_LANES))
				break;
		for (l = 0; l < WG_LANES && !(even && xi == 16); l++) {
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

/*
 * M[xi] of the sixteen tiles for the blocks of six output channels from
 * @co0 to @co1, into @m as [block][xi][6][16]: V[xi] stays in L1 while
 * every block's U[xi] passes over it. With @half (no tile past the
 * eighth), the last eight lanes are zeros, not computed.
 */
static __attribute__((target("avx2,fma")))
void wg_multiply(const struct neuron_conv_args *c, u32 xi, u32 co0, u32 co1, const float *v, float *m,
		 int half)
{
	u32 co, r, k;

	for (co = co0; co < co1; co += WG_ROWS) {
		const float *a = wg_u(c, xi, co), *b = v + (u64)xi * c->cig * WG_LANES;
		float *mb = m + ((u64)(co - co0) / WG_ROWS * 16 + xi) * WG_ROWS * WG_LANES;
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

/*
 * y of the sixteen tiles (the runs @run) for channels [co0, co0 + rows),
 * finished and stored. The two outputs of a tile in one row sit side by
 * side, so a run's row of outputs is contiguous when the output's columns
 * are: its y are interleaved and finished by vector.
 */
static __attribute__((target("avx2,fma")))
void wg_output(const struct neuron_conv_args *c, u32 n, u32 co0, u32 rows,
	       const struct neuron_run *run, u32 runs, const float *m)
{
	u32 r, half, j, l, i, k;

	for (r = 0; r < rows; r++) {
		float y[2][2][WG_LANES], line[2][2 * WG_LANES];

		for (half = 0; half < 2; half++) {
			wg_v8f mv[16], s[2][4];

			for (j = 0; j < 16; j++)
				mv[j] = *(const wg_v8f *)(m + (j * WG_ROWS + r) * WG_LANES + 8 * half);
			for (j = 0; j < 4; j++)
				WG_OUT(s[0][j], s[1][j], mv[j], mv[4 + j], mv[8 + j], mv[12 + j]);
			for (i = 0; i < 2; i++) {
				WG_OUT(*(wg_v8f *)(y[i][0] + 8 * half), *(wg_v8f *)(y[i][1] + 8 * half),
				       s[i][0], s[i][1], s[i][2], s[i][3]);
				*(wg_v8f *)(line[i] + 16 * half) =
					WG_ZIP_LO(*(wg_v8f *)(y[i][0] + 8 * half), *(wg_v8f *)(y[i][1] + 8 * half));
				*(wg_v8f *)(line[i] + 16 * half + 8) =
					WG_ZIP_HI(*(wg_v8f *)(y[i][0] + 8 * half), *(wg_v8f *)(y[i][1] + 8 * half));
			}
		}
		for (k = 0; k < runs; k++) {
			/* The run's tiles: row th, columns tw0 .. tw0 + len - 1. */
			u32 th = (u32)(run[k].ih / 2), tw0 = (u32)(run[k].iw / 2), at = run[k].at;

			for (i = 0; i < 2 && 2 * th + i < c->ho; i++) {
				float *out = c->o + n * c->os[0] + (u64)(co0 + r) * c->os[1] +
					     (u64)(2 * th + i) * c->os[2];
				u32 count = 2 * run[k].len, done;

				if (count > c->wo - 2 * tw0)
					count = c->wo - 2 * tw0;
				if (c->os[3] != 1) {
					for (l = 0; l < count; l++)
						wg_store(c, n, co0 + r, th, tw0 + (l / 2), i, l % 2,
							 line[i][2 * at + l]);
					continue;
				}
				out += 2 * tw0;
				for (done = 0; done < count; done += 8)
					wg_finish(c, co0 + r, out + done, line[i] + 2 * at + done,
						  count - done < 8 ? count - done : 8);
			}
		}
	}
}

void neuron_conv_winograd(const struct neuron_conv_args *c, u32 n,
			  const struct neuron_engine_slot *scratch)
{
	/* M of one block of six output channels: [16][6][16]. */
	const u64 block_floats = 16 * WG_ROWS * WG_LANES;
	u64 v_floats = 16ull * c->cig * WG_LANES, patch_floats = 16 * WG_LANES, blocks = 0;
	u32 tiles = ((c->ho + 1) / 2) * ((c->wo + 1) / 2), t0, co0, co1, co, xi;
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
		u32 runs = neuron_runs(t0, tiles, (c->wo + 1) / 2, 2, 2, run);

		wg_input(c, n, run, runs, v, m + blocks * block_floats);
		for (co0 = 0; co0 < c->co; co0 = co1) {
			co1 = c->co - co0 < blocks * WG_ROWS ? c->co : co0 + (u32)blocks * WG_ROWS;
			for (xi = 0; xi < 16; xi++)
				wg_multiply(c, xi, co0, co1, v, m, tiles - t0 <= 8);
			for (co = co0; co < co1; co += WG_ROWS)
				wg_output(c, n, co, co1 - co < WG_ROWS ? co1 - co : WG_ROWS, run, runs,
					  m + (u64)(co - co0) / WG_ROWS * block_floats);
		}
	}
}
