// SPDX-License-Identifier: GPL-2.0
/*
 * Engine: its own elementary functions, so that every build computes the
 * same bits (no libm, whose results differ between libraries and which
 * the kernel does not have). The float ones use only IEEE single-precision
 * operations in a fixed order, the double ones (float64 tensors, and the
 * trigonometric functions of float) double-precision ones; sqrt is the
 * correctly rounded hardware instruction. See docs/isa.md for accuracy.
 */
#include "neuron_engine.h"

union bits {
	float f;
	u32 u;
};

static float from_bits(u32 u)
{
	union bits b = { .u = u };

	return b.f;
}

static u32 to_bits(float f)
{
	union bits b = { .f = f };

	return b.u;
}

#define INF_F		from_bits(0x7f800000u)
#define NAN_F		from_bits(0x7fc00000u)

/* x * 2^n for n in [-252, 254], without overflow in the steps. */
static float scale(float x, int n)
{
	if (n > 127) {
		x *= from_bits(254u << 23);	/* 2^127 */
		n -= 127;
		if (n > 127)
			n = 127;
	} else if (n < -126) {
		x *= from_bits(1u << 23);	/* 2^-126 */
		n += 126;
		if (n < -126)
			n = -126;
	}
	return x * from_bits((u32)(n + 127) << 23);
}

float neuron_sqrtf(float x)
{
	return __builtin_sqrtf(x);
}

/*
 * |x| < 2^23: x + 2^23 has a unit last place, so the addition rounds x
 * to an integer (ties to even) and the subtraction is exact. Larger x,
 * infinities and NaN are integral or kept as they are.
 */
float neuron_roundevenf(float x)
{
	float big = 8388608.0f, r;

	if (!(x < big && x > -big))
		return x;
	r = x >= 0 ? (x + big) - big : (x - big) + big;
	return r == 0 ? x * 0.0f : r;	/* 0 with x's sign */
}

/*
 * The remainder of x / y with x's sign, exact: the significands divided
 * by shift and subtract (a remainder of the larger significand, then one
 * bit more per step while x's exponent is above y's).
 */
float neuron_fmodf(float x, float y)
{
	union { float f; u32 u; } bx = { .f = x }, by = { .f = y }, r;
	u32 sign = bx.u & 0x80000000u, ax = bx.u & 0x7fffffffu, ay = by.u & 0x7fffffffu;
	u32 mx, my, ex, ey;

	if (!ay || ax >= 0x7f800000u || ay > 0x7f800000u) {
		r.u = 0x7fc00000u;	/* y zero or NaN, x infinite or NaN */
		return r.f;
	}
	if (ax < ay)
		return x;
	ex = ax >> 23;
	ey = ay >> 23;
	mx = ex ? (ax & 0x7fffffu) | 0x800000u : ax;
	my = ey ? (ay & 0x7fffffu) | 0x800000u : ay;
	ex = ex ? ex : 1;	/* a subnormal's scale is that of exponent 1 */
	ey = ey ? ey : 1;
	mx %= my;
	for (; ex > ey; ex--)
		mx = (mx << 1) % my;	/* mx < my <= 2^24: no overflow */
	if (!mx)
		return x * 0.0f;	/* 0 with x's sign */
	while (mx < 0x800000u && ey > 1) {
		mx <<= 1;
		ey--;
	}
	r.u = sign | (mx >= 0x800000u ? (ey << 23) | (mx & 0x7fffffu) : mx);
	return r.f;
}

float neuron_floorf(float x)
{
	float r = neuron_roundevenf(x);

	return r > x ? r - 1.0f : r;
}

float neuron_expf(float x)
{
	float fn, r, p;
	int n;

	if (x != x)
		return x;
	if (x > 88.72283935546875f)
		return INF_F;
	if (x < -103.97208404541015625f)
		return 0.0f;
	fn = x * 1.44269504088896341f;
	n = (int)(fn + (fn >= 0.0f ? 0.5f : -0.5f));
	r = x - (float)n * 0.693145751953125f;		/* ln 2, high bits */
	r = r - (float)n * 1.428606765330187045e-6f;	/* ln 2, low bits */
	p = 1.0f + r * (1.0f + r * (0.5f + r * (1.66666671633720398e-1f +
	    r * (4.16666679084300995e-2f + r * (8.33333376795053482e-3f +
	    r * (1.38888892251998186e-3f + r * 1.98412701138295233e-4f))))));
	return scale(p, n);
}

float neuron_logf(float x)
{
	u32 u = to_bits(x);
	int e;
	float m, f, s, s2, poly;

	if (x != x || x < 0.0f)
		return NAN_F;
	if (x == 0.0f)
		return -INF_F;
	if (u == 0x7f800000u)
		return x;
	e = (int)((u >> 23) & 0xff) - 127;
	if (e == -127) {			/* subnormal: normalise */
		u = to_bits(x * from_bits(150u << 23));	/* 2^23 */
		e = (int)((u >> 23) & 0xff) - 127 - 23;
	}
	m = from_bits((u & 0x007fffffu) | 0x3f800000u);	/* [1, 2) */
	if (m > 1.41421356237309505f) {
		m = m * 0.5f;
		e += 1;
	}
	f = m - 1.0f;
	s = f / (2.0f + f);
	s2 = s * s;
	poly = 1.0f + s2 * (3.33333343267440796e-1f + s2 * (2.00000002980232239e-1f +
	       s2 * (1.42857149243354797e-1f + s2 * (1.11111111938953400e-1f +
	       s2 * 9.09090936183929443e-2f))));
	return (float)e * 0.693145751953125f + ((float)e * 1.428606765330187045e-6f + 2.0f * s * poly);
}

float neuron_tanhf(float x)
{
	float a = x < 0.0f ? -x : x, t, a2;

	if (x != x)
		return x;
	if (a > 9.0f)
		return x < 0.0f ? -1.0f : 1.0f;
	if (a < 0.2f) {
		a2 = a * a;
		t = a + a * a2 * (-3.33333343267440796e-1f + a2 * (1.33333340287208557e-1f +
		    a2 * (-5.39682544767856598e-2f + a2 * (2.18694191426038742e-2f +
		    a2 * -8.86323582381010056e-3f))));
	} else {
		t = 1.0f - 2.0f / (neuron_expf(2.0f * a) + 1.0f);
	}
	return x < 0.0f ? -t : t;
}

float neuron_erff(float x)
{
	float a = x < 0.0f ? -x : x, r, t, a2;

	if (x != x)
		return x;
	if (a > 4.0f)
		return x < 0.0f ? -1.0f : 1.0f;
	if (a < 0.5f) {
		a2 = a * a;
		r = a * (1.0f + a2 * (-3.33333343267440796e-1f + a2 * (1.00000001490116119e-1f +
		    a2 * (-2.38095242530107498e-2f + a2 * (4.62962966412305832e-3f +
		    a2 * (-7.57575780153274536e-4f + a2 * 1.06837609875947237e-4f))))));
		r = r * 1.12837922573089600f;	/* 2 / sqrt(pi) */
	} else {
		/* Abramowitz and Stegun 7.1.26. */
		t = 1.0f / (1.0f + 0.3275911f * a);
		r = 1.0f - t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f +
		    t * (-1.453152027f + t * 1.061405429f)))) * neuron_expf(-a * a);
	}
	return x < 0.0f ? -r : r;
}

float neuron_powf(float x, float y)
{
	float r;
	int odd = 0;

	if (y == 0.0f || x == 1.0f)
		return 1.0f;
	if (x != x || y != y)
		return NAN_F;
	if (x == 0.0f)
		return y > 0.0f ? 0.0f : INF_F;
	if (x < 0.0f) {
		float ay = y < 0.0f ? -y : y;

		if (ay < 16777216.0f) {
			s64 n = (s64)y;

			if ((float)n != y)
				return NAN_F;	/* negative base, fractional power */
			odd = (int)(n & 1);
		}
		x = -x;
	}
	r = neuron_expf(y * neuron_logf(x));
	return odd ? -r : r;
}

static __attribute__((target("fma"))) float fma_hardware(float x, float y, float z)
{
	return __builtin_fmaf(x, y, z);
}

/*
 * x * y + z rounded once, without an FMA unit. The product is exact in
 * double; the sum is rounded to double and then to float, and the second
 * rounding can only go wrong when the double lies exactly halfway between
 * two floats (its 29 low mantissa bits are 1000...0) and the first
 * rounding lost something. Then nudge the double one ulp toward the exact
 * value, so that the float rounding goes the right way. (Results in the
 * float subnormal range may still differ in the last bit.)
 */
static float fma_emulated(float x, float y, float z)
{
	double p = (double)x * (double)y, c = z, s = p + c, err;
	union { double d; u64 u; } r = { .d = s };

	if ((r.u & 0x1fffffffULL) != 0x10000000ULL)
		return (float)s;
	/* The rounding error of s = p + c (Knuth's TwoSum, branch-free form). */
	{
		double pv = s - c, cv = s - pv;

		err = (p - pv) + (c - cv);
	}
	if (err == 0.0)
		return (float)s;
	if ((err > 0.0) == (s > 0.0))
		r.u += 1;
	else
		r.u -= 1;
	return (float)r.d;
}

float neuron_fmaf(float x, float y, float z)
{
	return neuron_cpu_has_fma() ? fma_hardware(x, y, z) : fma_emulated(x, y, z);
}

/*
 * The trigonometric and hyperbolic functions (ISA 1.5) compute in double
 * and round once to float: double's 29 extra bits make them correctly
 * rounded but for rare cases within an ulp, with no table. They too use
 * only IEEE operations in a fixed order, so every build gives the same bits.
 */
union dbits {
	double d;
	u64 u;
};

static double dfrom_bits(u64 u)
{
	union dbits b = { .u = u };

	return b.d;
}

static u64 dto_bits(double d)
{
	union dbits b = { .d = d };

	return b.u;
}

#define PI_D		3.14159265358979311600e+00
#define PIO2_D		1.57079632679489655800e+00
#define PIO4_D		7.85398163397448278999e-01
#define LN2_HI_D	6.93147180369123816490e-01
#define LN2_LO_D	1.90821492927058770002e-10

/* The correctly rounded hardware square root of double (SSE2's sqrtsd). */
static double hw_sqrt(double x)
{
#ifdef __CHECKER__
	return x;	/* sparse does not know __builtin_sqrt */
#else
	return __builtin_sqrt(x);
#endif
}

/* Round to the nearest integer, ties away from zero (|x| < 2^52). */
static double dround(double x)
{
	return (double)(s64)(x + (x >= 0 ? 0.5 : -0.5));
}

/* e^x in double, within an ulp or two (no table). */
double neuron_exp(double x)
{
	double k, r, p;
	int i;

	if (x != x)
		return x;
	if (x > 709.782712893384)
		return dfrom_bits(0x7ff0000000000000ULL);
	if (x < -745.2)
		return 0.0;
	k = dround(x * 1.44269504088896338700e+00);
	r = (x - k * LN2_HI_D) - k * LN2_LO_D;	/* |r| <= 0.35 */
	/* Taylor to r^16/16!: below 1e-20 of the sum. */
	p = 1.0;
	for (i = 16; i >= 1; i--)
		p = 1.0 + p * r / (double)i;
	if (k < -1021)		/* a subnormal result: scale in two steps */
		return p * dfrom_bits((u64)((s64)k + 1000 + 1023) << 52) *
		       dfrom_bits((u64)(1023 - 1000) << 52);
	if (k > 1023)
		return p * 2.0 * dfrom_bits((u64)((s64)k - 1 + 1023) << 52);
	return p * dfrom_bits((u64)((s64)k + 1023) << 52);
}

/* ln x in double, within an ulp or two: NaN below 0, -inf at 0. */
double neuron_log(double x)
{
	u64 u = dto_bits(x);
	int e = (int)((u >> 52) & 0x7ff) - 1023, i;
	double m, s, s2, p;

	if (x != x || x < 0)
		return dfrom_bits(0x7ff8000000000000ULL);
	if (x == 0)
		return dfrom_bits(0xfff0000000000000ULL);
	if (e == 1024)
		return x;	/* +infinity */
	if (e == -1023) {	/* subnormal: normalise */
		u = dto_bits(x * 18014398509481984.0);	/* 2^54 */
		e = (int)((u >> 52) & 0x7ff) - 1023 - 54;
	}
	m = dfrom_bits((u & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL);
	if (m > 1.41421356237309514547) {
		m *= 0.5;
		e++;
	}
	/* ln m = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.1716 */
	s = (m - 1.0) / (m + 1.0);
	s2 = s * s;
	p = 0.0;
	for (i = 29; i >= 1; i -= 2)
		p = 1.0 / (double)i + s2 * p;
	return (double)e * LN2_HI_D + ((double)e * LN2_LO_D + 2.0 * s * p);
}

/* The square root of double x, correctly rounded: the hardware's. */
double neuron_sqrt(double x)
{
	/*
	 * Below 0 the hardware's NaN: a NaN constant returned here instead
	 * is one that an optimiser may fold into the square root's own (LLVM
	 * does), which would make the two builds differ in its sign.
	 */
	return hw_sqrt(x);
}

/* Round to an integer, ties to even; large values, infinities and NaN kept. */
double neuron_roundeven(double x)
{
	double big = 4503599627370496.0, r;	/* 2^52 */

	if (!(x < big && x > -big))
		return x;
	r = x >= 0 ? (x + big) - big : (x - big) + big;
	return r == 0 ? x * 0.0 : r;
}

double neuron_floor(double x)
{
	double r = neuron_roundeven(x);

	return r > x ? r - 1.0 : r;
}

/* The remainder of x / y with x's sign, exact (as neuron_fmodf, 53 bits). */
double neuron_fmod(double x, double y)
{
	u64 bx = dto_bits(x), by = dto_bits(y), sign = bx & 0x8000000000000000ULL;
	u64 ax = bx & ~0x8000000000000000ULL, ay = by & ~0x8000000000000000ULL;
	u64 mx, my, ex, ey, one = 1ULL << 52;

	if (!ay || ax >= 0x7ff0000000000000ULL || ay > 0x7ff0000000000000ULL)
		return dfrom_bits(0x7ff8000000000000ULL);
	if (ax < ay)
		return x;
	ex = ax >> 52;
	ey = ay >> 52;
	mx = ex ? (ax & (one - 1)) | one : ax;
	my = ey ? (ay & (one - 1)) | one : ay;
	ex = ex ? ex : 1;
	ey = ey ? ey : 1;
	mx %= my;
	for (; ex > ey; ex--)
		mx = (mx << 1) % my;	/* mx < my <= 2^53: no overflow */
	if (!mx)
		return x * 0.0;
	while (mx < one && ey > 1) {
		mx <<= 1;
		ey--;
	}
	return dfrom_bits(sign | (mx >= one ? (ey << 52) | (mx & (one - 1)) : mx));
}

/* sin and cos of |r| <= pi/4 (Taylor to r^23 and r^22: below 1e-22). */
static double dsin_small(double r)
{
	double r2 = r * r, p = 1.0;
	int i;

	for (i = 23; i >= 3; i -= 2)
		p = 1.0 - p * r2 / (double)(i * (i - 1));
	return r * p;
}

static double dcos_small(double r)
{
	double r2 = r * r, p = 1.0;
	int i;

	for (i = 22; i >= 2; i -= 2)
		p = 1.0 - p * r2 / (double)(i * (i - 1));
	return p;
}

/* 2/pi, its first 320 bits after the binary point. */
static const u32 two_over_pi[10] = {
	0xa2f9836e, 0x4e441529, 0xfc2757d1, 0xf534ddc0, 0xdb629599,
	0x3c439041, 0xfe5163ab, 0xdebbc561, 0xb7246e3a, 0x424dd2e0,
};

/*
 * x = q pi/2 + r with |r| <= pi/4 (a little more past 2^20), q mod 4 kept.
 * Below 2^20, Cody and Waite: pi/2 in three parts of 33 bits, each product
 * with q exact. Above, Payne and Hanek: x = M 2^e with M an integer of 24
 * bits, and x 2/pi mod 4 is M times the 96 bits of 2/pi from about bit e
 * on (the earlier bits only add multiples of 4), in integers.
 */
static double reduce_pio2(float x, s64 *q)
{
	u32 u = to_bits(x) & 0x7fffffffu, m, win[3], off, w, sh, k, t;
	u64 p0, p1, p2, hi, lo, frac;
	int e, i0;
	double r;

	if (u < 0x49800000u) {		/* |x| < 2^20 */
		double d = x, n = dround(d * 6.36619772367581382433e-01);

		*q = (s64)n;
		return ((d - n * 1.57079632673412561417e+00) - n * 6.07710050630396597660e-11) -
		       n * 2.02226624871116645580e-21;
	}
	e = (int)(u >> 23) - 150;
	m = (u & 0x7fffffu) | 0x800000u;
	i0 = e - 1 > 1 ? e - 1 : 1;
	off = (u32)i0 - 1;
	w = off / 32;
	sh = off % 32;
	for (k = 0; k < 3; k++)
		win[k] = sh ? (two_over_pi[w + k] << sh) | (two_over_pi[w + k + 1] >> (32 - sh))
			    : two_over_pi[w + k];
	p2 = (u64)m * win[2];
	p1 = (u64)m * win[1] + (p2 >> 32);
	p0 = (u64)m * win[0] + (p1 >> 32);
	hi = p0;				/* the product's bits 64-127 */
	lo = (p1 << 32) | (p2 & 0xffffffffu);	/* bits 0-63 */
	t = (u32)(i0 + 95 - e) - 64;		/* the binary point at bit 64 + t */
	frac = (hi << (64 - t)) | (lo >> t);
	*q = (s64)(((hi >> t) + (frac >> 63)) & 3);
	r = (double)(s64)frac * 5.42101086242752217004e-20 * PIO2_D;	/* 2^-64 */
	if (to_bits(x) >> 31) {
		r = -r;
		*q = -*q;
	}
	return r;
}

float neuron_sinf(float x)
{
	double r;
	s64 q;

	if (x != x || x - x != 0.0f)
		return NAN_F;	/* NaN, infinities */
	r = reduce_pio2(x, &q);
	switch (q & 3) {
	case 0: return (float)dsin_small(r);
	case 1: return (float)dcos_small(r);
	case 2: return (float)-dsin_small(r);
	default: return (float)-dcos_small(r);
	}
}

float neuron_cosf(float x)
{
	double r;
	s64 q;

	if (x != x || x - x != 0.0f)
		return NAN_F;
	r = reduce_pio2(x, &q);
	switch (q & 3) {
	case 0: return (float)dcos_small(r);
	case 1: return (float)-dsin_small(r);
	case 2: return (float)-dcos_small(r);
	default: return (float)dsin_small(r);
	}
}

float neuron_tanf(float x)
{
	double r, s, c;
	s64 q;

	if (x != x || x - x != 0.0f)
		return NAN_F;
	r = reduce_pio2(x, &q);
	s = dsin_small(r);
	c = dcos_small(r);
	return (float)(q & 1 ? -c / s : s / c);
}

/* atan of double: to |t| <= tan(pi/16), then Taylor to t^41 (below 1e-21). */
static double datan(double x)
{
	double a = x < 0 ? -x : x, base = 0.0, t, t2, p = 0.0;
	int i, invert = 0;

	if (x == 0.0)
		return x;	/* keeps -0 */
	if (a > 1.0) {
		a = 1.0 / a;
		invert = 1;
	}
	if (a > 4.14213562373095145475e-01) {		/* tan(pi/8) */
		t = (a - 1.0) / (a + 1.0);		/* atan a = pi/4 + atan t */
		base = PIO4_D;
	} else {
		t = a;
	}
	if (t > 1.98912367379658006911e-01 || t < -1.98912367379658006911e-01) {
		/* tan(pi/16): atan t = c + atan((t - tc) / (1 + t tc)) */
		double tc = t > 0 ? 1.98912367379658006911e-01 : -1.98912367379658006911e-01;

		base += t > 0 ? 1.96349540849362069750e-01 : -1.96349540849362069750e-01;
		t = (t - tc) / (1.0 + t * tc);
	}
	t2 = t * t;
	for (i = 41; i >= 1; i -= 2)
		p = 1.0 / (double)i - t2 * p;
	a = base + t * p;
	if (invert)
		a = PIO2_D - a;
	return x < 0 ? -a : a;
}

float neuron_atanf(float x)
{
	if (x != x)
		return x;
	return (float)datan(x);
}

float neuron_asinf(float x)
{
	double d = x;

	if (x != x || x > 1.0f || x < -1.0f)
		return NAN_F;
	if (x == 1.0f || x == -1.0f)
		return (float)(x * PIO2_D);
	return (float)datan(d / hw_sqrt((1.0 - d) * (1.0 + d)));
}

float neuron_acosf(float x)
{
	double d = x, a;

	if (x != x || x > 1.0f || x < -1.0f)
		return NAN_F;
	if (x == -1.0f)
		return (float)PI_D;
	if (x == 1.0f)
		return 0.0f;
	/* acos x = 2 atan(sqrt((1 - x) / (1 + x))): no cancellation near 1 */
	a = datan(hw_sqrt((1.0 - d) / (1.0 + d)));
	return (float)(2.0 * a);
}

float neuron_sinhf(float x)
{
	double d = x, a = d < 0 ? -d : d, e;

	if (x != x)
		return x;
	if (a < 1e-3) {
		double a2 = d * d;

		return (float)(d + d * a2 * (1.0 / 6 + a2 * (1.0 / 120 + a2 / 5040)));
	}
	e = neuron_exp(a);
	a = 0.5 * (e - 1.0 / e);
	return (float)(d < 0 ? -a : a);
}

float neuron_coshf(float x)
{
	double e;

	if (x != x)
		return x;
	e = neuron_exp(x < 0 ? -(double)x : (double)x);
	return (float)(0.5 * (e + 1.0 / e));
}

float neuron_asinhf(float x)
{
	double d = x, a = d < 0 ? -d : d, r;

	if (x != x || x - x != 0.0f || x == 0.0f)
		return x;	/* NaN, infinities, zeros */
	if (a < 1e-3) {
		double a2 = d * d;

		return (float)(d - d * a2 * (1.0 / 6 - a2 * (3.0 / 40 - a2 * 5.0 / 112)));
	}
	/* past 2^26, sqrt(a^2 + 1) is a to double's precision: ln 2a */
	r = a > 67108864.0 ? neuron_log(a) + 6.93147180559945286227e-01 : neuron_log(a + hw_sqrt(a * a + 1.0));
	return (float)(d < 0 ? -r : r);
}

float neuron_acoshf(float x)
{
	double d = x;

	if (x != x || x < 1.0f)
		return NAN_F;
	if (x - x != 0.0f)
		return x;	/* +infinity */
	if (d > 67108864.0)
		return (float)(neuron_log(d) + 6.93147180559945286227e-01);
	return (float)neuron_log(d + hw_sqrt((d - 1.0) * (d + 1.0)));
}

float neuron_atanhf(float x)
{
	double d = x, a = d < 0 ? -d : d, r;

	if (x != x || x > 1.0f || x < -1.0f)
		return NAN_F;
	if (a == 1.0)
		return d < 0 ? -INF_F : INF_F;
	if (a < 1e-3) {
		double a2 = d * d;

		return (float)(d + d * a2 * (1.0 / 3 + a2 * (1.0 / 5 + a2 / 7)));
	}
	r = 0.5 * neuron_log((1.0 + a) / (1.0 - a));
	return (float)(d < 0 ? -r : r);
}
