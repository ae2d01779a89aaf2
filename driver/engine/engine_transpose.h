/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Engine: W x W transposes of float vectors, for the kernels that put
 * channels in the vector lanes and read or write planes whose lanes are
 * positions: the depthwise convolution's layout (engine_grouped.c) and
 * the narrow convolution's output rows (engine_narrow.c). Values move,
 * none is computed, so the bits are those given.
 */
#ifndef NEURON_ENGINE_TRANSPOSE_H
#define NEURON_ENGINE_TRANSPOSE_H

#include "neuron_engine.h"

#ifdef __CHECKER__
#define NEURON_ZIPLO8(a, b)	(a)
#define NEURON_ZIPHI8(a, b)	(b)
#define NEURON_ZIPLO16(a, b)	(a)
#define NEURON_ZIPHI16(a, b)	(b)
#else
/* The first (LO) or second (HI) halves of @a and @b interleaved: a0 b0 a1 b1 ... */
#define NEURON_ZIPLO8(a, b)	__builtin_shufflevector(a, b, 0, 8, 1, 9, 2, 10, 3, 11)
#define NEURON_ZIPHI8(a, b)	__builtin_shufflevector(a, b, 4, 12, 5, 13, 6, 14, 7, 15)
#define NEURON_ZIPLO16(a, b)	\
	__builtin_shufflevector(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23)
#define NEURON_ZIPHI16(a, b)	\
	__builtin_shufflevector(a, b, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31)
#endif

/*
 * Transpose the W x W block of vectors @r in place (row i, lane j to row
 * j, lane i): log2(W) rounds in which rows i and i + W/2 interleave into
 * rows 2i and 2i + 1 (the perfect shuffle).
 */
#define NEURON_TRANSPOSE(V, W, ZLO, ZHI, r)					\
do {										\
	V t_[W];								\
	u32 s_, i_;								\
										\
	_Pragma("GCC unroll 4")							\
	for (s_ = 1; s_ < (W); s_ *= 2) {					\
		_Pragma("GCC unroll 8")						\
		for (i_ = 0; i_ < (W) / 2; i_++) {				\
			t_[2 * i_] = ZLO((r)[i_], (r)[i_ + (W) / 2]);		\
			t_[2 * i_ + 1] = ZHI((r)[i_], (r)[i_ + (W) / 2]);	\
		}							\
		_Pragma("GCC unroll 16")					\
		for (i_ = 0; i_ < (W); i_++)					\
			(r)[i_] = t_[i_];					\
	}									\
} while (0)

/*
 * u64 name(src, sl, sp, n, dst, dl, dp): for each block of W of the @n
 * positions from p, the vectors at @src + l * @sl + p * @sp (l < W)
 * transposed into @dst + l * @dl + p * @dp. Returns the positions done
 * (whole blocks), the caller doing the rest.
 */
#define NEURON_TRANSPOSE_FN(name, isa, V, W, ZLO, ZHI)				\
static __attribute__((target(isa)))						\
u64 name(const float *src, u64 sl, u64 sp, u64 n, float *dst, u64 dl, u64 dp)	\
{										\
	V r[W];									\
	u64 p;									\
	u32 l;									\
										\
	for (p = 0; p + (W) <= n; p += (W)) {					\
		_Pragma("GCC unroll 16")					\
		for (l = 0; l < (W); l++)					\
			r[l] = *(const V *)(src + l * sl + p * sp);		\
		NEURON_TRANSPOSE(V, W, ZLO, ZHI, r);				\
		_Pragma("GCC unroll 16")					\
		for (l = 0; l < (W); l++)					\
			*(V *)(dst + l * dl + p * dp) = r[l];			\
	}									\
	return p;								\
}

/*
 * The last block of a transpose, of @m < W positions, which
 * NEURON_TRANSPOSE_FN leaves to its caller, in the two directions the
 * depthwise layout takes. name_in: the W rows at @src + l * @sl, @m
 * elements each, into the @m vectors at @dst + j * @dp. name_out: the @m
 * vectors at @src + j * @sp into the W rows at @dst + l * @dl, @m
 * elements each. A row is read as one vector where its W elements end
 * inside the block (at or before the last row's @m-th: what lies between
 * the rows is inside the operand), element by element otherwise (the
 * last rows, whose vectors would run past it); rows are written element
 * by element, nothing past them.
 */
#define NEURON_TRANSPOSE_PART_FN(name, isa, V, W, ZLO, ZHI)			\
static __attribute__((target(isa)))						\
void name##_in(const float *src, u64 sl, u32 m, float *dst, u64 dp)		\
{										\
	V r[W];									\
	float part[W];								\
	u32 l;									\
										\
	for (l = 0; l < (W); l++) {						\
		if ((u64)((W) - 1 - l) * sl >= (W) - m) {			\
			r[l] = *(const V *)(src + l * sl);			\
		} else {							\
			NEURON_LOAD_PART(part, src + l * sl, m, W);		\
			r[l] = *(const V *)part;				\
		}								\
	}									\
	NEURON_TRANSPOSE(V, W, ZLO, ZHI, r);					\
	for (l = 0; l < m; l++)							\
		*(V *)(dst + l * dp) = r[l];					\
}										\
										\
static __attribute__((target(isa)))						\
void name##_out(const float *src, u64 sp, u32 m, float *dst, u64 dl)		\
{										\
	V r[W];									\
	float row[W];								\
	u32 l, j;								\
										\
	for (l = 0; l < (W); l++) {						\
		if (l < m)							\
			r[l] = *(const V *)(src + l * sp);			\
		else								\
			r[l] = (V){ 0 };					\
	}									\
	NEURON_TRANSPOSE(V, W, ZLO, ZHI, r);					\
	for (l = 0; l < (W); l++) {						\
		*(V *)row = r[l];						\
		for (j = 0; j < m; j++)						\
			dst[l * dl + j] = row[j];				\
	}									\
}

#endif /* NEURON_ENGINE_TRANSPOSE_H */
