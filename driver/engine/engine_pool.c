// SPDX-License-Identifier: GPL-2.0
/*
 * Engine: the fast POOL2D path, in GCC vector extensions with a per-function
 * target attribute (AVX2), chosen at run time (not at the scalar level of
 * neuron_simd_set_thread(), where the reference runs). Sixteen lanes
 * (AVX-512F) measured 10% slower on ResNet-50's max pool (AMD EPYC).
 *
 * Lanes are eight neighbouring output columns of one row whose windows
 * lie wholly inside the input's columns. They share the window's rows, so
 * the taps inside are the same for all lanes, in the same order, and each
 * lane runs the reference's steps exactly: MAX takes the first tap, then a
 * tap greater than the maximum or NaN; AVG adds from +0 in order and divides
 * by the same count. The caller computes the other columns. Rows too
 * narrow for eight columns take eight channels as lanes instead, each
 * lane again the reference's steps.
 */
#include "neuron_engine.h"
#include "engine_gather.h"

typedef gather_v8f pool_v8f;
typedef gather_v8i pool_v8i;

/* Vectors of a row pooled at once: their chains of selects are independent
 * (ResNet-50's 3x3 max pool of stride 2 12% faster than one at a time). */
#define POOL_CHAINS	4

static inline __attribute__((target("avx2,fma")))
pool_v8f pool_step(const struct neuron_pool_args *p, pool_v8f acc, pool_v8f v, u32 count)
{
	pool_v8i take;

	if (!p->max)
		return acc + v;
	if (!count)
		return v;
	take = (pool_v8i)(v > acc) | (pool_v8i)(v != v);
	return (pool_v8f)(((pool_v8i)v & take) | ((pool_v8i)acc & ~take));
}

/*
 * @n (1 or POOL_CHAINS, a constant) vectors of eight columns from @wo, each
 * window's taps in the reference's order; the vectors' chains independent.
 */
static inline __attribute__((target("avx2,fma"), always_inline))
void pool_vec(const struct neuron_pool_args *p, const float *x, float *out, u32 wo, const u32 n)
{
	pool_v8f acc[POOL_CHAINS];
	u32 kh, kw, j, count = 0;

	for (j = 0; j < n; j++)
		acc[j] = (pool_v8f){ 0 };

	for (kh = 0; kh < p->kh; kh++) {
		s64 ih = p->ih0 + kh;
		const float *row;

		if (ih < 0 || ih >= p->h)
			continue;
		row = x + (u64)ih * p->xs2 + (u64)wo * p->sw - p->pl;
		for (kw = 0; kw < p->kw; kw++, count++)
			for (j = 0; j < n; j++) {
				const float *t = row + kw + (u64)j * 8 * p->sw;

				acc[j] = pool_step(p, acc[j], p->sw == 1 ? *(const pool_v8f *)t :
						   gather_evens8(t), count);
			}
	}
	for (j = 0; j < n; j++) {
		if (!p->max)
			acc[j] = acc[j] / (float)(p->count_pad ? p->kh * p->kw : count);
		*(pool_v8f *)(out + wo + j * 8) = acc[j];
	}
}

/*
 * Columns [wo0, wo1) (at least eight), POOL_CHAINS vectors at a time, then
 * one; the last eight overlap the ones before when the count is not a
 * multiple of eight (a column computed twice gets the same bits).
 */
static __attribute__((target("avx2,fma")))
u32 pool_row(const struct neuron_pool_args *p, const float *x, float *out, u32 wo0, u32 wo1)
{
	u32 wo;

	for (wo = wo0; wo + POOL_CHAINS * 8 <= wo1; wo += POOL_CHAINS * 8)
		pool_vec(p, x, out, wo, POOL_CHAINS);
	for (; wo + 8 <= wo1; wo += 8)
		pool_vec(p, x, out, wo, 1);
	if (wo < wo1)
		pool_vec(p, x, out, wo1 - 8, 1);
	return wo1;
}

u32 neuron_pool_row(const struct neuron_pool_args *p, const float *x, float *out, u32 wo0, u32 wo1)
{
	if (neuron_simd_level() == NEURON_SIMD_SCALAR || (p->sw != 1 && p->sw != 2) || wo1 < wo0 + 8)
		return wo0;
	return pool_row(p, x, out, wo0, wo1);
}

__attribute__((target("avx2,fma")))
void neuron_pool_channels(const struct neuron_pool_args *p, const float *x, u64 cs, u64 xs3, u32 w,
			  float *out, u64 os, u32 wo)
{
	pool_v8f acc = { 0 };
	u32 kh, kw, l, count = 0;
	float lanes[8];

	for (kh = 0; kh < p->kh; kh++) {
		s64 ih = p->ih0 + kh;

		if (ih < 0 || ih >= p->h)
			continue;
		for (kw = 0; kw < p->kw; kw++) {
			s64 iw = (s64)wo * p->sw - p->pl + kw;
			const float *e;

			if (iw < 0 || iw >= w)
				continue;
			e = x + (u64)ih * p->xs2 + (u64)iw * xs3;
			for (l = 0; l < 8; l++)
				lanes[l] = e[l * cs];
			acc = pool_step(p, acc, *(const pool_v8f *)lanes, count++);
		}
	}
	if (!p->max)
		acc = acc / (float)(p->count_pad ? p->kh * p->kw : count);
	*(pool_v8f *)lanes = acc;
	for (l = 0; l < 8; l++)
		out[l * os] = lanes[l];
}

int neuron_pool_channels_ok(void)
{
	return neuron_simd_level() != NEURON_SIMD_SCALAR;
}
