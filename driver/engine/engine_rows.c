// SPDX-License-Identifier: GPL-2.0
/*
 * Engine: float32 rows of BINARY and UNARY in vectors, and the choice of
 * vector width for them.
 *
 * Each kernel is written once over a vector of W floats (GCC vector
 * extensions) and instantiated per target: 8 lanes for AVX2, 16 for
 * AVX-512F, and 16 lanes again under the AVX2 target, where the compiler
 * splits each vector in two halves. That last one runs the AVX-512 code's
 * logic, bit for bit, on any AVX2 machine (tests choose it with
 * neuron_simd_set_thread()).
 *
 * A lane computes exactly what the reference (engine_exec.c) computes for
 * its element: the same IEEE operations in the same order, branches made
 * selects (the engine builds without contraction, so a * b + c stays two
 * roundings). Each kernel returns how many elements it did; the caller
 * finishes the row with the scalar code. BINARY and UNARY do rows of at
 * least a vector whole, a row of 8 to 15 elements goes to the 8-lane
 * kernel under AVX-512, and only rows shorter than 8 stay scalar.
 */
#include "engine_insn.h"

/* The vector width the CPU offers. */
static u32 simd_cpu(void)
{
	if (neuron_cpu_has_avx512f())
		return NEURON_SIMD_AVX512;
	return neuron_cpu_has_avx2_fma() ? NEURON_SIMD_AVX2 : NEURON_SIMD_SCALAR;
}

#ifndef __KERNEL__
/* A test's choice for its own thread, NEURON_SIMD_CPU (the default) if none. */
static _Thread_local u32 simd_thread = NEURON_SIMD_CPU;
/* The process's (the simulator's NEURON_SIM_SIMD), under a thread's choice. */
static u32 simd_process = NEURON_SIMD_CPU;
/* VDPBF16PS for bf16 pairs: -1 where it is faster (measured), 0 never, 1 always. */
static int bf16_process = -1;

/* Can this CPU run @level? */
static int simd_runs(u32 level)
{
	u32 cpu = simd_cpu();

	switch (level) {
	case NEURON_SIMD_CPU:
	case NEURON_SIMD_SCALAR:
		break;
	case NEURON_SIMD_AVX2:
	case NEURON_SIMD_WIDE_ON_AVX2:
		if (cpu == NEURON_SIMD_SCALAR)
			return -1;
		break;
	case NEURON_SIMD_AVX512:
		if (cpu != NEURON_SIMD_AVX512)
			return -1;
		break;
	default:
		return -1;
	}
	return 0;
}

int neuron_simd_set_thread(u32 level)
{
	if (simd_runs(level))
		return -1;
	simd_thread = level;
	return 0;
}

int neuron_simd_can_run(u32 level, int bf16_native)
{
	if (simd_runs(level) || (bf16_native && level != NEURON_SIMD_CPU &&
				 level != NEURON_SIMD_AVX512) ||
	    (bf16_native && !neuron_cpu_has_avx512bf16()))
		return 0;
	return 1;
}

int neuron_simd_set_process(u32 level, int bf16_native)
{
	if (!neuron_simd_can_run(level, bf16_native))
		return -1;
	__atomic_store_n(&bf16_process, bf16_native ? 1 : 0, __ATOMIC_RELAXED);
	__atomic_store_n(&simd_process, level, __ATOMIC_RELAXED);
	return 0;
}

int neuron_simd_process_bf16(void)
{
	return __atomic_load_n(&bf16_process, __ATOMIC_RELAXED);
}
#endif

u32 neuron_simd_level(void)
{
#ifndef __KERNEL__
	u32 process = __atomic_load_n(&simd_process, __ATOMIC_RELAXED);

	if (simd_thread != NEURON_SIMD_CPU)
		return simd_thread;
	if (process != NEURON_SIMD_CPU)
		return process;
#endif
	return simd_cpu();
}

/*
 * Helpers over the vector type @V (and its integer twin @I), as macros:
 * a function taking or returning a 16-lane vector under the AVX2 target
 * would change the ABI.
 */
#define SPLAT(V, v)	((v) - (V){ 0 })
/* Lane by lane to type @T (float to int truncates); sparse knows no such builtin. */
#ifdef __CHECKER__
#define CONVERT(v, T)	((T)(v))
#else
#define CONVERT(v, T)	__builtin_convertvector(v, T)
#endif
/* @m's lanes (all ones or zero) take @a, the others @b. */
#define SEL(V, I, m, a, b)	((V)(((m) & (I)(a)) | (~(m) & (I)(b))))
/* The lanes of @v above @hi become @hi, those below @lo become @lo. */
#define CLAMPI(I, v, lo, hi)						\
	({								\
		I c_ = (v);						\
		I h_ = c_ > SPLAT(I, hi), l_ = c_ < SPLAT(I, lo);	\
		(h_ & SPLAT(I, hi)) | (l_ & SPLAT(I, lo)) | (~(h_ | l_) & c_); \
	})

/*
 * exp's core, lane by lane (engine_math.c gives the steps): @n_ (an I)
 * becomes round(x / ln 2), and the value is the polynomial p(r) that
 * 2^n scales, for an @xin that is a number of exp's range.
 */
#define EXP_CORE(V, I, xin, n_)							\
	({									\
		V x_c_ = (xin);							\
		V fn_ = x_c_ * SPLAT(V, 1.44269504088896341f);			\
		V half_ = SEL(V, I, fn_ >= SPLAT(V, 0.0f), SPLAT(V, 0.5f), SPLAT(V, -0.5f)); \
		V nf_, r_;							\
										\
		(n_) = CONVERT(fn_ + half_, I);					\
		nf_ = CONVERT((n_), V);						\
		r_ = x_c_ - nf_ * SPLAT(V, 0.693145751953125f);			\
		r_ = r_ - nf_ * SPLAT(V, 1.428606765330187045e-6f);		\
		SPLAT(V, 1.0f) + r_ * (SPLAT(V, 1.0f) + r_ * (SPLAT(V, 0.5f) +	\
		r_ * (SPLAT(V, 1.66666671633720398e-1f) +			\
		r_ * (SPLAT(V, 4.16666679084300995e-2f) +			\
		r_ * (SPLAT(V, 8.33333376795053482e-3f) +			\
		r_ * (SPLAT(V, 1.38888892251998186e-3f) +			\
		r_ * SPLAT(V, 1.98412701138295233e-4f)))))));			\
	})

/* neuron_expf, lane by lane. */
#define EXP(V, I, xin)								\
	({									\
		V x_ = (xin);							\
		I nan_ = x_ != x_;						\
		I big_ = x_ > SPLAT(V, 88.72283935546875f);			\
		I tiny_ = x_ < SPLAT(V, -103.97208404541015625f);		\
		V xs_ = (V)((I)x_ & ~(nan_ | big_ | tiny_));	/* others: 0 */	\
		I n_, n1_, n2_;							\
		V p_ = EXP_CORE(V, I, xs_, n_);					\
										\
		/* scale(p, n): first 2^127 or 2^-126 where n is beyond the	\
		 * normal exponents (else 2^0, exact), then 2^n of the rest. */	\
		n1_ = ((n_ > SPLAT(I, 127)) & SPLAT(I, 127)) |			\
		      ((n_ < SPLAT(I, -126)) & SPLAT(I, -126));			\
		n2_ = CLAMPI(I, n_ - n1_, -126, 127);				\
		p_ = p_ * (V)((n1_ + 127) << 23);				\
		p_ = p_ * (V)((n2_ + 127) << 23);				\
		p_ = SEL(V, I, tiny_, SPLAT(V, 0.0f), p_);			\
		p_ = SEL(V, I, big_, (V)SPLAT(I, 0x7f800000), p_);		\
		SEL(V, I, nan_, x_, p_);					\
	})

/*
 * EXP for arguments in [EXP_NORMAL_LO, EXP_NORMAL_HI] only (no NaN, no
 * overflow, n within the normal exponents): the same steps, without the
 * cut-offs and the two-step scaling, which change nothing there.
 */
#define EXP_NORMAL_LO	-87.0f	/* n >= -126 */
#define EXP_NORMAL_HI	88.0f	/* n <= 127 */
/* The largest finite float. */
#define ROWS_FLT_MAX	3.40282346638528859812e+38f
#define EXP_NORMAL(V, I, xin)							\
	({									\
		I n_;								\
		V p_ = EXP_CORE(V, I, (xin), n_);				\
										\
		p_ * (V)((n_ + 127) << 23);					\
	})

/* neuron_tanhf, lane by lane: both of its branches, then a select. */
#define TANH(V, I, xin)								\
	({									\
		V x_ = (xin), zero_ = SPLAT(V, 0.0f), one_ = SPLAT(V, 1.0f);	\
		V a_ = SEL(V, I, x_ < zero_, -x_, x_), a2_ = a_ * a_;		\
		V small_ = a_ + a_ * a2_ * (SPLAT(V, -3.33333343267440796e-1f) + \
			   a2_ * (SPLAT(V, 1.33333340287208557e-1f) +		\
			   a2_ * (SPLAT(V, -5.39682544767856598e-2f) +		\
			   a2_ * (SPLAT(V, 2.18694191426038742e-2f) +		\
			   a2_ * SPLAT(V, -8.86323582381010056e-3f)))));		\
		/* Lanes that keep it have 2a in [0.4, 18]: the short EXP, of	\
		 * an argument bounded in the others (NaN among them). */	\
		V ac_ = SEL(V, I, a_ <= SPLAT(V, 9.0f), a_, SPLAT(V, 9.0f));	\
		V big_ = one_ - SPLAT(V, 2.0f) / (EXP_NORMAL(V, I, SPLAT(V, 2.0f) * ac_) + one_); \
		V t_ = SEL(V, I, a_ < SPLAT(V, 0.2f), small_, big_);		\
										\
		t_ = SEL(V, I, a_ > SPLAT(V, 9.0f), one_, t_);			\
		t_ = SEL(V, I, x_ < zero_, -t_, t_);				\
		SEL(V, I, x_ != x_, x_, t_);					\
	})

/*
 * neuron_erff, lane by lane: the series below 0.5 and Abramowitz and
 * Stegun's form above, each computed in every lane, then selects (beyond
 * 4 the result is 1 with x's sign; NaN stays).
 */
#define ERF(V, I, xin)								\
	({									\
		V x_ = (xin), zero_ = SPLAT(V, 0.0f), one_ = SPLAT(V, 1.0f);	\
		V a_ = SEL(V, I, x_ < zero_, -x_, x_), a2_ = a_ * a_, t_, r_;	\
		/* Lanes that keep exp(-a^2) have a in [0.5, 4]: the short EXP, \
		 * of an argument bounded in the others (NaN among them). */	\
		V ac_ = SEL(V, I, a_ <= SPLAT(V, 4.0f), a_, SPLAT(V, 4.0f));	\
		V small_ = a_ * (one_ + a2_ * (SPLAT(V, -3.33333343267440796e-1f) + \
			   a2_ * (SPLAT(V, 1.00000001490116119e-1f) +		\
			   a2_ * (SPLAT(V, -2.38095242530107498e-2f) +		\
			   a2_ * (SPLAT(V, 4.62962966412305832e-3f) +		\
			   a2_ * (SPLAT(V, -7.57575780153274536e-4f) +		\
			   a2_ * SPLAT(V, 1.06837609875947237e-4f)))))));	\
										\
		small_ = small_ * SPLAT(V, 1.12837922573089600f);		\
		t_ = one_ / (one_ + SPLAT(V, 0.3275911f) * a_);		\
		r_ = one_ - t_ * (SPLAT(V, 0.254829592f) + t_ * (SPLAT(V, -0.284496736f) + \
		     t_ * (SPLAT(V, 1.421413741f) + t_ * (SPLAT(V, -1.453152027f) + \
		     t_ * SPLAT(V, 1.061405429f))))) * EXP_NORMAL(V, I, -ac_ * ac_); \
		r_ = SEL(V, I, a_ < SPLAT(V, 0.5f), small_, r_);		\
		r_ = SEL(V, I, a_ > SPLAT(V, 4.0f), one_, r_);			\
		r_ = SEL(V, I, x_ < zero_, -r_, r_);				\
		SEL(V, I, x_ != x_, x_, r_);					\
	})

/*
 * UNARY's operations on a vector @x of type @V (integer twin @I), lane by
 * lane as the reference (engine_exec.c) computes each element; @alpha is
 * the instruction's parameter.
 */
#define UN_RELU(V, I, x)	SEL(V, I, (x) > SPLAT(V, 0.0f), (x), SPLAT(V, 0.0f))
#define UN_LEAKY_RELU(V, I, x)	SEL(V, I, (x) > SPLAT(V, 0.0f), (x), (x) * alpha)
#define UN_NEG(V, I, x)		(-(x))
#define UN_ABS(V, I, x)		SEL(V, I, (x) < SPLAT(V, 0.0f), -(x),		\
				    SEL(V, I, (x) == SPLAT(V, 0.0f), SPLAT(V, 0.0f), (x)))
#define UN_RECIPROCAL(V, I, x)	(SPLAT(V, 1.0f) / (x))
#define UN_SIGMOID(V, I, x)	(SPLAT(V, 1.0f) / (SPLAT(V, 1.0f) + EXP(V, I, -(x))))
#define UN_SIGMOID_NORMAL(V, I, x)						\
	(SPLAT(V, 1.0f) / (SPLAT(V, 1.0f) + EXP_NORMAL(V, I, -(x))))
#define UN_SILU(V, I, x)	((x) * UN_SIGMOID(V, I, x))
#define UN_SILU_NORMAL(V, I, x)	((x) * UN_SIGMOID_NORMAL(V, I, x))
#define UN_GELU_ERF(V, I, x)							\
	(SPLAT(V, 0.5f) * (x) * (SPLAT(V, 1.0f) +				\
				 ERF(V, I, (x) * SPLAT(V, 0.70710678118654752f))))
#define UN_GELU_TANH(V, I, x)							\
	(SPLAT(V, 0.5f) * (x) * (SPLAT(V, 1.0f) +				\
		TANH(V, I, SPLAT(V, 0.79788456080286536f) *			\
		     ((x) + SPLAT(V, 0.044715f) * (x) * (x) * (x)))))

/*
 * The lanes of a block: UNARY and SOFTMAX's exp go through a row by
 * blocks of ROWS_BLOCK(W) floats first, whose vectors the compiler
 * (clang, the simulator's) computes side by side, one operation of each
 * in turn, rather than one chain after the other: an exp's polynomial
 * is a chain of dependent steps, and a chain at a time left the FP units
 * idle (AMD EPYC Zen 1, 98,304 elements: SiLU 258 -> 172 us, GELU 639 ->
 * 453, tanh 522 -> 338). The lanes compute what they would one vector at
 * a time. The module's build (GCC) keeps such a block on the stack
 * (frames of 8 KB), so there a block is one vector.
 */
#ifdef __KERNEL__
#define ROWS_BLOCK(W)	(W)
#else
#define ROWS_BLOCK(W)	32
#endif

/*
 * UN_ROWS(sfx, W, OP): @OP over the row from i: by blocks of ROWS_BLOCK(W),
 * then by vectors of @W to ROWS_STOP (the last one from @last, read
 * before any store).
 */
#define UN_ROWS(sfx, W, OP)							\
do {										\
	for (; i + ROWS_BLOCK(W) <= end; i += ROWS_BLOCK(W)) {			\
		vb_##sfx un_xb = *(const vb_##sfx *)(a + i);			\
										\
		*(vb_##sfx *)(o + i) = OP(vb_##sfx, vbi_##sfx, un_xb);		\
	}									\
	for (; i < stop; i += (W)) {						\
		u64 un_at = i < end ? i : n - (W);				\
		vf_##sfx un_x = i < end ? *(const vf_##sfx *)(a + un_at) : last; \
										\
		*(vf_##sfx *)(o + un_at) = OP(vf_##sfx, vi_##sfx, un_x);	\
	}									\
} while (0)

/* SOFTMAX's o = OP(a - max) over a row's whole vectors, from @i to @end:
 * by blocks, then by vectors (@v and @vb hold max). */
#define SM_EXP_ROWS(sfx, W, OP)							\
do {										\
	for (; i + ROWS_BLOCK(W) <= end; i += ROWS_BLOCK(W))			\
		*(vb_##sfx *)(o + i) = OP(vb_##sfx, vbi_##sfx,			\
					  *(const vb_##sfx *)(a + i) - vb);	\
	for (; i < end; i += (W))						\
		*(vf_##sfx *)(o + i) = OP(vf_##sfx, vi_##sfx,			\
					  *(const vf_##sfx *)(a + i) - v);	\
} while (0)

/*
 * Where the vector loop of a row of @n ends: past whole vectors, one more
 * step when the row has a partial last vector and at least one whole:
 * that step computes the row's last @W elements again (the same bits),
 * from inputs read before the loop's first store, so a row computed in
 * place still reads its own inputs there.
 */
#define ROWS_STOP(n, W)	((n) >= (W) && (n) % (W) ? (n) / (W) * (W) + (W) : (n) / (W) * (W))

/*
 * ROWS_KERNELS(sfx, isa, W): rows_binary_<sfx> and rows_unary_<sfx> over
 * vectors of W floats, built for target @isa. They do a row of at least
 * @W elements whole (its last vector overlapping the one before,
 * ROWS_STOP) and return how many elements they did: @n, or 0 for a row
 * shorter than a vector or an operation they do not know.
 */
#define ROWS_KERNELS(sfx, isa, W)						\
typedef float vf_##sfx __attribute__((vector_size(4 * (W)), aligned(4)));	\
typedef int vi_##sfx __attribute__((vector_size(4 * (W)), aligned(4)));	\
typedef float vb_##sfx __attribute__((vector_size(4 * ROWS_BLOCK(W)), aligned(4))); \
typedef int vbi_##sfx __attribute__((vector_size(4 * ROWS_BLOCK(W)), aligned(4))); \
										\
static __attribute__((target(isa)))						\
u64 rows_binary_##sfx(u32 sub, float *o, const float *a, const float *b,	\
		      int b_scalar, u64 n)					\
{										\
	u64 i, end = n / (W) * (W), stop = ROWS_STOP(n, W);			\
	vf_##sfx y = SPLAT(vf_##sfx, b_scalar ? *b : 0.0f);			\
	vf_##sfx last_a = y, last_b = y;					\
										\
	if (stop > end) {							\
		last_a = *(const vf_##sfx *)(a + n - (W));			\
		if (!b_scalar)							\
			last_b = *(const vf_##sfx *)(b + n - (W));		\
	}									\
	for (i = 0; i < stop; i += (W)) {					\
		u64 at = i < end ? i : n - (W);					\
		vf_##sfx x = i < end ? *(const vf_##sfx *)(a + at) : last_a, r; \
										\
		if (!b_scalar)							\
			y = i < end ? *(const vf_##sfx *)(b + at) : last_b;	\
		switch (sub) {							\
		case NEURON_BIN_ADD: r = x + y; break;				\
		case NEURON_BIN_SUB: r = x - y; break;				\
		case NEURON_BIN_MUL: r = x * y; break;				\
		case NEURON_BIN_DIV: r = x / y; break;				\
		case NEURON_BIN_MAX:						\
			r = SEL(vf_##sfx, vi_##sfx, (x > y) | (x != x), x, y);	\
			break;							\
		case NEURON_BIN_MIN:						\
			r = SEL(vf_##sfx, vi_##sfx, (x < y) | (x != x), x, y);	\
			break;							\
		default: return i;						\
		}								\
		*(vf_##sfx *)(o + at) = r;					\
	}									\
	return i > end ? n : end;						\
}										\
										\
/* Whether the @n (at least W) elements at @a all lie in [lo, hi]. */		\
static __attribute__((target(isa)))						\
int rows_within_##sfx(const float *a, u64 n, float lo, float hi)		\
{										\
	vi_##sfx ok = SPLAT(vi_##sfx, -1);					\
	int lanes[W];								\
	u64 i;									\
	u32 l;									\
										\
	for (i = 0; i + (W) <= n; i += (W)) {					\
		vf_##sfx x = *(const vf_##sfx *)(a + i);			\
										\
		ok &= (x >= SPLAT(vf_##sfx, lo)) & (x <= SPLAT(vf_##sfx, hi));	\
	}									\
	if (i < n) {								\
		vf_##sfx x = *(const vf_##sfx *)(a + n - (W));			\
										\
		ok &= (x >= SPLAT(vf_##sfx, lo)) & (x <= SPLAT(vf_##sfx, hi));	\
	}									\
	*(vi_##sfx *)lanes = ok;						\
	for (l = 0; l < (W); l++)						\
		if (!lanes[l])							\
			return 0;						\
	return 1;								\
}										\
										\
static __attribute__((target(isa)))						\
u64 rows_unary_##sfx(u32 sub, float *o, const float *a, float alpha, u64 n)	\
{										\
	u64 i = 0, end = n / (W) * (W), stop = ROWS_STOP(n, W);		\
	vf_##sfx last = stop > end ? *(const vf_##sfx *)(a + n - (W)) : SPLAT(vf_##sfx, 0.0f); \
	/* EXP's arguments all in its normal range: the short form. */		\
	int normal = stop && (sub == NEURON_UN_EXP ?				\
		rows_within_##sfx(a, n, EXP_NORMAL_LO, EXP_NORMAL_HI) :		\
		(sub == NEURON_UN_SIGMOID || sub == NEURON_UN_SILU) &&		\
		rows_within_##sfx(a, n, -EXP_NORMAL_HI, -EXP_NORMAL_LO));	\
										\
	switch (sub) {								\
	case NEURON_UN_RELU: UN_ROWS(sfx, W, UN_RELU); break;			\
	case NEURON_UN_LEAKY_RELU: UN_ROWS(sfx, W, UN_LEAKY_RELU); break;	\
	case NEURON_UN_NEG: UN_ROWS(sfx, W, UN_NEG); break;			\
	case NEURON_UN_ABS: UN_ROWS(sfx, W, UN_ABS); break;			\
	case NEURON_UN_RECIPROCAL: UN_ROWS(sfx, W, UN_RECIPROCAL); break;	\
	case NEURON_UN_EXP:							\
		if (normal)							\
			UN_ROWS(sfx, W, EXP_NORMAL);				\
		else								\
			UN_ROWS(sfx, W, EXP);					\
		break;								\
	case NEURON_UN_SIGMOID:							\
		if (normal)							\
			UN_ROWS(sfx, W, UN_SIGMOID_NORMAL);			\
		else								\
			UN_ROWS(sfx, W, UN_SIGMOID);				\
		break;								\
	case NEURON_UN_SILU:							\
		if (normal)							\
			UN_ROWS(sfx, W, UN_SILU_NORMAL);			\
		else								\
			UN_ROWS(sfx, W, UN_SILU);				\
		break;								\
	case NEURON_UN_TANH: UN_ROWS(sfx, W, TANH); break;			\
	case NEURON_UN_ERF: UN_ROWS(sfx, W, ERF); break;			\
	case NEURON_UN_GELU_ERF: UN_ROWS(sfx, W, UN_GELU_ERF); break;		\
	case NEURON_UN_GELU_TANH: UN_ROWS(sfx, W, UN_GELU_TANH); break;	\
	default: return 0;							\
	}									\
	return i > end ? n : end;						\
}										\
										\
static __attribute__((target(isa)))						\
u64 rows_max_##sfx(const float *a, u64 n, float *max)				\
{										\
	u64 i, end = n / (W) * (W);						\
	vf_##sfx m = SPLAT(vf_##sfx, *max);					\
	float lanes[W];								\
	u32 l;									\
										\
	for (i = 0; i < end; i += (W)) {					\
		vf_##sfx x = *(const vf_##sfx *)(a + i);			\
										\
		m = SEL(vf_##sfx, vi_##sfx, x > m, x, m);			\
	}									\
	*(vf_##sfx *)lanes = m;							\
	for (l = 0; l < (W); l++)						\
		*max = lanes[l] > *max ? lanes[l] : *max;			\
	return end;								\
}										\
										\
/* Lanes [0, 16) of a row sum (NEURON_ROW_SUM_LANES) from vectors: one of	\
 * 16, or two of 8 taking every other vector. */				\
static __attribute__((target(isa)))						\
void rows_lanes_##sfx(vf_##sfx *acc, float *part)				\
{										\
	u32 h;									\
										\
	for (h = 0; h < NEURON_ROW_SUM_WIDTH / (W); h++)			\
		*(vf_##sfx *)(part + h * (W)) = acc[h];				\
}										\
										\
/* One contiguous LAYERNORM row with NEURON_ROW_SUM_LANES: the reference's	\
 * steps (engine_exec.c) by vector. */						\
static __attribute__((target(isa)))						\
void rows_layernorm_##sfx(const float *a, float *o, const float *g, const float *b, \
			  u64 n, float eps)					\
{										\
	u64 i, end = n / (W) * (W);						\
	vf_##sfx acc[NEURON_ROW_SUM_WIDTH / (W)], m, inv;			\
	float part[NEURON_ROW_SUM_WIDTH], mean, var, scale;			\
	u32 h;									\
										\
	for (h = 0; h < NEURON_ROW_SUM_WIDTH / (W); h++)			\
		acc[h] = SPLAT(vf_##sfx, 0.0f);					\
	for (i = 0; i < end; i += (W)) {					\
		h = (u32)(i / (W)) % (NEURON_ROW_SUM_WIDTH / (W));		\
		acc[h] = acc[h] + *(const vf_##sfx *)(a + i);			\
	}									\
	rows_lanes_##sfx(acc, part);						\
	for (; i < n; i++)							\
		part[i % NEURON_ROW_SUM_WIDTH] = part[i % NEURON_ROW_SUM_WIDTH] + a[i]; \
	mean = neuron_lane_sum(part) / (float)n;				\
	m = SPLAT(vf_##sfx, mean);						\
	for (h = 0; h < NEURON_ROW_SUM_WIDTH / (W); h++)			\
		acc[h] = SPLAT(vf_##sfx, 0.0f);					\
	for (i = 0; i < end; i += (W)) {					\
		vf_##sfx d = *(const vf_##sfx *)(a + i) - m;			\
										\
		h = (u32)(i / (W)) % (NEURON_ROW_SUM_WIDTH / (W));		\
		acc[h] = acc[h] + d * d;					\
	}									\
	rows_lanes_##sfx(acc, part);						\
	for (; i < n; i++) {							\
		float d = a[i] - mean;						\
										\
		part[i % NEURON_ROW_SUM_WIDTH] = part[i % NEURON_ROW_SUM_WIDTH] + d * d; \
	}									\
	var = neuron_lane_sum(part);						\
	scale = 1.0f / neuron_sqrtf(var / (float)n + eps);			\
	inv = SPLAT(vf_##sfx, scale);						\
	for (i = 0; i < end; i += (W)) {					\
		vf_##sfx y = (*(const vf_##sfx *)(a + i) - m) * inv;		\
										\
		*(vf_##sfx *)(o + i) = y * *(const vf_##sfx *)(g + i) +	\
				       *(const vf_##sfx *)(b + i);		\
	}									\
	for (; i < n; i++) {							\
		float y = (a[i] - mean) * scale;				\
										\
		o[i] = y * g[i] + b[i];						\
	}									\
}										\
										\
/* One contiguous SOFTMAX row, @o apart from @a or equal: the reference's	\
 * steps (engine_exec.c) with its vector parts inline, in one call. */		\
static __attribute__((target(isa)))						\
void rows_softmax_##sfx(const float *a, float *o, u64 n, int lanes)		\
{										\
	u64 i, j, end = n / (W) * (W);						\
	float max = a[0], sum = 0.0f, part[NEURON_ROW_SUM_WIDTH], lo;		\
	vf_##sfx v, acc[NEURON_ROW_SUM_WIDTH / (W)];				\
	vb_##sfx vb;								\
	int normal;								\
	u32 h;									\
										\
	rows_max_##sfx(a, n, &max);						\
	for (j = end ? end : 1; j < n; j++)					\
		max = a[j] > max ? a[j] : max;					\
	/* Every a - max in EXP's normal range (its rounding is monotonic	\
	 * in a, so from lo on it is at least lo - max), NaN nowhere: the	\
	 * short form. Side by side by blocks, as UNARY. */			\
	lo = max - 86.0f;							\
	normal = end && max > -ROWS_FLT_MAX && max < ROWS_FLT_MAX &&	\
		 lo - max >= EXP_NORMAL_LO && rows_within_##sfx(a, n, lo, max); \
	v = SPLAT(vf_##sfx, max);						\
	vb = SPLAT(vb_##sfx, max);						\
	i = 0;									\
	if (normal)								\
		SM_EXP_ROWS(sfx, W, EXP_NORMAL);				\
	else									\
		SM_EXP_ROWS(sfx, W, EXP);					\
	if (lanes) {								\
		for (h = 0; h < NEURON_ROW_SUM_WIDTH / (W); h++)		\
			acc[h] = SPLAT(vf_##sfx, 0.0f);				\
		for (i = 0; i < end; i += (W)) {				\
			h = (u32)(i / (W)) % (NEURON_ROW_SUM_WIDTH / (W));	\
			acc[h] = acc[h] + *(const vf_##sfx *)(o + i);		\
		}								\
		rows_lanes_##sfx(acc, part);					\
	}									\
	for (i = lanes ? end : 0; i < end; i++)					\
		sum = sum + o[i];						\
	for (; i < n; i++) {							\
		float e = neuron_expf(a[i] - max);				\
										\
		o[i] = e;							\
		if (lanes)							\
			part[i % NEURON_ROW_SUM_WIDTH] =			\
				part[i % NEURON_ROW_SUM_WIDTH] + e;		\
		else								\
			sum = sum + e;						\
	}									\
	if (lanes)								\
		sum = neuron_lane_sum(part);					\
	v = SPLAT(vf_##sfx, sum);						\
	for (i = 0; i < end; i += (W))						\
		*(vf_##sfx *)(o + i) = *(const vf_##sfx *)(o + i) / v;		\
	for (; i < n; i++)							\
		o[i] = o[i] / sum;						\
}

ROWS_KERNELS(avx2, "avx2,fma", 8)
ROWS_KERNELS(avx512, "avx512f", 16)
#ifndef __KERNEL__	/* tests only: neuron_simd_set_thread() */
ROWS_KERNELS(wide, "avx2,fma", 16)
#endif

/*
 * Whether the kernels may run over these rows: the output overlapping an
 * input other than exactly (in place) would see the reference's order.
 */
static int rows_apart(const float *o, const float *x, u64 n)
{
	return x == o || x + n <= o || o + n <= x;
}

u64 neuron_rows_binary(u32 sub, float *o, const float *a, const float *b, int b_scalar, u64 n)
{
	if (!rows_apart(o, a, n) || (b_scalar ? b >= o && b < o + n : !rows_apart(o, b, n)))
		return 0;
	switch (neuron_simd_level()) {
	case NEURON_SIMD_AVX2: return rows_binary_avx2(sub, o, a, b, b_scalar, n);
	case NEURON_SIMD_AVX512:
		if (n < 16)
			return rows_binary_avx2(sub, o, a, b, b_scalar, n);
		return rows_binary_avx512(sub, o, a, b, b_scalar, n);
#ifndef __KERNEL__
	case NEURON_SIMD_WIDE_ON_AVX2:
		if (n < 16)
			return rows_binary_avx2(sub, o, a, b, b_scalar, n);
		return rows_binary_wide(sub, o, a, b, b_scalar, n);
#endif
	}
	return 0;
}

u64 neuron_rows_unary(u32 sub, float *o, const float *a, float alpha, u64 n)
{
	if (!rows_apart(o, a, n))
		return 0;
	switch (neuron_simd_level()) {
	case NEURON_SIMD_AVX2: return rows_unary_avx2(sub, o, a, alpha, n);
	case NEURON_SIMD_AVX512:
		if (n < 16)
			return rows_unary_avx2(sub, o, a, alpha, n);
		return rows_unary_avx512(sub, o, a, alpha, n);
#ifndef __KERNEL__
	case NEURON_SIMD_WIDE_ON_AVX2:
		if (n < 16)
			return rows_unary_avx2(sub, o, a, alpha, n);
		return rows_unary_wide(sub, o, a, alpha, n);
#endif
	}
	return 0;
}

u64 neuron_rows_max(const float *a, u64 n, float *max)
{
	switch (neuron_simd_level()) {
	case NEURON_SIMD_AVX2: return rows_max_avx2(a, n, max);
	case NEURON_SIMD_AVX512: return rows_max_avx512(a, n, max);
#ifndef __KERNEL__
	case NEURON_SIMD_WIDE_ON_AVX2: return rows_max_wide(a, n, max);
#endif
	}
	return 0;
}

int neuron_rows_softmax(const float *a, float *o, u64 n, int lanes)
{
	if (!n || !rows_apart(o, a, n))
		return 0;
	switch (neuron_simd_level()) {
	case NEURON_SIMD_AVX2: rows_softmax_avx2(a, o, n, lanes); return 1;
	case NEURON_SIMD_AVX512: rows_softmax_avx512(a, o, n, lanes); return 1;
#ifndef __KERNEL__
	case NEURON_SIMD_WIDE_ON_AVX2: rows_softmax_wide(a, o, n, lanes); return 1;
#endif
	}
	return 0;
}

int neuron_rows_layernorm(const float *a, float *o, const float *g, const float *b, u64 n,
			  float eps)
{
	if (!n || !rows_apart(o, a, n) || !rows_apart(o, g, n) || !rows_apart(o, b, n))
		return 0;
	switch (neuron_simd_level()) {
	case NEURON_SIMD_AVX2: rows_layernorm_avx2(a, o, g, b, n, eps); return 1;
	case NEURON_SIMD_AVX512: rows_layernorm_avx512(a, o, g, b, n, eps); return 1;
#ifndef __KERNEL__
	case NEURON_SIMD_WIDE_ON_AVX2: rows_layernorm_wide(a, o, g, b, n, eps); return 1;
#endif
	}
	return 0;
}
