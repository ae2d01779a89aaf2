// SPDX-License-Identifier: GPL-2.0
/*
 * Engine: the fast MATMUL path, in GCC vector extensions with per-function
 * target attributes (no intrinsics headers), chosen at run time: AVX-512,
 * AVX2 with FMA, or none (the reference loop then runs).
 *
 * Every output lane computes exactly the reference's chain,
 * acc = fma(a[m,k], b[k,n], acc) for k in order, so the result is the
 * same bit for bit whichever path runs: vectors only spread the
 * independent outputs of a row across lanes.
 *
 * It applies to f32 or bf16 operands whose output and B rows are
 * contiguous (unit stride along n); bf16 is widened to f32 (exactly)
 * while packing, so both run the same loop. Columns past the last full
 * vector take the scalar chain.
 */
#include "neuron_engine.h"

typedef float neuron_v8f __attribute__((vector_size(32), aligned(4)));
typedef float neuron_v16f __attribute__((vector_size(64), aligned(4)));

/* sparse does not know these compiler builtins. */
#ifdef __CHECKER__
neuron_v8f __builtin_ia32_vfmaddps256(neuron_v8f a, neuron_v8f b, neuron_v8f c);
neuron_v16f __builtin_ia32_vfmaddps512_mask(neuron_v16f a, neuron_v16f b, neuron_v16f c,
					    unsigned short mask, int rounding);
unsigned int __builtin_ia32_stmxcsr(void);
unsigned long long __builtin_ia32_rdtsc(void);
void __builtin_ia32_ldmxcsr(unsigned int mxcsr);
#endif

/*
 * Register block: rows of A (6 with AVX2's 16 registers, 12 with
 * AVX-512's 32) by two vectors of B columns, accumulators plus the two B
 * vectors and a broadcast all in registers.
 * Cache blocks: a panel of B columns stays in cache while every row block
 * passes over it, GEMM_KC rows of k at a time. Across k blocks the partial
 * sums wait in the output, so each lane still runs one fma chain in k
 * order.
 */
#define GEMM_VECS	2
#define GEMM_KC		256

/*
 * Scratch: the packed block of B (GEMM_KC rows of k by GEMM_NC columns),
 * then the packed rows of A of one register block (GEMM_KC by its rows,
 * k-major), so that the inner loop streams both from contiguous memory.
 */
#define GEMM_B_BYTES	262144
#define GEMM_NC		(GEMM_B_BYTES / (GEMM_KC * 4))
/* The scratch's upper half is op_matmul's (B copied into rows). */
_Static_assert(GEMM_B_BYTES + GEMM_KC * 16 * 4 <= NEURON_GEMM_SCRATCH / 2,
	       "the matmul's packing stays in the lower half of the scratch");

/* Element @i of f32 or bf16 (exactly widened) data. */
static inline float load(const void *p, u64 i, int half)
{
	union { u32 u; float f; } v;

	if (!half)
		return ((const float *)p)[i];
	v.u = (u32)((const u16 *)p)[i] << 16;
	return v.f;
}

/*
 * An operand's mode: GEMM_HALF when stored as bf16, GEMM_PAIRS for
 * MATMUL's bf16 pairs (an f32 operand rounded to bf16 as it is read; k in
 * pairs, odd element first, K padded to even with a zero).
 */
#define GEMM_HALF	NEURON_GEMM_A_BF16
#define GEMM_PAIRS	NEURON_GEMM_PAIRS
#define GEMM_A_MODE(kind)	((kind) & (NEURON_GEMM_A_BF16 | GEMM_PAIRS))
#define GEMM_B_MODE(kind)	((((kind) & NEURON_GEMM_B_BF16) ? GEMM_HALF : 0) | ((kind) & GEMM_PAIRS))
/*
 * Where column @n of B starts: in its row (B in rows, @bp 0), or in its
 * panel of NEURON_MATMUL_PANEL columns, panels @bp floats apart (B in
 * panels; its rows are then NEURON_MATMUL_PANEL floats apart, bs_k).
 */
#define GEMM_BCOL(n)	(bp ? ((u64)(n) / NEURON_MATMUL_PANEL) * bp + (u64)(n) % NEURON_MATMUL_PANEL \
			    : (u64)(n))

/* The k positions the chains run over: K, or K padded to even in pairs. */
static inline u32 gemm_chain(u32 K, u32 kind)
{
	return (kind & GEMM_PAIRS) ? K + (K & 1) : K;
}

/*
 * The element at chain position @k of a row or column from @base (@step
 * elements a k) of an operand in @mode: in pairs position k reads k ^ 1
 * (odd first), and the padding reads 0.
 */
static inline float gemm_elem(const void *p, u64 base, u64 step, u32 k, u32 K, u32 mode)
{
	union { u32 u; float f; } v;

	if (!(mode & GEMM_PAIRS))
		return load(p, base + k * step, mode & GEMM_HALF);
	k ^= 1;
	if (k >= K)
		return 0.0f;
	v.u = (u32)neuron_bf16_pair_elem(p, base + k * step, mode & GEMM_HALF) << 16;
	return v.f;
}

typedef u32 neuron_v8u __attribute__((vector_size(32), aligned(4)));
typedef u32 neuron_v16u __attribute__((vector_size(64), aligned(4)));
typedef u16 neuron_v16h __attribute__((vector_size(32), aligned(2)));
typedef u16 neuron_v8h __attribute__((vector_size(16), aligned(2)));
typedef u64 neuron_v4q __attribute__((vector_size(32), aligned(4)));
typedef u32 neuron_v4u __attribute__((vector_size(16), aligned(2)));

/*
 * neuron_bf16_pair_elem() of the f32 bits in each lane of @x (of vector
 * type U), in the lanes' low halves.
 */
#define BF_ROUND(U, x)								\
	({									\
		U x_ = (x);							\
		U r_ = (x_ + 0x7fffu + ((x_ >> 16) & 1)) >> 16;			\
		U den_ = (U)((x_ & 0x7f800000u) == 0);				\
		U nan_ = (U)((x_ & 0x7fffffffu) > 0x7f800000u);			\
		r_ = (den_ & ((x_ >> 16) & 0x8000u)) | (~den_ & r_);		\
		(nan_ & ((x_ >> 16) | 0x40u)) | (~nan_ & r_);			\
	})

/*
 * bf16 lanes @h widened to dwords of vector type U (sparse knows no
 * __builtin_convertvector).
 */
#ifdef __CHECKER__
#define BF_WIDEN(U, h)	((U){ 0 })
#else
#define BF_WIDEN(U, h)	__builtin_convertvector((h), U)
#endif
#define BF_WIDEN8(h)	BF_WIDEN(neuron_v8u, h)

/*
 * Eight chain positions from @k (even) of a row from @base whose
 * elements are contiguous, as the kernels read them in @mode (pairs
 * swapped, f32 rounded, bf16 widened), into @dst. k + 8 <= K in pairs.
 */
static inline __attribute__((always_inline))
void gemm_elems8(float *dst, const void *p, u64 base, u32 k, u32 mode)
{
	neuron_v8u v;

	if (mode & GEMM_HALF) {
		neuron_v4u h = *(const neuron_v4u *)((const u16 *)p + base + k);

		if (mode & GEMM_PAIRS)
			h = h << 16 | h >> 16;
		v = BF_WIDEN8((neuron_v8h)h) << 16;
	} else {
		neuron_v4q q = *(const neuron_v4q *)((const u32 *)p + base + k);

		if (mode & GEMM_PAIRS)
			q = q << 32 | q >> 32;
		v = BF_ROUND(neuron_v8u, (neuron_v8u)q) << 16;
	}
	*(neuron_v8u *)dst = v;
}

/*
 * Chain positions [k0, k1) of @rows rows of A from row m into @dst, a
 * row of @ld floats each, as gemm_elem() reads them: by eight where a
 * row is contiguous, the rest one by one.
 */
static __attribute__((target("avx2,fma"), __noinline__))
void gemm_pack_a(float *dst, u32 ld, const void *a, u64 as_m, u64 as_k, u32 m, u32 rows, u32 k0,
		 u32 k1, u32 K, u32 mode)
{
	u32 r, k;

	/*
	 * Rows side by side in memory (A transposed: an im2col's windows):
	 * eight rows' elements of a chain position converted at once.
	 */
	if (as_m == 1 && as_k != 1 && (mode & GEMM_PAIRS) && !(mode & GEMM_HALF)) {
		for (r = 0; r < rows; r += 8) {
			u32 n = rows - r < 8 ? rows - r : 8, j;

			for (k = k0; k < k1; k++) {
				u32 src = k ^ 1;
				u32 in[8] = { 0 }, out[8];

				for (j = 0; src < K && j < n; j++)
					in[j] = ((const u32 *)a)[m + r + j + src * as_k];
				*(neuron_v8u *)out = BF_ROUND(neuron_v8u, *(neuron_v8u *)in) << 16;
				for (j = 0; j < n; j++)
					((u32 *)dst)[(r + j) * ld + k - k0] = out[j];
			}
		}
		return;
	}
	for (r = 0; r < rows; r++, dst += ld) {
		u64 base = (m + r) * as_m;

		k = k0;
		for (; as_k == 1 && k + 8 <= k1 && k + 8 <= K; k += 8)
			gemm_elems8(dst + k - k0, a, base, k, mode);
		for (; k < k1; k++)
			dst[k - k0] = gemm_elem(a, base, as_k, k, K, mode);
	}
}

/*
 * B's chain positions [k0, k1) of columns [n, n + pw) into @dst, pw
 * floats a position, as gemm_elem() reads them: rows of eights.
 */
static __attribute__((target("avx2,fma"), __noinline__))
void gemm_pack_b(float *dst, const void *b, u64 bs_k, u32 n, u32 pw, u32 k0, u32 k1, u32 K,
		 u32 mode)
{
	u32 k, j;

	for (k = k0; k < k1; k++, dst += pw) {
		u32 src = (mode & GEMM_PAIRS) ? k ^ 1 : k;
		u64 base = (u64)src * bs_k + n;

		for (j = 0; j < pw; j += 8) {
			neuron_v8u v = { 0 };

			if (src >= K)
				v = (neuron_v8u){ 0 };
			else if (mode & GEMM_HALF)
				v = BF_WIDEN8(*(const neuron_v8h *)((const u16 *)b + base + j)) << 16;
			else if (mode & GEMM_PAIRS)
				v = BF_ROUND(neuron_v8u, *(const neuron_v8u *)((const u32 *)b + base + j)) << 16;
			else
				v = *(const neuron_v8u *)((const u32 *)b + base + j);
			*(neuron_v8u *)(dst + j) = v;
		}
	}
}

/*
 * B's row for chain position @k at columns [@n, @n + width) in place, as
 * the kernels read it in bmode (bf16 widened; in pairs row k ^ 1, f32
 * rounded, zero past K). gemm_uvec and gemm_hvec: the kernel's u32 and
 * u16 vectors of its width.
 */
#define GEMM_B_VEC(vec, k, n)							\
	({									\
		u32 s_ = (bmode & GEMM_PAIRS) ? (k) ^ 1 : (k);			\
		u64 i_ = (u64)s_ * bs_k + (n);					\
		vec v_ = { 0 };							\
										\
		if (s_ < K && (bmode & GEMM_HALF))				\
			v_ = (vec)(BF_WIDEN(gemm_uvec, *(const gemm_hvec *)((const u16 *)b + i_)) << 16); \
		else if (s_ < K)						\
			v_ = (vec)(BF_ROUND(gemm_uvec, *(const gemm_uvec *)((const u32 *)b + i_)) << 16); \
		v_;								\
	})

/*
 * One register block of @ROWS rows at row m: for every panel of pw
 * columns in [g, g1), the fma chains over k in [k0, k1). A comes from
 * @as with strides (SR, SK); B from its packed panel when BP is 1, in
 * place as f32 when 0, in place through GEMM_B_VEC when 2 (bf16, pairs).
 */
#define GEMM_AHEAD	(GEMM_KC * NEURON_MATMUL_PANEL)
/*
 * A prefetch @bytes past @p, whatever lies there: the address computed as
 * an integer, since it may lie past the operand (or before it).
 */
#define PREFETCH_AT(p, bytes)	__builtin_prefetch((const void *)((unsigned long)(p) + (bytes)))
#define GEMM_TILES(vec, width, fma, ROWS, SR, SK, BP)				\
	do {									\
		for (n = g; n < g1; n += pw) {					\
			vec c0[ROWS], c1[ROWS];					\
										\
			_Pragma("GCC unroll 16")				\
			for (r = 0; r < (ROWS); r++) {				\
				float *row = o + (m + r) * os_m + n;		\
										\
				c0[r] = k0 ? *(vec *)row : (vec){ 0 };		\
				c1[r] = k0 ? *(vec *)(row + width) : (vec){ 0 }; \
			}							\
			for (k = k0; k < k1; k++) {				\
				const float *brow = (BP) == 1 ?			\
					pack + (n - g) * GEMM_KC + (k - k0) * pw : \
					(const float *)b + k * bs_k + GEMM_BCOL(n); \
				vec b0 = (BP) == 2 ? GEMM_B_VEC(vec, k, n) : *(const vec *)brow; \
				vec b1 = (BP) == 2 ? GEMM_B_VEC(vec, k, n + width) :	\
					 *(const vec *)(brow + width);		\
				const float *ak = as + (k - k0) * (SK);		\
										\
				/* B in panels is one stream: the first block	\
				 * of rows fetches 32 KB ahead (the next block	\
				 * of k, or the next panel), which would come	\
				 * from memory. */				\
				if ((BP) == 0 && bp && m == 0) {		\
					PREFETCH_AT(brow, GEMM_AHEAD * 4);	\
					PREFETCH_AT(brow, GEMM_AHEAD * 4 + 64);	\
				}						\
				_Pragma("GCC unroll 16")			\
				for (r = 0; r < (ROWS); r++) {			\
					vec av = ak[r * (SR)] - (vec){ 0 }; /* splat */ \
										\
					c0[r] = fma(av, b0, c0[r]);		\
					c1[r] = fma(av, b1, c1[r]);		\
				}						\
			}							\
			_Pragma("GCC unroll 16")				\
			for (r = 0; r < (ROWS); r++) {				\
				float *row = o + (m + r) * os_m + n;		\
										\
				*(vec *)row = c0[r];				\
				*(vec *)(row + width) = c1[r];			\
			}							\
		}								\
	} while (0)

/*
 * A block of @ROWS rows starting at m: A packed (a row of GEMM_KC
 * each, widened) when bf16 or in pairs, else read in place; B packed
 * when @bpack, else read in place (converted when bf16 or in pairs).
 */
#define GEMM_BLOCK(vec, width, fma, ROWS)					\
	do {									\
		if (apack && amode) {						\
			gemm_pack_a(apack, GEMM_KC, a, as_m, as_k, m, ROWS, k0, k1, K, amode); \
			as = apack;						\
			if (bpack)						\
				GEMM_TILES(vec, width, fma, ROWS, GEMM_KC, 1, 1); \
			else							\
				GEMM_TILES(vec, width, fma, ROWS, GEMM_KC, 1, 2); \
		} else {							\
			as = (const float *)a + m * as_m + k0 * as_k;		\
			if (bpack)						\
				GEMM_TILES(vec, width, fma, ROWS, as_m, as_k, 1); \
			else							\
				GEMM_TILES(vec, width, fma, ROWS, as_m, as_k, 0); \
		}								\
		m += (ROWS);							\
	} while (0)

/*
 * name_last<ROWS>(): the last block of @ROWS rows from row m, A (at @as)
 * and B in place, panels [g, g1), taps [k0, k1); a function of its own,
 * so that the kernel's frame holds one block's sums (a debug kernel's
 * KASAN keeps every block's apart).
 */
#define GEMM_LAST_FN(name, isa, vec, uvec, hvec, width, fma, ROWS)		\
static __attribute__((target(isa), __noinline__))				\
void name##_last##ROWS(const float *as, u64 as_m, u64 as_k, const void *b, u64 bs_k, \
		       u64 bp, float *o, u64 os_m, u32 m, u32 g, u32 g1, u32 k0, u32 k1, \
		       u32 K)							\
{										\
	typedef uvec gemm_uvec;							\
	typedef hvec gemm_hvec;							\
	const u32 pw = width * GEMM_VECS, bmode = 0;				\
	const float *pack = NULL;						\
	u32 n, k, r;								\
										\
	GEMM_TILES(vec, width, fma, ROWS, as_m, as_k, 0);			\
}

/* The 16-lane kernel's last block (gemm_avx512_last<rows>); 8 lanes have none. */
#define GEMM_LAST_CALL(name, rows)						\
	case (rows):								\
		name##_last##rows(as, as_m, as_k, b, bs_k, bp, o, os_m, m, g, g1, k0, k1, K); \
		break;
#define GEMM_LAST16(name)							\
	switch (last) {								\
	GEMM_LAST_CALL(name, 5) GEMM_LAST_CALL(name, 6) GEMM_LAST_CALL(name, 7)	\
	GEMM_LAST_CALL(name, 9) GEMM_LAST_CALL(name, 10) GEMM_LAST_CALL(name, 11) \
	GEMM_LAST_CALL(name, 13) GEMM_LAST_CALL(name, 14)			\
	default:								\
		break;								\
	}									\
	m += last;
#define GEMM_NO_LAST(name)

/*
 * A few rows (a batch of one, say): the product is read-bound on B, so
 * B's rows are streamed in place, in order. Each tile of T vectors of
 * columns keeps its MR rows' sums in registers over the whole of k (each
 * lane one fma chain over k in order), then stores them once.
 */
#define GEMV_ROWS	4
/*
 * Rows of B a tile prefetches ahead of its chain, and the 64-byte lines
 * of each: its own, and for a tile of 16 floats (AVX2's two vectors, half
 * of a panel's row) the next tile's too (the other half, which the tile
 * after it reads in a second pass over k): the CPU's own prefetch did
 * not foresee them. Past B's last tile a prefetch is only a hint. Weights
 * read once from memory, AMD EPYC Zen 1: eight products of 4 rows, 320
 * by 1280 and back (13 MB of weights), 2.26 -> 1.74 ms (onnxruntime's
 * 1.66); EfficientNetB0's products 8% faster.
 */
#define GEMV_AHEAD	32
#define GEMV_LINES(T, width)	((T) * (width) >= 32 ? (T) * (width) / 16 : 2)

/* The rows' fmas of chain position @k against b_[] (A at any strides). */
#define GEMV_STEP(vec, fma, MR, T, k)						\
	do {									\
		_Pragma("GCC unroll 4")						\
		for (r_ = 0; r_ < (MR); r_++) {					\
			vec av = (amode ? gemm_elem(a, r_ * as_m, as_k, (k), K, amode) : \
				  load(a, r_ * as_m + (k) * as_k, 0)) - (vec){ 0 }; \
										\
			_Pragma("GCC unroll 8")					\
			for (t_ = 0; t_ < (T); t_++)				\
				c_[r_][t_] = fma(av, b_[t_], c_[r_][t_]);	\
		}								\
	} while (0)

/* B's bf16 row @k widened into b_[] (T vectors from column n). */
#define GEMV_BF16_ROW(vec, T, k)						\
	do {									\
		const gemm_hvec *bh_ = (const gemm_hvec *)((const u16 *)b + (u64)(k) * bs_k + n); \
										\
		_Pragma("GCC unroll 8")						\
		for (t_ = 0; t_ < (T); t_++)					\
			b_[t_] = (vec)(BF_WIDEN(gemm_uvec, bh_[t_]) << 16);	\
	} while (0)

#define GEMV_TILE(vec, width, fma, MR, T)					\
	do {									\
		vec c_[MR][T], b_[T];						\
		u32 r_, t_, k;							\
										\
		_Pragma("GCC unroll 16")					\
		for (r_ = 0; r_ < (MR); r_++)					\
			for (t_ = 0; t_ < (T); t_++)				\
				c_[r_][t_] = (vec){ 0 };			\
		if (bmode == (GEMM_HALF | GEMM_PAIRS)) {			\
			/* bf16 weights in pairs: rows 2p + 1, then 2p. */	\
			for (k = 0; k + 1 < K; k += 2) {			\
				GEMV_BF16_ROW(vec, T, k + 1);			\
				GEMV_STEP(vec, fma, MR, T, k);			\
				GEMV_BF16_ROW(vec, T, k);			\
				GEMV_STEP(vec, fma, MR, T, k + 1);		\
			}							\
			if (K & 1) {						\
				for (t_ = 0; t_ < (T); t_++)			\
					b_[t_] = (vec){ 0 };			\
				GEMV_STEP(vec, fma, MR, T, k);			\
				GEMV_BF16_ROW(vec, T, k);			\
				GEMV_STEP(vec, fma, MR, T, k + 1);		\
			}							\
		} else {							\
			for (k = 0; k < gemm_chain(K, bmode); k++) {		\
				const float *brow = (const float *)b + k * bs_k; \
										\
				/* A cold B (weights streamed once): the lines	\
				 * GEMV_AHEAD rows on, the next tile's too. */	\
				if (!bmode && k + GEMV_AHEAD < K)		\
					for (t_ = 0; t_ < GEMV_LINES(T, width); t_++) \
						__builtin_prefetch(brow + GEMV_AHEAD * bs_k + \
								   GEMM_BCOL(n + 16 * t_)); \
				_Pragma("GCC unroll 8")				\
				for (t_ = 0; t_ < (T); t_++)			\
					b_[t_] = bmode ? GEMM_B_VEC(vec, k, n + t_ * (width)) : \
							 *(const vec *)(brow + GEMM_BCOL(n + t_ * (width))); \
				GEMV_STEP(vec, fma, MR, T, k);			\
			}							\
		}								\
		_Pragma("GCC unroll 16")					\
		for (r_ = 0; r_ < (MR); r_++)					\
			for (t_ = 0; t_ < (T); t_++)				\
				*(vec *)(o + r_ * os_m + n + t_ * (width)) = c_[r_][t_]; \
	} while (0)

/*
 * GEMV_FNS(name, ...): name_gemv(a, as_m, as_k, b, bs_k, o, os_m, M, N, K)
 * for M (1 to GEMV_ROWS) rows and N a multiple of 2 vectors: with
 * AVX-512's 32 registers tiles of 8 vectors for one or two rows (each
 * row of B read 512 bytes at a time: a cold B streams nearly at memory
 * speed, 1x1344x192 54 -> 37 us), then of 4 vectors, then one of 2; with
 * AVX2's 16, 8 vectors for one row (the FMAs read B from memory), 4 for
 * two, else 2 (one row by 1280x1000 on Zen 1: 0.43 -> 0.22 ms, each line
 * of a panel read whole). Each row count and tile width is a function of its own,
 * so that each has its own small stack frame (the kernel's KASAN build
 * gives every array its own slot).
 */
#define GEMV_FN(name, isa, vec, uvec, hvec, width, fma, MR, T)			\
static __attribute__((target(isa), __noinline__))					\
void name##_gemv_##MR##_##T(const void *a, u64 as_m, u64 as_k, const void *b,	\
			    u64 bs_k, u64 bp, u32 amode, u32 bmode, float *o, u64 os_m,	\
			    u32 n, u32 K)						\
{										\
	typedef uvec gemm_uvec;							\
	typedef hvec gemm_hvec;							\
										\
	GEMV_TILE(vec, width, fma, MR, T);					\
}

#define GEMV_FNS(name, isa, vec, uvec, hvec, width, fma)				\
GEMV_FN(name, isa, vec, uvec, hvec, width, fma, 1, 2)				\
GEMV_FN(name, isa, vec, uvec, hvec, width, fma, 2, 2)				\
GEMV_FN(name, isa, vec, uvec, hvec, width, fma, 3, 2)				\
GEMV_FN(name, isa, vec, uvec, hvec, width, fma, 4, 2)				\
GEMV_FN(name, isa, vec, uvec, hvec, width, fma, 1, 4)				\
GEMV_FN(name, isa, vec, uvec, hvec, width, fma, 2, 4)				\
GEMV_FN(name, isa, vec, uvec, hvec, width, fma, 3, 4)				\
GEMV_FN(name, isa, vec, uvec, hvec, width, fma, 4, 4)				\
GEMV_FN(name, isa, vec, uvec, hvec, width, fma, 1, 8)				\
GEMV_FN(name, isa, vec, uvec, hvec, width, fma, 2, 8)				\
										\
static __attribute__((target(isa)))						\
void name##_gemv(const void *a, u64 as_m, u64 as_k, const void *b, u64 bs_k,	\
		 u64 bp, u32 amode, u32 bmode, float *o, u64 os_m, u32 M, u32 N, u32 K) \
{										\
	u32 n = 0;								\
										\
	for (; ((width) == 16 ? M <= 2 : M == 1) && n + 8 * (width) <= N; n += 8 * (width)) { \
		if (M == 1)							\
			name##_gemv_1_8(a, as_m, as_k, b, bs_k, bp, amode, bmode, o, os_m, n, K); \
		else								\
			name##_gemv_2_8(a, as_m, as_k, b, bs_k, bp, amode, bmode, o, os_m, n, K); \
	}									\
	for (; ((width) == 16 || M <= 2) && n + 4 * (width) <= N; n += 4 * (width)) { \
		switch (M) {							\
		case 1: name##_gemv_1_4(a, as_m, as_k, b, bs_k, bp, amode, bmode, o, os_m, n, K); break; \
		case 2: name##_gemv_2_4(a, as_m, as_k, b, bs_k, bp, amode, bmode, o, os_m, n, K); break; \
		case 3: name##_gemv_3_4(a, as_m, as_k, b, bs_k, bp, amode, bmode, o, os_m, n, K); break; \
		case 4: name##_gemv_4_4(a, as_m, as_k, b, bs_k, bp, amode, bmode, o, os_m, n, K); break; \
		default: return;	/* no rows */				\
		}								\
	}									\
	for (; n < N; n += 2 * (width)) {					\
		switch (M) {							\
		case 1: name##_gemv_1_2(a, as_m, as_k, b, bs_k, bp, amode, bmode, o, os_m, n, K); break; \
		case 2: name##_gemv_2_2(a, as_m, as_k, b, bs_k, bp, amode, bmode, o, os_m, n, K); break; \
		case 3: name##_gemv_3_2(a, as_m, as_k, b, bs_k, bp, amode, bmode, o, os_m, n, K); break; \
		case 4: name##_gemv_4_2(a, as_m, as_k, b, bs_k, bp, amode, bmode, o, os_m, n, K); break; \
		default: return;	/* no rows */				\
		}								\
	}									\
}

/*
 * The whole product: column groups of GEMM_NC, k blocks of GEMM_KC, row
 * blocks of GEMM_ROWS, then the rows left over in blocks of 4, 2 and 1
 * over the same panel of B. B is packed (and bf16 widened) only when
 * more than one block of rows reads it or it is bf16; a few rows read
 * f32 B in place, which costs less than copying it.
 */
#define GEMM_KERNEL(name, isa, vec, uvec, hvec, width, fma, GEMM_ROWS, LAST)	\
static __attribute__((target(isa)))						\
void name(const void *a, u64 as_m, u64 as_k, const void *b, u64 bs_k, u64 bp,	\
	  u32 kind, float *o, u64 os_m, u32 M, u32 N, u32 K, float *pack)	\
{										\
	typedef uvec gemm_uvec;							\
	typedef hvec gemm_hvec;							\
	const u32 pw = width * GEMM_VECS;					\
	const u32 amode = GEMM_A_MODE(kind), bmode = GEMM_B_MODE(kind);		\
	const u32 KC = gemm_chain(K, kind);					\
	float *apack = pack ? pack + GEMM_B_BYTES / 4 : NULL;			\
	int bpack = pack && M >= 2 * GEMM_ROWS && !bp;	/* panels: packed as stored */ \
	u32 m, n, k, k0, k1, r, g, g1, mt = 0, last = 0;			\
	const float *as;							\
										\
	N -= N % pw;								\
	/*									\
	 * Rows in register blocks; the last few (or a few rows) by gemv. With	\
	 * 32 registers and A and B in place, the rows a block of GEMM_ROWS	\
	 * leaves go in one @last block of 5 to 14 rows (two vectors each, so	\
	 * up to 28 sums; 4 and 8 have their blocks) instead: B is read once	\
	 * more, not by a gemv.							\
	 */									\
	if (GEMM_ROWS > 8 && !bpack && !amode && M > GEMV_ROWS) {		\
		u32 rest = M % GEMM_ROWS;					\
										\
		if (rest && rest <= 2 && M > GEMM_ROWS)				\
			last = GEMM_ROWS + rest;				\
		else if (rest == 3 && M > GEMM_ROWS)				\
			last = 7;	/* after a block of 8 */		\
		else if (rest >= 5 && rest != 8)				\
			last = rest;						\
	}									\
	while (M > GEMV_ROWS && M - mt - last >= GEMM_ROWS)			\
		mt += GEMM_ROWS;						\
	if (M > GEMV_ROWS && GEMM_ROWS > 8 && M - mt - last >= 8)		\
		mt += 8;							\
	while (M > GEMV_ROWS && M - mt - last >= 4)				\
		mt += 4;							\
	mt += last;								\
	for (g = 0; mt && g < N; g += GEMM_NC) {					\
		g1 = N - g < GEMM_NC ? N : g + GEMM_NC;				\
		for (k0 = 0; k0 < KC || k0 == 0; k0 += GEMM_KC) {		\
			k1 = KC - k0 < GEMM_KC ? KC : k0 + GEMM_KC;		\
			/* Pack B[k0:k1, g:g1] panel by panel: each panel's	\
			 * rows then sit side by side. */			\
			for (n = g; bpack && bmode && n < g1; n += pw)		\
				gemm_pack_b(pack + (n - g) * GEMM_KC, b, bs_k, n, pw, k0, k1, K, bmode); \
			for (n = g; bpack && !bmode && n < g1; n += pw)		\
				for (k = k0; k < k1; k++) {			\
					float *dst = pack + (n - g) * GEMM_KC + (k - k0) * pw; \
										\
					*(vec *)dst = *(const vec *)((const float *)b + k * bs_k + n); \
					*(vec *)(dst + width) =			\
						*(const vec *)((const float *)b + k * bs_k + n + width); \
				}						\
			m = 0;							\
			while (mt - m - last >= GEMM_ROWS)			\
				GEMM_BLOCK(vec, width, fma, GEMM_ROWS);		\
			/* AVX-512: eight of the rows left, one pass over B. */	\
			if (GEMM_ROWS > 8 && mt - m - last >= 8)		\
				GEMM_BLOCK(vec, width, fma, 8);			\
			while (mt - m - last >= 4)				\
				GEMM_BLOCK(vec, width, fma, 4);			\
			as = (const float *)a + m * as_m + k0 * as_k;		\
			LAST(name)						\
			if (!KC)						\
				break;						\
		}								\
	}									\
	/*								\
	 * Up to GEMV_ROWS rows left: B in place, each row's chains four	\
	 * vectors wide; A converted once where it fits (B's packing is	\
	 * done with).								\
	 */									\
	if (mt == M || !N)							\
		return;								\
	if (amode && pack && (u64)KC * (M - mt) * 4 <= GEMM_B_BYTES) {	\
		gemm_pack_a(pack, KC, a, as_m, as_k, mt, M - mt, 0, KC, K, amode); \
		name##_gemv(pack, KC, 1, b, bs_k, bp, 0, bmode, o + mt * os_m, os_m, M - mt, N, K); \
		return;								\
	}									\
	name##_gemv((const char *)a + mt * as_m * ((amode & GEMM_HALF) ? 2 : 4), as_m, as_k, \
		    b, bs_k, bp, amode, bmode, o + mt * os_m, os_m, M - mt, N, K);	\
}

#define FMA8(a, b, c)	__builtin_ia32_vfmaddps256((a), (b), (c))
#define FMA16(a, b, c)	__builtin_ia32_vfmaddps512_mask((a), (b), (c), (unsigned short)0xffff, 4)

#define ROWS_AVX2	6
#define ROWS_AVX512	12

GEMV_FNS(gemm_avx2, "avx2,fma", neuron_v8f, neuron_v8u, neuron_v8h, 8, FMA8)
GEMV_FNS(gemm_avx512, "avx512f", neuron_v16f, neuron_v16u, neuron_v16h, 16, FMA16)
#define GEMM_LAST_FNS16(rows)	\
	GEMM_LAST_FN(gemm_avx512, "avx512f", neuron_v16f, neuron_v16u, neuron_v16h, 16, FMA16, rows)
GEMM_LAST_FNS16(5)
GEMM_LAST_FNS16(6)
GEMM_LAST_FNS16(7)
GEMM_LAST_FNS16(9)
GEMM_LAST_FNS16(10)
GEMM_LAST_FNS16(11)
GEMM_LAST_FNS16(13)
GEMM_LAST_FNS16(14)
GEMM_KERNEL(gemm_avx2, "avx2,fma", neuron_v8f, neuron_v8u, neuron_v8h, 8, FMA8, ROWS_AVX2, GEMM_NO_LAST)
GEMM_KERNEL(gemm_avx512, "avx512f", neuron_v16f, neuron_v16u, neuron_v16h, 16, FMA16, ROWS_AVX512,
	    GEMM_LAST16)

/*
 * Columns [n0, N) past the last full panel, at most 16 a call: each row
 * of the output runs as two vectors of B's 16 columns from n0 (one for 8
 * columns or fewer), read in place where all 16 lie inside B (f32 in
 * panels, whose last panel has all its lanes, or in rows when 16 are
 * left), else from a copy, zero padded, of 16 columns per k
 * (GEMM_TAIL_KC rows of k at a time). The lanes past N are never
 * stored; every stored lane runs the same fma chain over k in order. A's
 * rows are read in place when they are f32 rows, else converted
 * GEMM_TAIL_ROWS at a time into the scratch after B's copy. Without
 * scratch the chains run one by one.
 */
#define GEMM_TAIL_KC	512
#define GEMM_TAIL_ROWS	8
_Static_assert(GEMM_TAIL_KC * 16 * 4 <= GEMM_B_BYTES && GEMM_TAIL_KC * GEMM_TAIL_ROWS <= GEMM_KC * 16,
	       "the tail's copies of B and A fit the matmul's packing space");

/*
 * Rows [m, m + rows) (rows 1, 4 or 8) of the tail's @w columns from @n0,
 * taps [k0, k1) of B from @bk (tap k0's 16 columns; the next tap's @bs
 * floats on) and of A's rows at @ap (@ld floats apart): each row's chains
 * as one or @two vectors, the rows side by side so that their fmas
 * overlap (eight chains in flight: two fmas a cycle at a latency of four).
 */
static inline __attribute__((target("avx2,fma"), always_inline))
void gemm_tail_rows(const float *ap, u64 ld, float *o, u64 os_m, u32 m, const u32 rows, u32 n0,
		    u32 w, u32 k0, u32 k1, const float *bk, u64 bs, const int two)
{
	neuron_v8f c0[GEMM_TAIL_ROWS], c1[GEMM_TAIL_ROWS];
	float out[16];
	u32 r, n, k;

	_Pragma("GCC unroll 8")
	for (r = 0; r < rows; r++) {
		float *row = o + (m + r) * os_m + n0;

		c0[r] = c1[r] = (neuron_v8f){ 0 };
		if (k0) {
			NEURON_LOAD_PART(out, row, w, 16);
			c0[r] = *(neuron_v8f *)out;
			c1[r] = *(neuron_v8f *)(out + 8);
		}
	}
	for (k = k0; k < k1; k++, bk += bs) {
		neuron_v8f b0 = *(const neuron_v8f *)bk;
		neuron_v8f b1 = two ? *(const neuron_v8f *)(bk + 8) : b0;

		_Pragma("GCC unroll 8")
		for (r = 0; r < rows; r++) {
			neuron_v8f x = ap[r * ld + k - k0] - (neuron_v8f){ 0 };

			c0[r] = FMA8(x, b0, c0[r]);
			if (two)
				c1[r] = FMA8(x, b1, c1[r]);
		}
	}
	_Pragma("GCC unroll 8")
	for (r = 0; r < rows; r++) {
		float *row = o + (m + r) * os_m + n0;

		*(neuron_v8f *)out = c0[r];
		*(neuron_v8f *)(out + 8) = c1[r];
		for (n = 0; n < w; n++)
			row[n] = out[n];
	}
}

/*
 * Rows [0, M) of the tail's @w columns from @n0 over taps [k0, k1) of B
 * from @bk (tap k0's 16 columns; the next tap's @bs floats on): A's rows
 * in place when they are f32 rows (@inplace), else converted a few at a
 * time into @apack.
 */
static __attribute__((target("avx2,fma")))
void gemm_tail_run(const void *a, u64 as_m, u64 as_k, u32 amode, int inplace, float *apack,
		   float *o, u64 os_m, u32 M, u32 n0, u32 w, u32 k0, u32 k1, u32 K,
		   const float *bk, u64 bs, const int two)
{
	u32 m, rows;

	/* Eight chains in flight: 4 rows by two vectors or 8 by one; then one row. */
	for (m = 0; m < M; m += rows) {
		const float *ap = (const float *)a + m * as_m + k0;
		u64 ld = as_m;

		rows = !two && M - m >= 8 ? 8 : M - m >= 4 ? 4 : 1;
		if (!inplace) {
			gemm_pack_a(apack, k1 - k0, a, as_m, as_k, m, rows, k0, k1, K, amode);
			ap = apack;
			ld = k1 - k0;
		}
		if (rows == 8)
			gemm_tail_rows(ap, ld, o, os_m, m, 8, n0, w, k0, k1, bk, bs, 0);
		else if (rows == 4 && two)
			gemm_tail_rows(ap, ld, o, os_m, m, 4, n0, w, k0, k1, bk, bs, 1);
		else if (rows == 4)
			gemm_tail_rows(ap, ld, o, os_m, m, 4, n0, w, k0, k1, bk, bs, 0);
		else if (two)
			gemm_tail_rows(ap, ld, o, os_m, m, 1, n0, w, k0, k1, bk, bs, 1);
		else
			gemm_tail_rows(ap, ld, o, os_m, m, 1, n0, w, k0, k1, bk, bs, 0);
	}
}

static __attribute__((target("avx2,fma")))
void gemm_tail_cols(const void *a, u64 as_m, u64 as_k, const void *b, u64 bs_k, u64 bp,
		    u32 kind, float *o, u64 os_m, u32 M, u32 n0, u32 N, u32 K, float *pack)
{
	const u32 amode = GEMM_A_MODE(kind), bmode = GEMM_B_MODE(kind), KC = gemm_chain(K, kind);
	const int inplace = !amode && as_k == 1, two = N - n0 > 8;
	float *apack = pack ? pack + GEMM_B_BYTES / 4 : NULL;
	u32 m, n, k, k0, k1, ks, kin = 0, w = N - n0;

	if (!pack || w > 16) {
		for (m = 0; m < M; m++)
			for (n = n0; n < N; n++) {
				float acc = 0.0f;

				for (k = 0; k < KC; k++)
					acc = __builtin_fmaf(gemm_elem(a, m * as_m, as_k, k, K, amode),
							     gemm_elem(b, GEMM_BCOL(n), bs_k, k, K, bmode),
							     acc);
				o[m * os_m + n] = acc;
			}
		return;
	}
	/*
	 * Taps [0, kin) read B's 16 columns in place: f32 in panels (whose
	 * last panel has all its lanes) or with 16 columns left; or f32 in
	 * rows (this is the last tail: column N is B's last), each tap whose
	 * 16 columns, reaching into the next rows, end inside B (the lanes
	 * past N are never stored). The others from a copy, zero padded.
	 */
	if (!bmode && (bp || w == 16))
		kin = KC;
	else if (!bmode && bs_k && K)
		kin = (16 - w + bs_k - 1) / bs_k < K ? K - (u32)((16 - w + bs_k - 1) / bs_k) : 0;
	for (k0 = 0; k0 < KC || k0 == 0; k0 += GEMM_TAIL_KC) {
		k1 = KC - k0 < GEMM_TAIL_KC ? KC : k0 + GEMM_TAIL_KC;
		ks = kin < k0 ? k0 : kin > k1 ? k1 : kin;
		/* (No tap at all: the chains' +0 stored.) */
		if (ks > k0 || k1 == k0)
			gemm_tail_run(a, as_m, as_k, amode, inplace, apack, o, os_m, M, n0, w, k0, ks,
				      K, (const float *)b + k0 * bs_k + GEMM_BCOL(n0), bs_k, two);
		if (ks == k1)
			continue;
		for (k = ks; k < k1; k++)
			for (n = 0; n < 16; n++)
				pack[(k - ks) * 16 + n] = n < w ?
					gemm_elem(b, GEMM_BCOL(n0 + n), bs_k, k, K, bmode) : 0.0f;
		gemm_tail_run(a, as_m, as_k, amode, inplace, apack, o, os_m, M, n0, w, ks, k1, K,
			      pack, 16, two);
	}
}

/*
 * MATMUL in bf16 pairs with AVX512_BF16's VDPBF16PS: each of its 16
 * lanes runs acc = fma(a[2p+1], b[2p+1], acc), then fma(a[2p], b[2p],
 * acc), denormals in and out as zeros, which is the ISA's definition, so
 * it is the reference's bits (checked against the FMA emulation and the
 * Swift definition wherever the CPU has it).
 *
 * B is packed in blocks of BF_KP pairs by BF_NC columns: panels of 32
 * columns, each pair p one row of 32 dwords, dword j holding
 * b[2p][n + j] (low half) and b[2p + 1][n + j] (high), zero past K and N.
 * A register block's rows are packed as dwords of their pairs, pair-major,
 * so a broadcast of one dword feeds a row's pair to every lane. 12 rows
 * by two vectors of columns: 24 accumulators, two B vectors and a
 * broadcast in 32 registers.
 */
#define BF_KP		128
#define BF_NC		(GEMM_B_BYTES / (BF_KP * 4))
#define BF_ROWS		12

/* The instruction by name: GCC's and clang's builtins differ. */
#define DPBF16(c, x, y)	__asm__("vdpbf16ps %2, %1, %0" : "+v"(c) : "v"(x), "v"(y))

/* One dword of a pair: elements 2p and 2p + 1 (zero past K). */
static inline u32 bf_pair(const void *p, u64 base, u64 step, u32 pr, u32 K, int half)
{
	u32 k = 2 * pr;
	u32 lo = k < K ? neuron_bf16_pair_elem(p, base + k * step, half) : 0;
	u32 hi = k + 1 < K ? neuron_bf16_pair_elem(p, base + (k + 1) * step, half) : 0;

	return lo | hi << 16;
}

/*
 * A register block's R rows of two vectors of W columns (arrays @c0 and
 * @c1) from the output at @o, rows @os_m apart, @w columns wanted: in
 * (zeros when @first), then out, through @tmp (2W floats) where fewer
 * than 2W columns remain, so that nothing past them is read or written.
 */
#define TWO_VECS_IN(V, W, R, c0, c1, o, os_m, w, tmp, first)			\
do {										\
	u32 r_;									\
										\
	_Pragma("GCC unroll 16")						\
	for (r_ = 0; r_ < (R); r_++) {						\
		const float *row_ = (o) + r_ * (os_m);				\
										\
		if (first) {							\
			c0[r_] = c1[r_] = (V){ 0 };				\
		} else if ((w) == 2 * (W)) {					\
			c0[r_] = *(const V *)row_;				\
			c1[r_] = *(const V *)(row_ + (W));			\
		} else {							\
			NEURON_LOAD_PART(tmp, row_, w, 2 * (W));		\
			c0[r_] = *(const V *)(tmp);				\
			c1[r_] = *(const V *)((tmp) + (W));			\
		}								\
	}									\
} while (0)

#define TWO_VECS_OUT(V, W, R, c0, c1, o, os_m, w, tmp)				\
do {										\
	u32 r_, j_;								\
										\
	_Pragma("GCC unroll 16")						\
	for (r_ = 0; r_ < (R); r_++) {						\
		float *row_ = (o) + r_ * (os_m);				\
										\
		if ((w) == 2 * (W)) {						\
			*(V *)row_ = c0[r_];					\
			*(V *)(row_ + (W)) = c1[r_];				\
			continue;						\
		}								\
		*(V *)(tmp) = c0[r_];						\
		*(V *)((tmp) + (W)) = c1[r_];					\
		for (j_ = 0; j_ < (w); j_++)					\
			row_[j_] = (tmp)[j_];					\
	}									\
} while (0)

/*
 * Rows [m, m + ROWS) over the packed block (panels @pst dwords apart, in
 * the pack or in place): pairs [0, np) of panels from column g to g1
 * (the last panel may stop at N). @first: the sums start from zero, else
 * from the output.
 */
#define BF_TILES_FN(ROWS)							\
static __attribute__((target("avx512f"), __noinline__))				\
void bf_tiles_##ROWS(const u32 *bpack, u64 pst, const u32 *apack, u32 np, float *o,	\
		     u64 os_m, u32 m, u32 g, u32 g1, u32 N, int first)		\
{										\
	float tmp[32];								\
	u32 n, p, r;								\
										\
	for (n = g; n < g1; n += 32) {						\
		const u32 *bp = bpack + (u64)(n - g) / 32 * pst;		\
		neuron_v16f c0[ROWS], c1[ROWS];					\
		u32 w = N - n < 32 ? N - n : 32;				\
										\
		TWO_VECS_IN(neuron_v16f, 16, ROWS, c0, c1, o + m * os_m + n, os_m, w, tmp, first); \
		for (p = 0; p < np; p++) {					\
			neuron_v16u b0 = *(const neuron_v16u *)(bp + p * 32);	\
			neuron_v16u b1 = *(const neuron_v16u *)(bp + p * 32 + 16); \
										\
			_Pragma("GCC unroll 16")				\
			for (r = 0; r < (ROWS); r++) {				\
				neuron_v16u av = apack[r * BF_KP + p] - (neuron_v16u){ 0 }; \
										\
				DPBF16(c0[r], av, b0);				\
				DPBF16(c1[r], av, b1);				\
			}							\
		}								\
		TWO_VECS_OUT(neuron_v16f, 16, ROWS, c0, c1, o + m * os_m + n, os_m, w, tmp); \
	}									\
}

BF_TILES_FN(12)
BF_TILES_FN(8)
BF_TILES_FN(4)
BF_TILES_FN(2)
BF_TILES_FN(1)

/* Dwords at any address of 2-byte alignment (bf16 data). */
typedef u32 neuron_v16u_u __attribute__((vector_size(64), aligned(2)));

/* 16 dwords' low halves narrowed in order (sparse: as BF_WIDEN). */
#ifdef __CHECKER__
#define BF_NARROW16(v)	((neuron_v16h){ 0 })
#else
#define BF_NARROW16(v)	__builtin_convertvector((v), neuron_v16h)
#endif
#define BF_WIDEN16(p)	BF_WIDEN(neuron_v16u, *(const neuron_v16h *)(p))
#define BF_ROUND16(x)	BF_ROUND(neuron_v16u, x)

/*
 * Pairs [p0, p0 + np) of B's panel at column n into @dst (BF_KP pairs of
 * 32 dwords a panel): whole pairs of 32 columns by vector, the rest (the
 * last panel's columns past N, an odd K's last pair) one by one.
 */
static inline __attribute__((always_inline))
void bf_pack_b_body(u32 *dst, const void *b, u64 bs_k, int half, u32 n, u32 N, u32 p0, u32 np,
		    u32 K)
{
	u32 p, j, h;

	for (p = 0; p < np; p++, dst += 32) {
		u32 k = 2 * (p0 + p), lo[32], hi[32];

		if (k + 1 >= K) {
			for (j = 0; j < 32; j++)
				dst[j] = n + j < N ? bf_pair(b, n + j, bs_k, p0 + p, K, half) : 0;
			continue;
		}
		/* The last panel's columns, zero past N, rounded by vector. */
		if (n + 32 > N) {
			for (j = 0; j < 32; j++) {
				u64 i0 = k * bs_k + n + j;

				lo[j] = n + j >= N ? 0 : half ? (u32)((const u16 *)b)[i0] : ((const u32 *)b)[i0];
				hi[j] = n + j >= N ? 0 : half ? (u32)((const u16 *)b)[i0 + bs_k] :
							      ((const u32 *)b)[i0 + bs_k];
			}
			for (h = 0; h < 32; h += 16) {
				neuron_v16u l = *(neuron_v16u *)(lo + h), u = *(neuron_v16u *)(hi + h);

				if (!half) {
					l = BF_ROUND16(l);
					u = BF_ROUND16(u);
				}
				*(neuron_v16u *)(dst + h) = l | u << 16;
			}
			continue;
		}
		for (h = 0; h < 32; h += 16) {
			u64 i0 = k * bs_k + n + h, i1 = i0 + bs_k;
			neuron_v16u lo, hi;

			if (half) {
				lo = BF_WIDEN16((const u16 *)b + i0);
				hi = BF_WIDEN16((const u16 *)b + i1);
			} else {
				lo = BF_ROUND16(*(const neuron_v16u *)((const u32 *)b + i0));
				hi = BF_ROUND16(*(const neuron_v16u *)((const u32 *)b + i1));
			}
			*(neuron_v16u *)(dst + h) = lo | hi << 16;
		}
	}
}

/*
 * Rows [m, m + rows) of A's pairs [p0, p0 + np) into @apack, a row of
 * BF_KP dwords each: 16 pairs at a time by vector where a row is
 * contiguous (an f32 row rounded in lanes and narrowed to halves in
 * order, which pairs them), the rest one by one.
 */
static inline __attribute__((always_inline))
void bf_pack_a_body(u32 *apack, const void *a, u64 as_m, u64 as_k, int half, u32 m, u32 rows,
		    u32 p0, u32 np, u32 K)
{
	u32 p, r, whole = 0;

	/*
	 * Rows side by side in memory (A transposed: an im2col's windows):
	 * sixteen rows' pairs rounded at once.
	 */
	if (as_m == 1 && as_k != 1 && !half) {
		for (p = 0; p < np; p++) {
			u32 k = 2 * (p0 + p), lo[16] = { 0 }, hi[16] = { 0 }, out[16];

			for (r = 0; k < K && r < rows; r++)
				lo[r] = ((const u32 *)a)[m + r + k * as_k];
			for (r = 0; k + 1 < K && r < rows; r++)
				hi[r] = ((const u32 *)a)[m + r + (k + 1) * as_k];
			*(neuron_v16u *)out = BF_ROUND16(*(neuron_v16u *)lo) |
					      BF_ROUND16(*(neuron_v16u *)hi) << 16;
			for (r = 0; r < rows; r++)
				apack[r * BF_KP + p] = out[r];
		}
		return;
	}
	/* Pairs of the block wholly inside K, in vectors of 16. */
	if (as_k == 1 && 2 * p0 < K)
		whole = (K - 2 * p0) / 2 < np ? (K - 2 * p0) / 2 : np;
	whole -= whole % 16;
	for (r = 0; r < rows; r++) {
		u32 *dst = apack + r * BF_KP;
		u64 base = (m + r) * as_m + 2 * (u64)p0;

		for (p = 0; p < whole; p += 16) {
			if (half) {
				*(neuron_v16u *)(dst + p) =
					*(const neuron_v16u_u *)((const u16 *)a + base + 2 * p);
				continue;
			}
			*(neuron_v16h *)(dst + p) =
				BF_NARROW16(BF_ROUND16(*(const neuron_v16u *)((const u32 *)a + base + 2 * p)));
			*(neuron_v16h *)(dst + p + 8) =
				BF_NARROW16(BF_ROUND16(*(const neuron_v16u *)((const u32 *)a + base + 2 * p + 16)));
		}
		for (; p < np; p++)
			dst[p] = bf_pair(a, (m + r) * as_m, as_k, p0 + p, K, half);
	}
}

/*
 * The packers by target: AVX-512F for VDPBF16PS (and AMX), AVX2 for the
 * AMX kernel's emulated tiles on any machine (16-lane vectors in halves).
 */
#define BF_PACK_FNS(suffix, isa)						\
static __attribute__((target(isa), __noinline__))				\
void bf_pack_b##suffix(u32 *dst, const void *b, u64 bs_k, int half, u32 n, u32 N, u32 p0, \
		       u32 np, u32 K)						\
{										\
	bf_pack_b_body(dst, b, bs_k, half, n, N, p0, np, K);			\
}										\
										\
static __attribute__((target(isa), __noinline__))				\
void bf_pack_a##suffix(u32 *apack, const void *a, u64 as_m, u64 as_k, int half, u32 m, \
		       u32 rows, u32 p0, u32 np, u32 K)				\
{										\
	bf_pack_a_body(apack, a, as_m, as_k, half, m, rows, p0, np, K);		\
}

BF_PACK_FNS(, "avx512f")

/*
 * B packed block by block into @pack, or read in place (@bin, pairs in
 * panels of 32 columns, @bps dwords apart: ISA 1.14).
 */
static void gemm_bf16_native(const void *a, u64 as_m, u64 as_k, const void *b, u64 bs_k, u32 kind,
			     float *o, u64 os_m, u32 M, u32 N, u32 K, u32 *pack, const u32 *bin,
			     u64 bps)
{
	int ahalf = !!(kind & NEURON_GEMM_A_BF16), bhalf = !!(kind & NEURON_GEMM_B_BF16);
	u32 *apack = pack + GEMM_B_BYTES / 4;
	u32 pairs = (K + 1) / 2, g, g1, p0, np, n, m, rows;
	const u32 *bq = pack;
	u64 pst = (u64)32 * BF_KP;

	for (g = 0; g < N; g += BF_NC) {
		g1 = N - g < BF_NC ? N : g + BF_NC;
		for (p0 = 0; p0 < pairs || p0 == 0; p0 += BF_KP) {
			np = pairs - p0 < BF_KP ? pairs - p0 : BF_KP;
			if (bin) {
				bq = bin + (u64)g / 32 * bps + (u64)p0 * 32;
				pst = bps;
			}
			for (n = g; !bin && n < g1; n += 32)
				bf_pack_b(pack + (u64)(n - g) * BF_KP, b, bs_k, bhalf, n, N, p0, np, K);
			for (m = 0; m < M; m += rows) {
				rows = M - m >= BF_ROWS ? BF_ROWS : M - m >= 8 ? 8 : M - m >= 4 ? 4 :
				       M - m >= 2 ? 2 : 1;
				bf_pack_a(apack, a, as_m, as_k, ahalf, m, rows, p0, np, K);
				switch (rows) {
				case 12: bf_tiles_12(bq, pst, apack, np, o, os_m, m, g, g1, N, !p0); break;
				case 8: bf_tiles_8(bq, pst, apack, np, o, os_m, m, g, g1, N, !p0); break;
				case 4: bf_tiles_4(bq, pst, apack, np, o, os_m, m, g, g1, N, !p0); break;
				case 2: bf_tiles_2(bq, pst, apack, np, o, os_m, m, g, g1, N, !p0); break;
				default: bf_tiles_1(bq, pst, apack, np, o, os_m, m, g, g1, N, !p0); break;
				}
			}
			if (!pairs)
				break;
		}
	}
}

#ifndef __KERNEL__
/* This thread's choice (tests): -1 the process's, 0 never, 1 always. */
static _Thread_local int bf16_thread = -1;

int neuron_gemm_set_bf16_thread(int native)
{
	bf16_thread = native;
	return native == 1 && neuron_cpu_has_avx512bf16();
}
#endif

/*
 * Is VDPBF16PS faster than the FMA emulation on this CPU? Both give the
 * same bits, so only speed decides, and the CPUs that have the
 * instruction differ: AMD's Zen 4 and 5 run one as fast as an fma (twice
 * the products), some Intel Xeons several times slower (the emulation
 * then runs about twice as fast). Measured once: the time of twelve
 * independent chains of each (the kernels' register blocks), the best
 * of a few tries; VDPBF16PS is taken when its products come at least a
 * quarter faster. In the kernel this runs inside the caller's
 * kernel_fpu_begin/end, a few microseconds once.
 */
#define BF_CAL_STEPS	128
#define BF_CAL_TRIES	5

#define BF_CAL_FN(name, isa, OP)						\
static __attribute__((target(isa), __noinline__))				\
u64 name(void)									\
{										\
	const neuron_v16f zero = { 0 };						\
	neuron_v16f c[12], x = zero + 1.0f, y = zero + 0.5f, sum = zero;	\
	u64 t, best = ~0ull;							\
	u32 i, r, tr;								\
										\
	for (tr = 0; tr < BF_CAL_TRIES; tr++) {					\
		for (r = 0; r < 12; r++)					\
			c[r] = zero;						\
		t = __builtin_ia32_rdtsc();					\
		for (i = 0; i < BF_CAL_STEPS; i++) {				\
			_Pragma("GCC unroll 12")				\
			for (r = 0; r < 12; r++)				\
				OP(c[r], x, y);					\
		}								\
		t = __builtin_ia32_rdtsc() - t;					\
		best = t < best ? t : best;					\
		for (r = 0; r < 12; r++)					\
			sum += c[r];						\
	}									\
	/* The sums are used, so the chains are not dropped. */		\
	__asm__ volatile("" :: "v"(sum));					\
	return best;								\
}

#define BF_CAL_DP(c, x, y)	DPBF16(c, (neuron_v16u)(x), (neuron_v16u)(y))
#define BF_CAL_FMA(c, x, y)	((c) = FMA16((x), (y), (c)))

BF_CAL_FN(bf_cal_dp, "avx512f", BF_CAL_DP)
BF_CAL_FN(bf_cal_fma, "avx512f", BF_CAL_FMA)

static int bf16_faster(void)
{
	static int fast;	/* 0 unmeasured, 1 faster, -1 not */
	int state = __atomic_load_n(&fast, __ATOMIC_RELAXED);
	u64 dp, fma;

	if (!state) {
		/* A first pass wakes the 512-bit units, which start slow. */
		bf_cal_fma();
		dp = bf_cal_dp();
		fma = bf_cal_fma();
		/*
		 * Products per cycle: 32 a VDPBF16PS, 16 an fma; a quarter
		 * faster is 32 / dp >= 1.25 * 16 / fma.
		 */
		state = dp * 5 <= fma * 8 ? 1 : -1;
		__atomic_store_n(&fast, state, __ATOMIC_RELAXED);
	}
	return state > 0;
}

/*
 * May bf16 pairs run on VDPBF16PS (AVX-512 width chosen)? As the thread
 * or process chose, else where it is faster.
 */
static int gemm_bf16_native_ok(int width)
{
	int choice = -1;

	if (width != 16 || !neuron_cpu_has_avx512bf16())
		return 0;
#ifndef __KERNEL__
	choice = bf16_thread >= 0 ? bf16_thread : neuron_simd_process_bf16();
#endif
	return choice >= 0 ? choice : bf16_faster();
}

#ifndef __KERNEL__
int neuron_gemm_bf16_native(void)
{
	return neuron_cpu_has_avx512bf16() && bf16_faster();
}
#endif

/* MXCSR's flush-to-zero and denormals-are-zero: the emulation's rounding. */
#define MXCSR_FTZ_DAZ	0x8040u

/* The thread's vector width (in the kernel, the CPU's widest). */
static int gemm_width(void)
{
	switch (neuron_simd_level()) {
	case NEURON_SIMD_AVX512:
		return 16;
	case NEURON_SIMD_AVX2:
	case NEURON_SIMD_WIDE_ON_AVX2:
		return 8;
	default:
		return 0;
	}
}

/*
 * Compute the part of out = a x b (one batch) that the vector kernel
 * covers; returns the rows and columns it did, so that the caller runs
 * the reference chain on the rest. Both give the same bits.
 */
/* Columns of B in panels (a multiple of @step) whose K rows fill about 128 KB. */
static u32 gemm_panel_chunk(u32 K, u32 step)
{
	u64 cols = (128 * 1024 / 4) / (K ? K : 1);

	cols -= cols % NEURON_MATMUL_PANEL;
	return cols < NEURON_MATMUL_PANEL ? (step > NEURON_MATMUL_PANEL ? step : NEURON_MATMUL_PANEL)
					  : (u32)(cols < 0x40000000u ? cols : 0x40000000u);
}

static __attribute__((target("avx2,fma"), __noinline__))
void gemm_epilogue_rows(float *o, u64 os_m, u32 M, u32 N, const float *bias, int relu, int clamp,
			float hi)
{
	const neuron_v8f zero = { 0 }, hv = hi - zero;
	u32 m, n;

	for (m = 0; m < M; m++) {
		float *row = o + m * os_m;

		for (n = 0; n + 8 <= N; n += 8) {
			neuron_v8f v = *(const neuron_v8f *)(row + n);

			if (bias)
				v = v + *(const neuron_v8f *)(bias + n);
			if (relu)
				v = (neuron_v8f)((neuron_v8u)v & (neuron_v8u)((v > zero) | (v != v)));
			if (clamp)
				v = NEURON_CONV_BOUND_V(neuron_v8f, neuron_v8u, v, hv);
			*(neuron_v8f *)(row + n) = v;
		}
		for (; n < N; n++) {
			float v = row[n];

			if (bias)
				v = v + bias[n];
			if (relu && !(v > 0.0f))
				v = v != v ? v : 0.0f;
			if (clamp)
				v = NEURON_CONV_BOUND(v, hi);
			row[n] = v;
		}
	}
}

void neuron_gemm_epilogue(float *o, u64 os_m, u64 os_n, u32 M, u32 N, const float *bias, u64 bs,
			  int relu, int clamp, float hi)
{
	u32 m, n;

	if (!bias && !relu && !clamp)
		return;
	if (os_n == 1 && (!bias || bs == 1) && neuron_simd_level() != NEURON_SIMD_SCALAR) {
		gemm_epilogue_rows(o, os_m, M, N, bias, relu, clamp, hi);
		return;
	}
	for (m = 0; m < M; m++)
		for (n = 0; n < N; n++) {
			float *out = &o[m * os_m + n * os_n];
			float v = *out;

			if (bias)
				v = v + bias[n * bs];
			if (relu && !(v > 0.0f))
				v = v != v ? v : 0.0f;
			if (clamp)
				v = NEURON_CONV_BOUND(v, hi);
			*out = v;
		}
}

/*
 * Pairs in panels (ISA 1.14) on FMA, exactly: B read in place, a pair of
 * 32-bit words per column, its second element (the chain's first) the
 * high half, so that (V)(d & 0xffff0000) and (V)(d << 16) are the two
 * rows as f32; A's rows in chain order (gemm_pack_a: pairs swapped, f32
 * rounded). Each output runs the definition's chain over k; MXCSR
 * flushes as for the other FMA paths. Register blocks of R rows by two
 * vectors of one panel (AVX-512: the whole panel; AVX2: half), by
 * blocks of PP_KP pairs and PP_NC columns (B's block, 256 KB, stays in
 * the cache across the blocks of rows).
 */
#define PP_KP		256
#define PP_NC		256
_Static_assert(ROWS_AVX512 * PP_KP * 2 * 4 <= GEMM_B_BYTES, "A's rows fit the scratch");

typedef u32 neuron_v8u_u __attribute__((vector_size(32), aligned(2)));

#define PP_TILE_FN(name, isa, V, U, UU, W, fma, R)				\
static __attribute__((target(isa), __noinline__))				\
void name##_pp##R(const float *ap, u32 ld, const u32 *bq, u64 ps, u32 nq, float *o, u64 os_m, \
		  u32 n0, u32 n1, u32 N, int first, u64 ahead)			\
{										\
	const V zero = { 0 };							\
	float tmp[2 * (W)];							\
	u32 n, p, r, w;								\
										\
	for (n = n0; n < n1 && n < N; n += 2 * (W)) {				\
		const u32 *bp = bq + (u64)((n - n0) / 32) * ps + n % 32;	\
		V c0[R], c1[R];							\
										\
		w = N - n < 2 * (W) ? N - n : 2 * (W);				\
		TWO_VECS_IN(V, W, R, c0, c1, o + n, os_m, w, tmp, first);	\
		for (p = 0; p < nq; p++) {					\
			U d0 = *(const UU *)(bp + (u64)p * 32);			\
			U d1 = *(const UU *)(bp + (u64)p * 32 + (W));		\
			V b0 = (V)(d0 & 0xffff0000u), b1 = (V)(d1 & 0xffff0000u);	\
										\
			if (ahead)	/* the first block of rows */		\
				PREFETCH_AT(bp + (u64)p * 32, ahead * 4);	\
			_Pragma("GCC unroll 12")				\
			for (r = 0; r < (R); r++) {				\
				V x = ap[r * ld + 2 * p] - zero; /* splat */	\
										\
				c0[r] = fma(x, b0, c0[r]);			\
				c1[r] = fma(x, b1, c1[r]);			\
			}							\
			b0 = (V)(d0 << 16);					\
			b1 = (V)(d1 << 16);					\
			_Pragma("GCC unroll 12")				\
			for (r = 0; r < (R); r++) {				\
				V x = ap[r * ld + 2 * p + 1] - zero;		\
										\
				c0[r] = fma(x, b0, c0[r]);			\
				c1[r] = fma(x, b1, c1[r]);			\
			}							\
		}								\
		TWO_VECS_OUT(V, W, R, c0, c1, o + n, os_m, w, tmp);		\
	}									\
}

/*
 * One row over eight vectors of columns from @n (four panels of AVX-512,
 * two of AVX2): eight chains in flight where one panel gives two. Only
 * where all eight vectors lie inside the panels; their columns past N
 * are not stored.
 */
#define PP_ROW_FN(name, isa, V, U, UU, W, fma)					\
static __attribute__((target(isa), __noinline__))				\
u32 name##_pp_row(const float *ap, const u32 *bq, u64 ps, u32 nq, float *o, u32 n0, u32 n1, \
		  u32 N, int first, u64 ahead)					\
{										\
	const V zero = { 0 };							\
	float tmp[8 * (W)];							\
	u32 n, p, v, j, w;							\
										\
	for (n = n0; n + 8 * (W) <= n1 && n < N; n += 8 * (W)) {		\
		const u32 *bp[8];						\
		V c[8];								\
										\
		w = N - n < 8 * (W) ? N - n : 8 * (W);				\
		for (v = 0; v < 8; v++) {					\
			bp[v] = bq + (u64)((n + v * (W) - n0) / 32) * ps + (n + v * (W)) % 32; \
			c[v] = zero;						\
		}								\
		if (!first) {							\
			NEURON_LOAD_PART(tmp, o + n, w, 8 * (W));		\
			for (v = 0; v < 8; v++)					\
				c[v] = *(const V *)(tmp + v * (W));		\
		}								\
		for (p = 0; p < nq; p++) {					\
			V x1 = ap[2 * p] - zero, x0 = ap[2 * p + 1] - zero;	\
										\
			if (ahead) {						\
				for (v = 0; v < 8; v += 32 / (W))		\
					PREFETCH_AT(bp[v] + (u64)p * 32, ahead * 4); \
			}							\
			_Pragma("GCC unroll 8")					\
			for (v = 0; v < 8; v++) {				\
				U d = *(const UU *)(bp[v] + (u64)p * 32);	\
										\
				c[v] = fma(x1, (V)(d & 0xffff0000u), c[v]);	\
				c[v] = fma(x0, (V)(d << 16), c[v]);		\
			}							\
		}								\
		for (v = 0; v < 8; v++)						\
			*(V *)(tmp + v * (W)) = c[v];				\
		for (j = 0; j < w; j++)						\
			o[n + j] = tmp[j];					\
	}									\
	return n;								\
}

PP_ROW_FN(gemm_avx512, "avx512f", neuron_v16f, neuron_v16u, neuron_v16u_u, 16, FMA16)
PP_ROW_FN(gemm_avx2, "avx2,fma", neuron_v8f, neuron_v8u, neuron_v8u_u, 8, FMA8)
PP_TILE_FN(gemm_avx512, "avx512f", neuron_v16f, neuron_v16u, neuron_v16u_u, 16, FMA16, 12)
PP_TILE_FN(gemm_avx512, "avx512f", neuron_v16f, neuron_v16u, neuron_v16u_u, 16, FMA16, 4)
PP_TILE_FN(gemm_avx512, "avx512f", neuron_v16f, neuron_v16u, neuron_v16u_u, 16, FMA16, 1)
PP_TILE_FN(gemm_avx2, "avx2,fma", neuron_v8f, neuron_v8u, neuron_v8u_u, 8, FMA8, 6)
PP_TILE_FN(gemm_avx2, "avx2,fma", neuron_v8f, neuron_v8u, neuron_v8u_u, 8, FMA8, 2)
PP_TILE_FN(gemm_avx2, "avx2,fma", neuron_v8f, neuron_v8u, neuron_v8u_u, 8, FMA8, 1)

/*
 * out = a x b, b pairs in panels @ps dwords apart at @bin, K even, on the
 * FMA kernels of @width lanes; @pack holds A's rows of a block.
 */
static void gemm_pairs_panels_fma(const void *a, u64 as_m, u64 as_k, const u32 *bin, u64 ps,
				  u32 kind, float *o, u64 os_m, u32 M, u32 N, u32 K, float *pack,
				  int width)
{
	u32 pairs = K / 2, nend = (N + 31) / 32 * 32, q0, nq, n0, n1, m, rows, n;
	u32 big = width == 16 ? ROWS_AVX512 : ROWS_AVX2, mid = width == 16 ? 4 : 2;
	u32 ld = 2 * PP_KP, amode = GEMM_A_MODE(kind);
	u64 ahead;

	/*
	 * By chunks of columns, then blocks of pairs: the first block of
	 * rows prefetches what comes next from memory (the panels' next
	 * block of pairs, or the next chunk's first), which the other
	 * blocks of rows then find in the cache.
	 */
	for (n0 = 0; n0 < nend; n0 += PP_NC) {
		n1 = nend - n0 < PP_NC ? nend : n0 + PP_NC;
		for (q0 = 0; q0 < pairs; q0 += PP_KP) {
			const u32 *bq = bin + (u64)n0 / 32 * ps + (u64)q0 * 32;

			nq = pairs - q0 < PP_KP ? pairs - q0 : PP_KP;
			ahead = q0 + PP_KP < pairs ? (u64)PP_KP * 32 : (u64)PP_NC / 32 * ps - (u64)q0 * 32;
			for (m = 0; m < M; m += rows) {
				float *out = o + m * os_m;
				u64 pf = m ? 0 : ahead;

				rows = M - m >= big ? big : M - m >= mid ? mid : 1;
				gemm_pack_a(pack, ld, a, as_m, as_k, m, rows, 2 * q0, 2 * (q0 + nq), K, amode);
				if (width == 16) {
					if (rows == ROWS_AVX512)
						gemm_avx512_pp12(pack, ld, bq, ps, nq, out, os_m, n0, n1, N, !q0, pf);
					else if (rows == 4)
						gemm_avx512_pp4(pack, ld, bq, ps, nq, out, os_m, n0, n1, N, !q0, pf);
					else {
						n = gemm_avx512_pp_row(pack, bq, ps, nq, out, n0, n1, N, !q0, pf);
						if (n < n1 && n < N)
							gemm_avx512_pp1(pack, ld, bq + (u64)(n - n0) / 32 * ps, ps, nq,
									out, os_m, n, n1, N, !q0, pf);
					}
				} else if (rows == ROWS_AVX2) {
					gemm_avx2_pp6(pack, ld, bq, ps, nq, out, os_m, n0, n1, N, !q0, pf);
				} else if (rows == 2) {
					gemm_avx2_pp2(pack, ld, bq, ps, nq, out, os_m, n0, n1, N, !q0, pf);
				} else {
					n = gemm_avx2_pp_row(pack, bq, ps, nq, out, n0, n1, N, !q0, pf);
					if (n < n1 && n < N)
						gemm_avx2_pp1(pack, ld, bq + (u64)(n - n0) / 32 * ps, ps, nq, out,
							      os_m, n, n1, N, !q0, pf);
				}
			}
		}
	}
	if (!pairs)	/* K = 0: zeros */
		for (m = 0; m < M; m++)
			for (n0 = 0; n0 < N; n0++)
				o[m * os_m + n0] = 0.0f;
}

#ifndef __KERNEL__
/*
 * bf16 pairs on AMX (userspace only: the kernel cannot use AMX's state).
 * An explicit, inexact mode (the simulator's NEURON_SIM_AMX): TDPBF16PS
 * sums each tile's pairs in an order of its own, which matches no simple
 * fp32 order, so its results stay near the definition's without being
 * its bits (docs/isa.md, docs/benchmarks.md measure how near).
 *
 * The packs are VDPBF16PS's: B's panels of 32 columns are, 16 pairs at a
 * time, two B tiles (16 rows of pairs by 16 columns, 128 bytes apart);
 * 32 rows of A's pairs (BF_KP dwords a row) are two A tiles. Four C
 * tiles hold 32 rows by 32 columns of sums across the block's pairs.
 * Pairs past the block's last, up to a whole tile, are zeros in B and
 * negative zeros in A (AMX_PAD_PAIR): fma(-0, +0, acc) is acc whatever
 * acc is, where +0 · +0 would turn a sum of -0 into +0.
 *
 * The same kernel runs on emulated tiles (NEURON_AMX_EMULATED): C arrays
 * with the definition's pair chain in each element, so that its blocking
 * is checked bit for bit against the definition on any machine.
 */
#define AMX_ROWS	32
#define AMX_KT		16	/* pairs a tile */
#define AMX_PAD_PAIR	0x80008000u

/* The tile configuration LDTILECFG reads (palette 1). */
struct amx_config {
	u8 palette;
	u8 start_row;
	u8 reserved[14];
	u16 colsb[16];
	u8 rows[16];
} __attribute__((packed, aligned(64)));

static _Thread_local u32 amx_thread = NEURON_AMX_PROCESS;
static u32 amx_process = NEURON_AMX_OFF;
/* The kernel's answer to arch_prctl(ARCH_REQ_XCOMP_PERM): 0 unasked, 1 granted, -1 refused. */
static int amx_permission;

/*
 * Whether this process may use AMX-BF16 (the kernel asked once, the
 * answer kept).
 */
static int amx_native_ok(void)
{
	int state = __atomic_load_n(&amx_permission, __ATOMIC_ACQUIRE);

	if (!state) {
		state = neuron_amx_request() ? 1 : -1;
		__atomic_store_n(&amx_permission, state, __ATOMIC_RELEASE);
	}
	return state > 0;
}

int neuron_amx_can_run(u32 mode)
{
	switch (mode) {
	case NEURON_AMX_OFF:
	case NEURON_AMX_EMULATED:
		return 1;
	case NEURON_AMX_NATIVE:
		return amx_native_ok();
	default:
		return 0;
	}
}

int neuron_amx_set_process(u32 mode)
{
	if (!neuron_amx_can_run(mode))
		return -1;
	__atomic_store_n(&amx_process, mode, __ATOMIC_RELAXED);
	return 0;
}

int neuron_amx_set_thread(u32 mode)
{
	if (mode != NEURON_AMX_PROCESS && !neuron_amx_can_run(mode))
		return -1;
	amx_thread = mode;
	return 0;
}

u32 neuron_amx_mode(void)
{
	return amx_thread != NEURON_AMX_PROCESS ? amx_thread :
						  __atomic_load_n(&amx_process, __ATOMIC_RELAXED);
}

/* Tiles 0-3 hold C (rows 0-15 by columns 0-15, 0-15 by 16-31, 16-31 by 0-15, 16-31 by 16-31), 4-5 A, 6-7 B. */
#define AMX_ZERO_N(t)		__asm__ volatile("tilezero %%tmm" #t ::)
#define AMX_LOAD_N(t, p, s)	__asm__ volatile("tileloadd (%0,%1,1), %%tmm" #t	\
						 :: "r"(p), "r"((u64)(s)) : "memory")
#define AMX_STORE_N(t, p, s)	__asm__ volatile("tilestored %%tmm" #t ", (%0,%1,1)"	\
						 :: "r"(p), "r"((u64)(s)) : "memory")
#define AMX_DP_N(c, a, b)	__asm__ volatile("tdpbf16ps %%tmm" #b ", %%tmm" #a ", %%tmm" #c ::)

/* The emulated tiles: 16 rows of 16 dwords each, in @E. */
struct amx_tiles {
	u32 tile[8][16][16];
};

#define AMX_ZERO_E(t)		__builtin_memset(E->tile[t], 0, sizeof(E->tile[t]))
#define AMX_LOAD_E(t, p, s)	amx_emu_move(E->tile[t], (const u8 *)(p), (s), 0)
#define AMX_STORE_E(t, p, s)	amx_emu_move(E->tile[t], (u8 *)(p), (s), 1)
#define AMX_DP_E(c, a, b)	amx_emu_dp(E->tile[c], E->tile[a], E->tile[b])

static inline void amx_emu_move(u32 (*tile)[16], const u8 *p, u64 stride, int store)
{
	u32 r;

	for (r = 0; r < 16; r++) {
		if (store)
			__builtin_memcpy((u8 *)p + r * stride, tile[r], 64);
		else
			__builtin_memcpy(tile[r], p + r * stride, 64);
	}
}

/* The definition's chain per element: pair p's odd element, then its even one (MXCSR flushing). */
static __attribute__((target("avx2,fma"), __noinline__))
void amx_emu_dp(u32 (*c)[16], u32 (*a)[16], u32 (*b)[16])
{
	union { u32 u; float f; } acc, x, y;
	u32 m, n, p;

	for (m = 0; m < 16; m++)
		for (n = 0; n < 16; n++) {
			acc.u = c[m][n];
			for (p = 0; p < AMX_KT; p++) {
				x.u = a[m][p] & 0xffff0000u;
				y.u = b[p][n] & 0xffff0000u;
				acc.f = __builtin_fmaf(x.f, y.f, acc.f);
				x.u = a[m][p] << 16;
				y.u = b[p][n] << 16;
				acc.f = __builtin_fmaf(x.f, y.f, acc.f);
			}
			c[m][n] = acc.u;
		}
}

/*
 * C tile @t (rows @r0, columns @c0 of the block) in from the output (or
 * zero when @first), out to it: in place where the tile is whole inside
 * the block's @rows and @w columns, else through @tmp.
 */
#define AMX_C_IN(t, r0, c0, ZERO, LOAD)						\
do {										\
	if (first) {								\
		ZERO(t);							\
	} else if ((r0) + 16 <= rows && (c0) + 16 <= w) {			\
		LOAD(t, o + (m + (r0)) * os_m + n + (c0), os_m * 4);		\
	} else {								\
		amx_part_in(tmp, o + (m + (r0)) * os_m + n + (c0), os_m,	\
			    rows > (r0) ? rows - (r0) : 0, w > (c0) ? w - (c0) : 0); \
		LOAD(t, tmp, 64);						\
	}									\
} while (0)

#define AMX_C_OUT(t, r0, c0, STORE)						\
do {										\
	if ((r0) + 16 <= rows && (c0) + 16 <= w) {				\
		STORE(t, o + (m + (r0)) * os_m + n + (c0), os_m * 4);		\
	} else {								\
		STORE(t, tmp, 64);						\
		amx_part_out(tmp, o + (m + (r0)) * os_m + n + (c0), os_m,	\
			     rows > (r0) ? rows - (r0) : 0, w > (c0) ? w - (c0) : 0); \
	}									\
} while (0)

/* The first @rows rows' first @cols of a 16 x 16 part of the output, zeros around them. */
static void amx_part_in(float *tmp, const float *o, u64 os_m, u32 rows, u32 cols)
{
	u32 r, j;

	for (r = 0; r < 16; r++)
		for (j = 0; j < 16; j++)
			tmp[r * 16 + j] = r < rows && j < cols ? o[r * os_m + j] : 0.0f;
}

static void amx_part_out(const float *tmp, float *o, u64 os_m, u32 rows, u32 cols)
{
	u32 r, j;

	for (r = 0; r < rows && r < 16; r++)
		for (j = 0; j < cols && j < 16; j++)
			o[r * os_m + j] = tmp[r * 16 + j];
}

/*
 * Rows [m, m + rows) (at most 32) over the block's pairs [0, np) (a
 * multiple of AMX_KT; panels @pst dwords apart, packed or in place),
 * then, when @btail, one more tile of pairs from there (AMX_KT pairs of
 * each panel, zero padded), panels from column g to g1; @first: the sums
 * start from zero, else from the output.
 */
#define AMX_TILES_BODY(ZERO, LOAD, STORE, DP)					\
{										\
	float tmp[256] __attribute__((aligned(64)));				\
	u32 n, p, w, last;							\
										\
	for (n = g; n < g1; n += 32) {						\
		const u32 *bp = bpack + (u64)(n - g) / 32 * pst;		\
		const u32 *bt = btail ? btail + (u64)(n - g) * AMX_KT : NULL;	\
										\
		w = N - n < 32 ? N - n : 32;					\
		AMX_C_IN(0, 0, 0, ZERO, LOAD);					\
		AMX_C_IN(1, 0, 16, ZERO, LOAD);					\
		if (rows > 16) {						\
			AMX_C_IN(2, 16, 0, ZERO, LOAD);				\
			AMX_C_IN(3, 16, 16, ZERO, LOAD);			\
		}								\
		last = np + (btail ? AMX_KT : 0);				\
		for (p = 0; p < last; p += AMX_KT) {				\
			/* past np: the zero-padded tail */			\
			const u32 *src = p < np ? bp + (u64)p * 32 : bt;		\
										\
			LOAD(4, apack + p, BF_KP * 4);				\
			LOAD(6, src, 128);					\
			LOAD(7, src + 16, 128);					\
			DP(0, 4, 6);						\
			DP(1, 4, 7);						\
			if (rows > 16) {					\
				LOAD(5, apack + 16 * BF_KP + p, BF_KP * 4);	\
				DP(2, 5, 6);					\
				DP(3, 5, 7);					\
			}							\
		}								\
		AMX_C_OUT(0, 0, 0, STORE);					\
		AMX_C_OUT(1, 0, 16, STORE);					\
		if (rows > 16) {						\
			AMX_C_OUT(2, 16, 0, STORE);				\
			AMX_C_OUT(3, 16, 16, STORE);				\
		}								\
	}									\
}

static __attribute__((target("amx-tile,amx-bf16"), __noinline__))
void amx_tiles(const u32 *bpack, u64 pst, const u32 *btail, const u32 *apack, u32 np, float *o,
	       u64 os_m, u32 m, u32 rows, u32 g, u32 g1, u32 N, int first)
AMX_TILES_BODY(AMX_ZERO_N, AMX_LOAD_N, AMX_STORE_N, AMX_DP_N)

static __attribute__((__noinline__))
void amx_tiles_emulated(struct amx_tiles *E, const u32 *bpack, u64 pst, const u32 *btail,
			const u32 *apack, u32 np, float *o, u64 os_m, u32 m, u32 rows, u32 g, u32 g1,
			u32 N, int first)
AMX_TILES_BODY(AMX_ZERO_E, AMX_LOAD_E, AMX_STORE_E, AMX_DP_E)

BF_PACK_FNS(_avx2, "avx2,fma")

/*
 * out = a x b in bf16 pairs on AMX's tiles (@mode NEURON_AMX_NATIVE) or
 * on their emulation: B packed by blocks of BF_KP pairs and BF_NC
 * columns, or read in place (@bin, pairs in panels @bps dwords apart:
 * ISA 1.14, a block's last pairs short of a tile copied zero padded into
 * the scratch); A by 32 rows; both padded up to a whole tile of pairs.
 */
static void gemm_amx(const void *a, u64 as_m, u64 as_k, const void *b, u64 bs_k, u32 kind,
		     float *o, u64 os_m, u32 M, u32 N, u32 K, u32 *pack, const u32 *bin, u64 bps,
		     u32 mode)
{
	int ahalf = !!(kind & NEURON_GEMM_A_BF16), bhalf = !!(kind & NEURON_GEMM_B_BF16);
	int wide = neuron_simd_level() == NEURON_SIMD_AVX512;
	u32 *apack = pack + GEMM_B_BYTES / 4;
	u32 pairs = (K + 1) / 2, g, g1, p0, np, nt, nm, n, m, rows, r, p;
	const u32 *bq = pack, *btail;
	u64 pst = (u64)32 * BF_KP;
	struct amx_config cfg;
	struct amx_tiles *E = NULL;
	static _Thread_local struct amx_tiles emu;

	if (mode == NEURON_AMX_NATIVE) {
		__builtin_memset(&cfg, 0, sizeof(cfg));
		cfg.palette = 1;
		for (r = 0; r < 8; r++) {
			cfg.colsb[r] = 64;
			cfg.rows[r] = 16;
		}
		__asm__ volatile("ldtilecfg %0" :: "m"(cfg));
	} else {
		E = &emu;
	}
	for (g = 0; g < N; g += BF_NC) {
		g1 = N - g < BF_NC ? N : g + BF_NC;
		for (p0 = 0; p0 < pairs || p0 == 0; p0 += BF_KP) {
			np = pairs - p0 < BF_KP ? pairs - p0 : BF_KP;
			nt = (np + AMX_KT - 1) / AMX_KT * AMX_KT;
			nm = nt;
			btail = NULL;
			if (bin) {
				/* In place: whole tiles of pairs, the rest a padded copy. */
				bq = bin + (u64)g / 32 * bps + (u64)p0 * 32;
				pst = bps;
				nm = np - np % AMX_KT;
				if (nm != np) {
					for (n = g; n < g1; n += 32) {
						u32 *dst = pack + (u64)(n - g) * AMX_KT;

						for (p = 0; p < AMX_KT; p++, dst += 32) {
							if (nm + p < np)
								__builtin_memcpy(dst, bq + (n - g) / 32 * pst +
										 (u64)(nm + p) * 32, 128);
							else
								__builtin_memset(dst, 0, 128);
						}
					}
					btail = pack;
				}
			}
			for (n = g; !bin && n < g1; n += 32) {
				u32 *dst = pack + (u64)(n - g) * BF_KP;

				if (wide)
					bf_pack_b(dst, b, bs_k, bhalf, n, N, p0, np, K);
				else
					bf_pack_b_avx2(dst, b, bs_k, bhalf, n, N, p0, np, K);
				__builtin_memset(dst + (u64)np * 32, 0, (u64)(nt - np) * 32 * 4);
			}
			for (m = 0; m < M; m += rows) {
				rows = M - m < AMX_ROWS ? M - m : AMX_ROWS;
				/* By 16 rows (the packer's most); rows past M padding. */
				for (r = 0; r < rows; r += 16) {
					u32 h = rows - r < 16 ? rows - r : 16;

					if (wide)
						bf_pack_a(apack + r * BF_KP, a, as_m, as_k, ahalf, m + r, h,
							  p0, np, K);
					else
						bf_pack_a_avx2(apack + r * BF_KP, a, as_m, as_k, ahalf, m + r,
							       h, p0, np, K);
				}
				for (r = 0; r < (rows > 16 ? 32u : 16u); r++)
					for (p = r < rows ? np : 0; p < nt; p++)
						apack[r * BF_KP + p] = AMX_PAD_PAIR;
				if (E)
					amx_tiles_emulated(E, bq, pst, btail, apack, nm, o, os_m, m, rows,
							   g, g1, N, !p0);
				else
					amx_tiles(bq, pst, btail, apack, nm, o, os_m, m, rows, g, g1, N, !p0);
			}
			if (!pairs)
				break;
		}
	}
	if (mode == NEURON_AMX_NATIVE)
		__asm__ volatile("tilerelease" ::);
}
#endif

/*
 * B as bf16 pairs in panels (ISA 1.14) at @b, @ps elements apart: read in
 * place by AMX (when chosen), VDPBF16PS (where faster) or the FMA
 * kernels, all from more than 8 rows on for the first two as with B in
 * rows. An odd K (its last pair's second element, never read, is not
 * known to be zero) or panels at an odd offset or stride take the
 * reference chain.
 */
static void gemm_pairs_panels(const void *a, u64 as_m, u64 as_k, const void *b, u64 ps, u32 kind,
			      float *o, u64 os_m, u32 M, u32 N, u32 K, u32 *rows_done,
			      u32 *cols_done, float *pack, int width)
{
	const u32 *bin = (const u32 *)b;
	u32 mxcsr;
#ifndef __KERNEL__
	u32 amx = neuron_amx_mode();
#endif

	if ((K & 1) || (ps & 1) || ((unsigned long)b & 3))
		return;
	ps /= 2;
	mxcsr = __builtin_ia32_stmxcsr();
	__builtin_ia32_ldmxcsr(mxcsr | MXCSR_FTZ_DAZ);
#ifndef __KERNEL__
	if (M > 2 * GEMV_ROWS && amx != NEURON_AMX_OFF)
		gemm_amx(a, as_m, as_k, NULL, 0, kind, o, os_m, M, N, K, (u32 *)pack, bin, ps, amx);
	else
#endif
	if (M > 2 * GEMV_ROWS && gemm_bf16_native_ok(width))
		gemm_bf16_native(a, as_m, as_k, NULL, 0, kind, o, os_m, M, N, K, (u32 *)pack, bin, ps);
	else
		gemm_pairs_panels_fma(a, as_m, as_k, bin, ps, kind, o, os_m, M, N, K, pack, width);
	__builtin_ia32_ldmxcsr(mxcsr);
	*rows_done = M;
	*cols_done = N;
}

void neuron_gemm_block(const void *a, u64 as_m, u64 as_k, const void *b, u64 bs_k, u32 kind,
		       float *o, u64 os_m, u32 M, u32 N, u32 K, u32 *rows_done, u32 *cols_done,
		       const struct neuron_engine_slot *scratch)
{
	float *pack = scratch && scratch->size >= NEURON_GEMM_SCRATCH ? scratch->base : NULL;
	int width = gemm_width();
	u32 step, mxcsr = 0;
	u64 bp = 0;
#ifndef __KERNEL__
	u32 amx;
#endif

	*rows_done = 0;
	*cols_done = 0;
	/*
	 * bf16 and pairs are widened while packing: there must be scratch.
	 * The kernels count columns and taps in 32 bits, past the last one
	 * by up to a block: more than 2^31 take the reference chain.
	 */
	if (!width || ((kind & ~NEURON_GEMM_B_PANELS) && !pack) || N > 0x7fffffffu ||
	    K > 0x7fffffffu)
		return;
	if ((kind & NEURON_GEMM_B_PANELS) && (kind & GEMM_PAIRS)) {
		gemm_pairs_panels(a, as_m, as_k, b, bs_k, kind, o, os_m, M, N, K, rows_done,
				  cols_done, pack, width);
		return;
	}
	if (kind & NEURON_GEMM_B_PANELS) {
		if (kind != NEURON_GEMM_B_PANELS)	/* f32 only */
			return;
		bp = bs_k;
		bs_k = NEURON_MATMUL_PANEL;
		kind = 0;
	}
	*rows_done = M;
	/*
	 * VDPBF16PS from more than 8 rows on; fewer rows stream B in place
	 * through the FMA kernels below (no packing, half the bytes of f32),
	 * which is faster there and gives the same bits.
	 */
#ifndef __KERNEL__
	/* AMX's tiles only when chosen (inexact), from the same rows on. */
	amx = neuron_amx_mode();
	if ((kind & GEMM_PAIRS) && M > 2 * GEMV_ROWS && amx != NEURON_AMX_OFF) {
		mxcsr = __builtin_ia32_stmxcsr();
		__builtin_ia32_ldmxcsr(mxcsr | MXCSR_FTZ_DAZ);
		gemm_amx(a, as_m, as_k, b, bs_k, kind, o, os_m, M, N, K, (u32 *)pack, NULL, 0, amx);
		__builtin_ia32_ldmxcsr(mxcsr);
		*cols_done = N;
		return;
	}
#endif
	if ((kind & GEMM_PAIRS) && M > 2 * GEMV_ROWS && gemm_bf16_native_ok(width)) {
		gemm_bf16_native(a, as_m, as_k, b, bs_k, kind, o, os_m, M, N, K, (u32 *)pack, NULL, 0);
		*cols_done = N;
		return;
	}
	/*
	 * Pairs on FMA: the same chains as VDPBF16PS once MXCSR flushes
	 * denormal inputs and results (restored before returning; in the
	 * kernel this runs inside kernel_fpu_begin/end).
	 */
	if (kind & GEMM_PAIRS) {
		mxcsr = __builtin_ia32_stmxcsr();
		__builtin_ia32_ldmxcsr(mxcsr | MXCSR_FTZ_DAZ);
	}
	step = (u32)width * GEMM_VECS;
	if (N >= step) {
		/*
		 * B in panels, more rows than the gemv tiles take: by chunks
		 * of whole panels that fit the cache, so that the rows left
		 * after the register blocks (which run last) read their
		 * chunk of B hot rather than all of B from memory again.
		 */
		u32 n0, chunk = N - N % step;

		if (bp && M > GEMV_ROWS)
			chunk = gemm_panel_chunk(K, step);
		for (n0 = 0; n0 + step <= N; n0 += chunk) {
			u32 w = N - N % step - n0 < chunk ? N - N % step - n0 : chunk;
			const float *bc = (const float *)b + (bp ? n0 / NEURON_MATMUL_PANEL * bp : n0);

			if (width == 16)
				gemm_avx512(a, as_m, as_k, bc, bs_k, bp, kind, o + n0, os_m, M, w, K, pack);
			else
				gemm_avx2(a, as_m, as_k, bc, bs_k, bp, kind, o + n0, os_m, M, w, K, pack);
		}
	}
	*cols_done = N - N % step;
	/* AVX-512's panels leave up to 31 columns: 16 at a time. */
	while (*cols_done < N) {
		u32 end = N - *cols_done > 16 ? *cols_done + 16 : N;

		gemm_tail_cols(a, as_m, as_k, b, bs_k, bp, kind, o, os_m, M, *cols_done, end, K, pack);
		*cols_done = end;
	}
	if (kind & GEMM_PAIRS)
		__builtin_ia32_ldmxcsr(mxcsr);
}
