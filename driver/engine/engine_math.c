// SPDX-License-Identifier: GPL-2.0
/*
 * Engine: its own elementary functions, so that every build computes the
 * same bits (no libm, whose results differ between libraries and which
 * the kernel does not have). Each uses only IEEE single-precision
 * operations in a fixed order; sqrt is the correctly rounded hardware
 * instruction. Accuracy is within a few ulp; see docs/isa.md.
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
