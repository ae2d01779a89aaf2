/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Engine: reading a tap of sixteen output positions at once, shared by the
 * convolution's columns (engine_conv.c) and Winograd's input tiles
 * (engine_winograd.c: tiles 2 or 4 columns apart); pooling (engine_pool.c)
 * takes its even-column shuffle. Inline, for AVX2 callers only.
 *
 * The sixteen lanes are positions in runs along rows of an output grid:
 * lanes [at, at + len) are positions of one row, the first reading input
 * row ih and column iw before a tap's shifts.
 */
#ifndef NEURON_ENGINE_GATHER_H
#define NEURON_ENGINE_GATHER_H

#include "neuron_engine.h"

#define NEURON_RUN_LANES	16

struct neuron_run {
	u32 at, len;
	s64 ih, iw;
};

/* A plane of an input: h rows of w contiguous columns, @row apart; the
 * loads of neuron_gather_even() stay within [x, end). */
struct neuron_plane {
	const float *x, *end;
	u64 row;
	s64 h, w;
};

typedef float gather_v8f __attribute__((vector_size(32), aligned(4)));
typedef int gather_v8i __attribute__((vector_size(32), aligned(4)));

/* Lanes 0, 2, 4, 6 of @lo and 1, 3, 5, 7 of @hi (GCC 12 and clang). */
#ifdef __CHECKER__
#define GATHER_EVENS(lo, hi)	(lo)
#else
#define GATHER_EVENS(lo, hi)	__builtin_shufflevector(lo, hi, 0, 2, 4, 6, 9, 11, 13, 15)
#endif

/*
 * Columns 0, 2, ..., 14 from @p: two loads, the second ending at column
 * 14, so that nothing past it is read.
 */
static inline __attribute__((target("avx2,fma")))
gather_v8f gather_evens8(const float *p)
{
	return GATHER_EVENS(*(const gather_v8f *)p, *(const gather_v8f *)(p + 7));
}

/*
 * Cut positions [first, count) of a grid @wo wide with strides (sh, sw)
 * into at most NEURON_RUN_LANES lanes' runs; returns how many.
 */
static inline u32 neuron_runs(u32 first, u32 count, u32 wo, u32 sh, u32 sw, struct neuron_run *run)
{
	u32 at = 0, runs, ho = first / wo, col = first % wo;

	for (runs = 0; at < NEURON_RUN_LANES && first + at < count; runs++) {
		run[runs].at = at;
		run[runs].len = wo - col;
		if (run[runs].len > NEURON_RUN_LANES - at)
			run[runs].len = NEURON_RUN_LANES - at;
		if (run[runs].len > count - (first + at))
			run[runs].len = count - (first + at);
		run[runs].ih = (s64)ho * sh;
		run[runs].iw = (s64)col * sw;
		at += run[runs].len;
		col = 0;
		ho++;
	}
	return runs;
}

/*
 * Columns 0, 4, ..., 28 from @p: four loads, the last ending at column
 * 28, so that nothing past it is read.
 */
#ifdef __CHECKER__
#define GATHER_FOURS(a0, a1, a2, a3)	(a0)
#else
#define GATHER_FOURS(a0, a1, a2, a3)						\
	__builtin_shufflevector(__builtin_shufflevector(a0, a1, 0, 4, 8, 12, 0, 4, 8, 12), \
				__builtin_shufflevector(a2, a3, 0, 4, 11, 15, 0, 4, 11, 15), \
				0, 1, 2, 3, 8, 9, 10, 11)
#endif
static inline __attribute__((target("avx2,fma")))
gather_v8f gather_fours8(const float *p)
{
	return GATHER_FOURS(*(const gather_v8f *)p, *(const gather_v8f *)(p + 8),
			    *(const gather_v8f *)(p + 16), *(const gather_v8f *)(p + 21));
}

/*
 * Lanes [*@lo, *@hi) of run @r, whose lane l reads column
 * @iw + @s (l - at) of a row @w wide: those inside it (empty when lo >= hi).
 */
static inline void neuron_stride_span(const struct neuron_run *r, s64 iw, s64 w, s64 s,
				      s64 *lo, s64 *hi)
{
	*lo = r->at;
	*hi = r->at + r->len;
	if (iw < 0)
		*lo += (-iw + s - 1) / s;
	if (iw + s * (s64)r->len > w)
		*hi = w > iw ? r->at + (w - iw + s - 1) / s : *lo;
}

static inline void neuron_even_span(const struct neuron_run *r, s64 iw, s64 w, s64 *lo, s64 *hi)
{
	neuron_stride_span(r, iw, w, 2, lo, hi);
}

/*
 * The sixteen lanes of a tap of stride @s (2 or 4, a constant): lane l of
 * run r reads column iw + dw + s (l - at) of row ih + dh of the plane at
 * @offset from x, zero outside the plane and for lanes in no run, into
 * @dst; each run by plain loads of 15 s + 1 columns and shuffles of every
 * s-th. Returns 0, having written nothing, when a load would leave
 * [x, end).
 */
static inline __attribute__((target("avx2,fma"), always_inline))
int neuron_gather_stride(const struct neuron_plane *pl, u64 offset, s64 dh, s64 dw,
			 const struct neuron_run *run, u32 runs, float *dst, const s64 s)
{
	static const int lanes[8] = { 0, 1, 2, 3, 4, 5, 6, 7 };
	gather_v8i lane = *(const gather_v8i *)lanes, v0 = { 0 }, v1 = { 0 };
	u32 r;

	for (r = 0; r < runs; r++) {
		s64 ih = run[r].ih + dh, iw = run[r].iw + dw;
		/* Lanes [lo, hi) read columns iw + s (lane - at), inside [0, w). */
		s64 lo, hi, first;
		const float *row;

		if (ih < 0 || ih >= pl->h)
			continue;
		neuron_stride_span(&run[r], iw, pl->w, s, &lo, &hi);
		if (lo >= hi)
			continue;
		/* Column of lane 0 (read only when inside the row). */
		row = pl->x + offset + (u64)ih * pl->row;
		first = iw - s * (s64)run[r].at;
		if (first < -(s64)(row - pl->x) ||
		    first + s * (NEURON_RUN_LANES - 1) + 1 > (s64)(pl->end - row))
			return 0;
		row += first;
		if (lo < 8)
			v0 |= (gather_v8i)(s == 2 ? gather_evens8(row) : gather_fours8(row)) &
			      ((lane >= (int)lo) & (lane < (int)hi));
		if (hi > 8)
			v1 |= (gather_v8i)(s == 2 ? gather_evens8(row + 16) : gather_fours8(row + 32)) &
			      ((lane + 8 >= (int)lo) & (lane + 8 < (int)hi));
	}
	*(gather_v8f *)dst = (gather_v8f)v0;
	*(gather_v8f *)(dst + 8) = (gather_v8f)v1;
	return 1;
}

static inline __attribute__((target("avx2,fma")))
int neuron_gather_even(const struct neuron_plane *pl, u64 offset, s64 dh, s64 dw,
		       const struct neuron_run *run, u32 runs, float *dst)
{
	return neuron_gather_stride(pl, offset, dh, dw, run, runs, dst, 2);
}

#endif
