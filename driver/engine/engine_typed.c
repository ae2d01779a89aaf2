// SPDX-License-Identifier: GPL-2.0
/*
 * Engine: element types beyond f32 (ISA 1.4). Loads and stores of every
 * dtype, CAST between any two, FILL of any, integer and bool BINARY and
 * UNARY, COMPARE, SELECT, and the index reductions ARGMAX and ARGMIN.
 *
 * A value is held while computed as a double (the float types: each of
 * them converts to double exactly) or as 64 bits of an integer with its
 * signedness. Integer arithmetic wraps, as two's complement does; x / 0
 * and x % 0 are 0. Operands were validated.
 */
#include "engine_insn.h"

enum kind { FLOAT, SIGNED, UNSIGNED };

struct value {
	enum kind kind;
	u64 bits;	/* SIGNED: sign-extended; UNSIGNED: zero-extended */
	double d;	/* FLOAT */
};

static float from_bits(u32 u)
{
	union { u32 u; float f; } b = { .u = u };

	return b.f;
}

static u32 to_bits(float f)
{
	union { float f; u32 u; } b = { .f = f };

	return b.u;
}

static u64 dbl_bits(double d)
{
	union { double d; u64 u; } b = { .d = d };

	return b.u;
}

/* float16 to float32: exact (subnormals normalised, NaN stays NaN). */
static float f16_to_f32(u16 h)
{
	u32 sign = (u32)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
	u32 e = 0;

	if (exp == 0x1f)
		return from_bits(sign | 0x7f800000 | (man << 13));
	if (exp)
		return from_bits(sign | ((exp + 112) << 23) | (man << 13));
	if (!man)
		return from_bits(sign);
	while (!(man & 0x400)) {
		man <<= 1;
		e++;
	}
	return from_bits(sign | ((113 - e) << 23) | ((man & 0x3ff) << 13));
}

/* float32 to float16: to nearest, ties to even; overflow to infinity. */
static u16 f32_to_f16(float f)
{
	u32 x = to_bits(f), sign = (x >> 16) & 0x8000, exp = (x >> 23) & 0xff;
	u32 man = x & 0x7fffff, h, rem, shift, m;

	if (exp == 0xff)	/* infinity, or NaN made quiet */
		return sign | 0x7c00 | (man ? 0x200 | (man >> 13) : 0);
	if (exp > 142)		/* 2^16 and above */
		return sign | 0x7c00;
	if (exp >= 113) {	/* a normal float16 */
		h = sign | ((exp - 112) << 10) | (man >> 13);
		rem = man & 0x1fff;
		if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
			h++;	/* may carry into the exponent, up to infinity */
		return h;
	}
	/* A subnormal float16: m · 2^-24 with m = (1.man) · 2^(exp - 126). */
	shift = 126 - exp;
	if (shift > 24)
		return sign;
	man |= 0x800000;
	m = man >> shift;
	rem = man & ((1u << shift) - 1);
	if (rem > (1u << (shift - 1)) || (rem == (1u << (shift - 1)) && (m & 1)))
		m++;
	return sign | m;
}

static float bf16_to_f32(u16 h)
{
	return from_bits(neuron_f32_bits_from_bf16(h));
}

static u16 f32_to_bf16(float f)
{
	return neuron_bf16_from_f32_bits(to_bits(f));
}

static struct value load(const void *base, u32 dtype, u64 off)
{
	struct value v = { SIGNED, 0, 0.0 };

	switch (dtype) {
	case NEURON_DT_F32: v.kind = FLOAT; v.d = ((const float *)base)[off]; break;
	case NEURON_DT_BF16: v.kind = FLOAT; v.d = bf16_to_f32(((const u16 *)base)[off]); break;
	case NEURON_DT_F16: v.kind = FLOAT; v.d = f16_to_f32(((const u16 *)base)[off]); break;
	case NEURON_DT_F64: v.kind = FLOAT; v.d = ((const double *)base)[off]; break;
	case NEURON_DT_I8: v.bits = (u64)(s64)((const s8 *)base)[off]; break;
	case NEURON_DT_I16: v.bits = (u64)(s64)((const s16 *)base)[off]; break;
	case NEURON_DT_I32: v.bits = (u64)(s64)((const s32 *)base)[off]; break;
	case NEURON_DT_I64: v.bits = (u64)((const s64 *)base)[off]; break;
	case NEURON_DT_U8: v.kind = UNSIGNED; v.bits = ((const u8 *)base)[off]; break;
	case NEURON_DT_U16: v.kind = UNSIGNED; v.bits = ((const u16 *)base)[off]; break;
	case NEURON_DT_U32: v.kind = UNSIGNED; v.bits = ((const u32 *)base)[off]; break;
	case NEURON_DT_U64: v.kind = UNSIGNED; v.bits = ((const u64 *)base)[off]; break;
	case NEURON_DT_BOOL: v.kind = UNSIGNED; v.bits = ((const u8 *)base)[off] != 0; break;
	/* ISA 1.6: the low bits of a byte */
	case NEURON_DT_I4: v.bits = (u64)(s64)((s8)(((const u8 *)base)[off] << 4) >> 4); break;
	case NEURON_DT_I2: v.bits = (u64)(s64)((s8)(((const u8 *)base)[off] << 6) >> 6); break;
	case NEURON_DT_U4: v.kind = UNSIGNED; v.bits = ((const u8 *)base)[off] & 0xf; break;
	case NEURON_DT_U2: v.kind = UNSIGNED; v.bits = ((const u8 *)base)[off] & 0x3; break;
	case NEURON_DT_F8E8M0: case NEURON_DT_F8E4M3FN: case NEURON_DT_F8E4M3FNUZ:
	case NEURON_DT_F8E5M2: case NEURON_DT_F8E5M2FNUZ: case NEURON_DT_F4E2M1:
		v.kind = FLOAT;
		v.d = from_bits(neuron_f32_bits_from_small(dtype, ((const u8 *)base)[off]));
		break;
	}
	return v;
}

/* The low bits of @bits into an integer or bool element. */
static void store_bits(void *base, u32 dtype, u64 off, u64 bits)
{
	switch (dtype) {
	case NEURON_DT_I8: case NEURON_DT_U8: ((u8 *)base)[off] = (u8)bits; break;
	case NEURON_DT_I16: case NEURON_DT_U16: ((u16 *)base)[off] = (u16)bits; break;
	case NEURON_DT_I32: case NEURON_DT_U32: ((u32 *)base)[off] = (u32)bits; break;
	case NEURON_DT_I64: case NEURON_DT_U64: ((u64 *)base)[off] = bits; break;
	case NEURON_DT_BOOL: ((u8 *)base)[off] = bits != 0; break;
	/* ISA 1.6: the low bits, a signed one sign-extended through the byte */
	case NEURON_DT_I4: ((u8 *)base)[off] = (u8)((s8)((u8)bits << 4) >> 4); break;
	case NEURON_DT_I2: ((u8 *)base)[off] = (u8)((s8)((u8)bits << 6) >> 6); break;
	case NEURON_DT_U4: ((u8 *)base)[off] = (u8)bits & 0xf; break;
	case NEURON_DT_U2: ((u8 *)base)[off] = (u8)bits & 0x3; break;
	}
}

static int dtype_signed(u32 dtype)
{
	return dtype == NEURON_DT_I8 || dtype == NEURON_DT_I16 || dtype == NEURON_DT_I32 ||
	       dtype == NEURON_DT_I64 || dtype == NEURON_DT_I4 || dtype == NEURON_DT_I2;
}

/* Bits of an integer type's values. */
static u32 int_bits(u32 dtype)
{
	if (dtype == NEURON_DT_I4 || dtype == NEURON_DT_U4)
		return 4;
	if (dtype == NEURON_DT_I2 || dtype == NEURON_DT_U2)
		return 2;
	return neuron_dtype_size(dtype) * 8;
}

/* The four- and two-bit integers of ISA 1.6. */
static int dtype_tiny(u32 dtype)
{
	return int_bits(dtype) < 8;
}

/* The range of an integer type: [lo, hi] as signed, or [0, uhi]. */
static void int_range(u32 dtype, s64 *lo, s64 *hi, u64 *uhi)
{
	u32 bits = int_bits(dtype);

	if (dtype == NEURON_DT_BOOL) {
		*lo = 0;
		*hi = 1;
		*uhi = 1;
	} else if (dtype_signed(dtype)) {
		*hi = (s64)((1ULL << (bits - 1)) - 1);
		*lo = -*hi - 1;
		*uhi = (u64)*hi;
	} else {
		*lo = 0;
		*uhi = bits == 64 ? ~0ULL : (1ULL << bits) - 1;
		*hi = bits == 64 ? 0x7fffffffffffffffLL : (s64)*uhi;
	}
}

/*
 * A float to an integer type: toward zero, saturated to the type's range,
 * NaN to 0 (to bool: anything but 0 is true, NaN too). Into the four- and
 * two-bit types (ISA 1.6): toward zero, then the low bits, as integers
 * convert into them (ONNX leaves a float out of range undefined; numpy's
 * ml_dtypes 0.6 wraps too); NaN and beyond 2^63 to 0.
 */
static u64 float_to_int(double d, u32 dtype)
{
	s64 lo, hi;
	u64 uhi;

	if (dtype == NEURON_DT_BOOL)
		return d != 0;
	if (d != d)
		return 0;
	int_range(dtype, &lo, &hi, &uhi);
	if (dtype_tiny(dtype))
		return d > -9223372036854775808.0 && d < 9223372036854775808.0 ? (u64)(s64)d : 0;
	if (dtype_signed(dtype)) {
		if (d >= (double)hi + 1.0)
			return (u64)hi;
		if (d <= (double)lo)
			return (u64)lo;
		return (u64)(s64)d;
	}
	if (d <= 0)
		return 0;
	if (d >= (double)uhi + 1.0)
		return uhi;
	return (u64)d;
}

/* An integer to another: saturated to its range, or wrapped (low bits). */
static u64 int_to_int(struct value v, u32 dtype, int wrap)
{
	s64 lo, hi;
	u64 uhi;

	if (dtype == NEURON_DT_BOOL)
		return v.bits != 0;
	if (wrap)
		return v.bits;
	int_range(dtype, &lo, &hi, &uhi);
	if (v.kind == SIGNED) {
		s64 x = (s64)v.bits;

		if (!dtype_signed(dtype))
			return x < 0 ? 0 : (u64)x > uhi ? uhi : (u64)x;
		return (u64)(x < lo ? lo : x > hi ? hi : x);
	}
	return v.bits > uhi ? uhi : v.bits;
}

/* float32 of an integer, rounded once (as a direct conversion does). */
static float int_to_f32(struct value v)
{
	return v.kind == SIGNED ? (float)(s64)v.bits : (float)v.bits;
}

static void store(void *base, u32 dtype, u64 off, struct value v, u32 flags)
{
	int wrap = flags & NEURON_CAST_WRAP;
	double d;
	float f;

	switch (dtype) {
	case NEURON_DT_F8E4M3FN: case NEURON_DT_F8E4M3FNUZ: case NEURON_DT_F8E5M2:
	case NEURON_DT_F8E5M2FNUZ: case NEURON_DT_F4E2M1:
		d = v.kind == FLOAT ? v.d : v.kind == SIGNED ? (double)(s64)v.bits : (double)v.bits;
		((u8 *)base)[off] = (u8)neuron_small_from_f64_bits(dtype, dbl_bits(d),
								  !(flags & NEURON_CAST_NO_SATURATE));
		return;
	case NEURON_DT_F8E8M0:	/* rounded to float32 first, as ONNX's reference */
		f = v.kind == FLOAT ? (float)v.d : int_to_f32(v);
		((u8 *)base)[off] = (u8)neuron_e8m0_from_f32_bits(to_bits(f), flags);
		return;
	case NEURON_DT_F64:
		((double *)base)[off] = v.kind == FLOAT ? v.d :
			v.kind == SIGNED ? (double)(s64)v.bits : (double)v.bits;
		return;
	case NEURON_DT_F32: case NEURON_DT_BF16: case NEURON_DT_F16:
		f = v.kind == FLOAT ? (float)v.d : int_to_f32(v);
		if (dtype == NEURON_DT_F32)
			((float *)base)[off] = f;
		else if (dtype == NEURON_DT_BF16)
			((u16 *)base)[off] = f32_to_bf16(f);
		else
			((u16 *)base)[off] = f32_to_f16(f);
		return;
	}
	store_bits(base, dtype, off, v.kind == FLOAT ? float_to_int(v.d, dtype)
						   : int_to_int(v, dtype, wrap));
}

void neuron_typed_fill(const struct neuron_tensor_desc *o, float value,
		       const struct neuron_engine_slot *slots)
{
	struct value v = { FLOAT, 0, value };
	struct walk w;

	walk_init(&w, o);
	do {
		store(slots[o->slot].base, o->dtype, at(&w, o), v, 0);
	} while (walk_next(&w));
}

/*
 * The element walks below go by rows (walk_rows: trailing axes merged),
 * each element's offsets stepped along its row: the same elements in the
 * same order as a walk element by element.
 */
void neuron_typed_cast(const struct neuron_tensor_desc *o, const struct neuron_tensor_desc *a,
		       u32 flags, const struct neuron_engine_slot *slots)
{
	const struct neuron_tensor_desc *views[2] = { o, a };
	void *po = slots[o->slot].base;
	const void *pa = slots[a->slot].base;
	u64 n, step[2], i, oo, ao;
	struct walk w;

	walk_rows(&w, views, 2, &n, step);
	do {
		oo = at(&w, o);
		ao = at(&w, a);
		if (o->dtype == NEURON_DT_F32 && a->dtype == NEURON_DT_BOOL) {
			for (i = 0; i < n; i++, oo += step[0], ao += step[1])
				((float *)po)[oo] = ((const u8 *)pa)[ao] ? 1.0f : 0.0f;
			continue;
		}
		/*
		 * float32 and bfloat16 each way by their bits, as the walk through
		 * double gives them: bfloat16 rounded to nearest even (a NaN the
		 * quiet 0x7fc0); float32 exact, a NaN quieted as the conversion
		 * through double quiets it.
		 */
		if (o->dtype == NEURON_DT_BF16 && a->dtype == NEURON_DT_F32) {
			for (i = 0; i < n; i++, oo += step[0], ao += step[1])
				((u16 *)po)[oo] = neuron_bf16_from_f32_bits(((const u32 *)pa)[ao]);
			continue;
		}
		if (o->dtype == NEURON_DT_F32 && a->dtype == NEURON_DT_BF16) {
			for (i = 0; i < n; i++, oo += step[0], ao += step[1]) {
				u32 bits = neuron_f32_bits_from_bf16(((const u16 *)pa)[ao]);

				if ((bits & 0x7fffffffu) > 0x7f800000u)
					bits |= 0x00400000u;
				((u32 *)po)[oo] = bits;
			}
			continue;
		}
		for (i = 0; i < n; i++, oo += step[0], ao += step[1])
			store(po, o->dtype, oo, load(pa, a->dtype, ao), flags);
	} while (walk_next(&w));
}

s64 neuron_typed_index(const void *base, u32 dtype, u64 off)
{
	return (s64)load(base, dtype, off).bits;
}

/* x <sub> y of one integer type (64-bit operands, the result's low bits kept). */
static u64 int_binary(u32 sub, int sgn, u32 bits, u64 x, u64 y)
{
	s64 sx = (s64)x, sy = (s64)y, r;

	switch (sub) {
	case NEURON_BIN_ADD: return x + y;
	case NEURON_BIN_SUB: return x - y;
	case NEURON_BIN_MUL: return x * y;
	case NEURON_BIN_AND: return x & y;
	case NEURON_BIN_OR: return x | y;
	case NEURON_BIN_XOR: return x ^ y;
	case NEURON_BIN_SHL: return y >= bits ? 0 : x << y;
	case NEURON_BIN_SHR:
		/* arithmetic for signed types: a shift of the width or more (or a
		 * negative one) leaves the sign */
		if (sgn)
			return y >= bits ? (sx < 0 ? ~0ULL : 0) : (u64)(sx >> y);
		return y >= bits ? 0 : x >> y;
	case NEURON_BIN_MAX: return sgn ? (sx > sy ? x : y) : (x > y ? x : y);
	case NEURON_BIN_MIN: return sgn ? (sx < sy ? x : y) : (x < y ? x : y);
	}
	if (!y)
		return 0;
	if (!sgn)
		return sub == NEURON_BIN_DIV ? x / y : x % y;
	if (sy == -1)	/* the one quotient that overflows: wrap */
		return sub == NEURON_BIN_DIV ? 0 - x : 0;
	if (sub == NEURON_BIN_DIV)
		return (u64)(sx / sy);
	r = sx % sy;
	/* MOD takes the divisor's sign (Python's %), FMOD the dividend's. */
	if (sub == NEURON_BIN_MOD && r && ((r < 0) != (sy < 0)))
		r += sy;
	return (u64)r;
}

static u64 int_unary(u32 sub, u32 dtype, u64 x)
{
	switch (sub) {
	case NEURON_UN_NEG: return 0 - x;
	case NEURON_UN_ABS: return (s64)x < 0 ? 0 - x : x;
	case NEURON_UN_NOT: return dtype == NEURON_DT_BOOL ? !x : ~x;
	}
	return 0;
}

/* x <sub> y of float64 (ISA 1.5): as float32's, in double. */
static double f64_binary(u32 sub, double x, double y)
{
	double r;

	switch (sub) {
	case NEURON_BIN_ADD: return x + y;
	case NEURON_BIN_SUB: return x - y;
	case NEURON_BIN_MUL: return x * y;
	case NEURON_BIN_DIV: return x / y;
	case NEURON_BIN_MAX: return x > y || x != x ? x : y;
	case NEURON_BIN_MIN: return x < y || x != x ? x : y;
	case NEURON_BIN_FMOD: return neuron_fmod(x, y);
	case NEURON_BIN_MOD:
		/* the divisor's sign, as Python's % */
		r = neuron_fmod(x, y);
		return r != 0 && (r < 0) != (y < 0) ? r + y : r;
	}
	return 0;
}

static double f64_unary(u32 sub, double x)
{
	switch (sub) {
	case NEURON_UN_RELU: return x > 0 ? x : 0;
	case NEURON_UN_EXP: return neuron_exp(x);
	case NEURON_UN_LOG: return neuron_log(x);
	case NEURON_UN_SQRT: return neuron_sqrt(x);
	case NEURON_UN_RSQRT: return 1.0 / neuron_sqrt(x);
	case NEURON_UN_NEG: return -x;
	case NEURON_UN_ABS: return x < 0 ? -x : (x == 0 ? 0.0 : x);
	case NEURON_UN_RECIPROCAL: return 1.0 / x;
	case NEURON_UN_FLOOR: return neuron_floor(x);
	case NEURON_UN_CEIL: return -neuron_floor(-x);
	case NEURON_UN_ROUND: return neuron_roundeven(x);
	}
	return 0;
}

static void f64_elementwise(const struct neuron_insn *in, const struct neuron_tensor_desc *o,
			    const struct neuron_tensor_desc *a, const struct neuron_tensor_desc *b,
			    const struct neuron_engine_slot *slots)
{
	const double *pa = slots[a->slot].base, *pb = b ? slots[b->slot].base : NULL;
	double *po = slots[o->slot].base;
	struct walk w;

	walk_init(&w, o);
	do {
		double x = pa[at(&w, a)];

		po[at(&w, o)] = b ? f64_binary(in->sub, x, pb[at(&w, b)]) : f64_unary(in->sub, x);
	} while (walk_next(&w));
}

/*
 * AND, OR and XOR of bool or of bytes, and NOT of bool, over one row, byte
 * by byte without the general load and store: a bool is 0 or 1 after
 * either. Returns 0 for every other op or type.
 */
static int bytewise_logic(const struct neuron_insn *in, const struct neuron_tensor_desc *o,
			  const struct neuron_tensor_desc *a, const struct neuron_tensor_desc *b,
			  const struct neuron_engine_slot *slots, u64 oo, u64 ao, u64 bo,
			  const u64 *step, u64 n)
{
	const u8 *pa = (const u8 *)slots[a->slot].base + ao, *pb;
	u8 *po = (u8 *)slots[o->slot].base + oo;
	int boolean = o->dtype == NEURON_DT_BOOL;
	u64 i;

	if (!boolean && o->dtype != NEURON_DT_U8 && o->dtype != NEURON_DT_I8)
		return 0;
	if (!b) {
		if (!boolean || in->sub != NEURON_UN_NOT)
			return 0;
		for (i = 0; i < n; i++)
			po[i * step[0]] = !pa[i * step[1]];
		return 1;
	}
	pb = (const u8 *)slots[b->slot].base + bo;
	switch (in->sub) {
	case NEURON_BIN_AND:
		for (i = 0; i < n; i++)
			po[i * step[0]] = boolean ? (pa[i * step[1]] != 0) & (pb[i * step[2]] != 0)
						  : pa[i * step[1]] & pb[i * step[2]];
		return 1;
	case NEURON_BIN_OR:
		for (i = 0; i < n; i++)
			po[i * step[0]] = boolean ? (pa[i * step[1]] != 0) | (pb[i * step[2]] != 0)
						  : pa[i * step[1]] | pb[i * step[2]];
		return 1;
	case NEURON_BIN_XOR:
		for (i = 0; i < n; i++)
			po[i * step[0]] = boolean ? (pa[i * step[1]] != 0) ^ (pb[i * step[2]] != 0)
						  : pa[i * step[1]] ^ pb[i * step[2]];
		return 1;
	}
	return 0;
}

/* BINARY and UNARY of integers, bool and float64: out, a and b of one dtype. */
void neuron_typed_elementwise(const struct neuron_insn *in, const struct neuron_tensor_desc *o,
			      const struct neuron_tensor_desc *a, const struct neuron_tensor_desc *b,
			      const struct neuron_engine_slot *slots)
{
	const struct neuron_tensor_desc *views[3] = { o, a, b };
	int sgn = dtype_signed(o->dtype);
	u32 bits = neuron_dtype_size(o->dtype) * 8;
	u64 n, step[3] = { 0 }, i;
	struct walk w;

	if (o->dtype == NEURON_DT_F64) {
		f64_elementwise(in, o, a, b, slots);
		return;
	}
	walk_rows(&w, views, b ? 3 : 2, &n, step);
	do {
		u64 oo = at(&w, o), ao = at(&w, a), bo = b ? at(&w, b) : 0;

		if (bytewise_logic(in, o, a, b, slots, oo, ao, bo, step, n))
			continue;
		for (i = 0; i < n; i++, oo += step[0], ao += step[1], bo += step[2]) {
			u64 x = load(slots[a->slot].base, a->dtype, ao).bits, r;

			if (b)
				r = int_binary(in->sub, sgn, bits,
					       x, load(slots[b->slot].base, b->dtype, bo).bits);
			else
				r = int_unary(in->sub, o->dtype, x);
			store_bits(slots[o->slot].base, o->dtype, oo, r);
		}
	} while (walk_next(&w));
}

/* -1, 0 or 1 as x is below, equal to or above y; 2 when unordered (NaN). */
static int compare(struct value x, struct value y)
{
	if (x.kind == FLOAT) {
		if (x.d != x.d || y.d != y.d)
			return 2;
		return x.d < y.d ? -1 : x.d > y.d;
	}
	if (x.kind == SIGNED)
		return (s64)x.bits < (s64)y.bits ? -1 : (s64)x.bits > (s64)y.bits;
	return x.bits < y.bits ? -1 : x.bits > y.bits;
}

static void op_compare(const struct neuron_insn *in, const struct neuron_tensor_desc *o,
		       const struct neuron_tensor_desc *a, const struct neuron_tensor_desc *b,
		       const struct neuron_engine_slot *slots)
{
	const struct neuron_tensor_desc *views[3] = { o, a, b };
	u64 n, step[3], i;
	struct walk w;

	walk_rows(&w, views, 3, &n, step);
	do {
		u64 oo = at(&w, o), ao = at(&w, a), bo = at(&w, b);

		for (i = 0; i < n; i++, oo += step[0], ao += step[1], bo += step[2]) {
			int c = compare(load(slots[a->slot].base, a->dtype, ao),
					load(slots[b->slot].base, b->dtype, bo));
			int r = 0;

			switch (in->sub) {
			case NEURON_CMP_EQ: r = c == 0; break;
			case NEURON_CMP_LT: r = c == -1; break;
			case NEURON_CMP_LE: r = c == -1 || c == 0; break;
			case NEURON_CMP_GT: r = c == 1; break;
			case NEURON_CMP_GE: r = c == 1 || c == 0; break;
			}
			((u8 *)slots[o->slot].base)[oo] = (u8)r;
		}
	} while (walk_next(&w));
}

static void op_select(const struct neuron_tensor_desc *o, const struct neuron_tensor_desc *c,
		      const struct neuron_tensor_desc *a, const struct neuron_tensor_desc *b,
		      const struct neuron_engine_slot *slots)
{
	const struct neuron_tensor_desc *views[4] = { o, c, a, b };
	u32 size = neuron_dtype_size(o->dtype), i;
	u64 n, step[4], e;
	struct walk w;

	walk_rows(&w, views, 4, &n, step);
	do {
		u64 oo = at(&w, o), co = at(&w, c), ao = at(&w, a), bo = at(&w, b);

		for (e = 0; e < n; e++, oo += step[0], co += step[1], ao += step[2], bo += step[3]) {
			int take_a = ((const u8 *)slots[c->slot].base)[co] != 0;
			const u8 *s = (const u8 *)slots[(take_a ? a : b)->slot].base +
				      (take_a ? ao : bo) * size;
			u8 *d = (u8 *)slots[o->slot].base + oo * size;

			for (i = 0; i < size; i++)
				d[i] = s[i];
		}
	} while (walk_next(&w));
}

/* SUM, MEAN, MAX, MIN and PROD of float64 (ISA 1.5), first to last, as f32's. */
static void f64_reduce(const struct neuron_insn *in, const struct neuron_tensor_desc *o,
		       const struct neuron_tensor_desc *a, const struct neuron_engine_slot *slots)
{
	u32 last = a->rank - 1, len = a->dims[last], j;
	const double *pa = slots[a->slot].base;
	double *po = slots[o->slot].base;
	struct walk w;

	walk_init(&w, a);
	w.dims[last] = 1;
	do {
		const double *row = pa + at(&w, a);
		double acc = row[0];

		for (j = 1; j < len; j++) {
			double x = row[j * a->strides[last]];

			switch (in->sub) {
			case NEURON_RED_SUM: case NEURON_RED_MEAN: acc = acc + x; break;
			case NEURON_RED_MAX: acc = x > acc || x != x ? x : acc; break;
			case NEURON_RED_MIN: acc = x < acc || x != x ? x : acc; break;
			case NEURON_RED_PROD: acc = acc * x; break;
			}
		}
		if (in->sub == NEURON_RED_MEAN)
			acc = acc / (double)len;
		po[at(&w, o)] = acc;
	} while (walk_next(&w));
}

/*
 * ARGMAX and ARGMIN over a's last axis into I64: the first index of the
 * extreme, or the last with NEURON_REDUCE_LAST_INDEX; a NaN is the
 * extreme (the first NaN, or the last). The others of float64.
 */
void neuron_typed_reduce(const struct neuron_insn *in, const struct neuron_tensor_desc *o,
			 const struct neuron_tensor_desc *a, const struct neuron_engine_slot *slots)
{
	u32 last = a->rank - 1, len = a->dims[last], j;
	int want_last = in->flags & NEURON_REDUCE_LAST_INDEX, max = in->sub == NEURON_RED_ARGMAX;
	struct walk w;

	if (in->sub != NEURON_RED_ARGMAX && in->sub != NEURON_RED_ARGMIN) {
		f64_reduce(in, o, a, slots);
		return;
	}
	walk_init(&w, a);
	w.dims[last] = 1;
	do {
		u64 row = at(&w, a);
		struct value best = load(slots[a->slot].base, a->dtype, row);
		s64 index = 0;

		for (j = 1; j < len; j++) {
			struct value x = load(slots[a->slot].base, a->dtype, row + j * a->strides[last]);
			int c = compare(x, best), take;

			if (best.kind == FLOAT && best.d != best.d)
				take = want_last && x.d != x.d;
			else if (c == 2)
				take = 1;	/* x is the first NaN */
			else
				take = (max ? c == 1 : c == -1) || (want_last && c == 0);
			if (take) {
				best = x;
				index = j;
			}
		}
		((s64 *)slots[o->slot].base)[at(&w, o)] = index;
	} while (walk_next(&w));
}

NEURON_EXEC(compare)
{
	(void)scratch;
	op_compare(in, &descs[in->operand[0]], &descs[in->operand[1]], &descs[in->operand[2]], slots);
	return NEURON_ISA_OK;
}

NEURON_EXEC(select)
{
	(void)in;
	(void)scratch;
	op_select(&descs[in->operand[0]], &descs[in->operand[1]], &descs[in->operand[2]],
		  &descs[in->operand[3]], slots);
	return NEURON_ISA_OK;
}

/*
 * MATMUL of int32 into int32 (ISA 1.5): products and sums wrap as two's
 * complement (the order does not matter: wrapping addition is exact).
 */
void neuron_typed_matmul(const struct neuron_tensor_desc *o, const struct neuron_tensor_desc *a,
			 const struct neuron_tensor_desc *b, const struct neuron_tensor_desc *bias,
			 const struct neuron_engine_slot *slots)
{
	const s32 *pa = slots[a->slot].base, *pb = slots[b->slot].base;
	const s32 *pbias = bias ? slots[bias->slot].base : NULL;
	s32 *po = slots[o->slot].base;
	u32 r = o->rank, batches = r == 3 ? o->dims[0] : 1, m, n, k, i;
	u32 rows = o->dims[r - 2], cols = o->dims[r - 1], inner = a->dims[r - 1];

	for (i = 0; i < batches; i++) {
		u64 ao = a->offset + (r == 3 ? (u64)i * a->strides[0] : 0);
		u64 bo = b->offset + (r == 3 ? (u64)i * b->strides[0] : 0);
		u64 oo = o->offset + (r == 3 ? (u64)i * o->strides[0] : 0);

		for (m = 0; m < rows; m++) {
			for (n = 0; n < cols; n++) {
				u32 acc = pbias ? (u32)pbias[bias->offset + n * bias->strides[0]] : 0;

				for (k = 0; k < inner; k++)
					acc += (u32)pa[ao + m * a->strides[r - 2] + k * a->strides[r - 1]] *
					       (u32)pb[bo + k * b->strides[r - 2] + n * b->strides[r - 1]];
				po[oo + m * o->strides[r - 2] + n * o->strides[r - 1]] = (s32)acc;
			}
		}
	}
}

/*
 * SCATTER (ISA 1.5): each update in order onto out[index] (negative counts
 * from the end): set, or combined as float32 (in float), float64, half
 * precision (in float, rounded once) or integers (wrapping) compute. An
 * index outside out is a fault; the updates before it have landed.
 */
u32 neuron_typed_scatter(const struct neuron_insn *in, const struct neuron_tensor_desc *o,
			 const struct neuron_tensor_desc *ix, const struct neuron_tensor_desc *u,
			 const struct neuron_engine_slot *slots)
{
	u32 size = neuron_dtype_size(o->dtype), n = ix->dims[0], i, byte;
	s64 length = o->dims[0];
	u8 *out = slots[o->slot].base;
	const u8 *src = slots[u->slot].base;
	static const u32 as_binary[NEURON_SCATTER_COUNT] = {
		[NEURON_SCATTER_ADD] = NEURON_BIN_ADD, [NEURON_SCATTER_MUL] = NEURON_BIN_MUL,
		[NEURON_SCATTER_MAX] = NEURON_BIN_MAX, [NEURON_SCATTER_MIN] = NEURON_BIN_MIN,
	};

	for (i = 0; i < n; i++) {
		s64 idx = neuron_typed_index(slots[ix->slot].base, ix->dtype,
					     ix->offset + (u64)i * ix->strides[0]);
		u64 to, from = u->offset + (u64)i * u->strides[0];

		if (idx < 0)
			idx += length;
		if (idx < 0 || idx >= length)
			return NEURON_ISA_FAULT_INDEX;
		to = o->offset + (u64)idx * o->strides[0];
		if (in->sub == NEURON_SCATTER_SET) {
			for (byte = 0; byte < size; byte++)
				out[to * size + byte] = src[from * size + byte];
			continue;
		}
		if (o->dtype == NEURON_DT_F32) {
			float x = ((float *)out)[to], y = ((const float *)src)[from];
			float r = in->sub == NEURON_SCATTER_ADD ? x + y :
				  in->sub == NEURON_SCATTER_MUL ? x * y :
				  in->sub == NEURON_SCATTER_MAX ? (x > y || x != x ? x : y) :
								  (x < y || x != x ? x : y);

			((float *)out)[to] = r;
		} else if (o->dtype == NEURON_DT_F64) {
			((double *)out)[to] = f64_binary(as_binary[in->sub], ((double *)out)[to],
							 ((const double *)src)[from]);
		} else if (o->dtype == NEURON_DT_F16 || o->dtype == NEURON_DT_BF16) {
			struct value x = load(out, o->dtype, to), y = load(src, o->dtype, from);
			float a = (float)x.d, b = (float)y.d;

			x.d = in->sub == NEURON_SCATTER_ADD ? a + b : in->sub == NEURON_SCATTER_MUL ? a * b :
			      in->sub == NEURON_SCATTER_MAX ? (a > b || a != a ? a : b) : (a < b || a != a ? a : b);
			store(out, o->dtype, to, x, 0);
		} else {
			u64 x = load(out, o->dtype, to).bits, y = load(src, o->dtype, from).bits;

			store_bits(out, o->dtype, to,
				   int_binary(as_binary[in->sub], dtype_signed(o->dtype), size * 8, x, y));
		}
	}
	return 0;
}

/* One row of a TOPK: its elements, and where the heap of indices lives. */
struct topk_row {
	const void *base;
	u32 dtype;
	int smallest;
	u64 at, stride;		/* a's row */
	s64 *out;
	u64 os;			/* out's row */
	u32 n;
};

/* Does element @i come before element @j in the row's order? */
static int topk_before(const struct topk_row *r, u64 i, u64 j)
{
	struct value x = load(r->base, r->dtype, r->at + i * r->stride);
	struct value y = load(r->base, r->dtype, r->at + j * r->stride);
	int c = compare(x, y);

	if (c == 2) {
		if (x.d != x.d && y.d != y.d)
			return i < j;
		return x.d != x.d;	/* a NaN comes first */
	}
	if (c == 0)
		return i < j;
	return r->smallest ? c < 0 : c > 0;
}

/*
 * Heap slot @i: an index of the row, read back from the output, where only
 * this instruction wrote it (kept inside the row all the same).
 */
static u64 topk_slot(const struct topk_row *r, u64 i)
{
	u64 v = (u64)r->out[i * r->os];

	return v < r->n ? v : 0;
}

/* Sift slot @i down a heap of @size slots whose root comes last in order. */
static void topk_sift(const struct topk_row *r, u64 i, u64 size)
{
	for (;;) {
		u64 worst = i, child = 2 * i + 1, c;
		s64 swap;

		for (c = child; c < size && c <= child + 1; c++)
			if (topk_before(r, topk_slot(r, worst), topk_slot(r, c)))
				worst = c;
		if (worst == i)
			return;
		swap = r->out[worst * r->os];
		r->out[worst * r->os] = r->out[i * r->os];
		r->out[i * r->os] = swap;
		i = worst;
	}
}

/*
 * Elements k.. of the row into the heap: one that ranks before the root
 * replaces it. Its index is past every index in the heap, so it ranks
 * before the root only by value (a NaN before a number); the root's value
 * is kept at hand between replacements.
 */
static void topk_scan(struct topk_row *r, u32 k)
{
	u64 j;

	if (r->dtype == NEURON_DT_F32) {
		const float *p = (const float *)r->base + r->at;
		float root = p[topk_slot(r, 0) * r->stride];

		for (j = k; j < r->n; j++) {
			float x = p[j * r->stride];

			if (x != x ? root != root : r->smallest ? !(x < root) : !(x > root))
				continue;
			r->out[0] = j;
			topk_sift(r, 0, k);
			root = p[topk_slot(r, 0) * r->stride];
		}
		return;
	}
	for (j = k; j < r->n; j++) {
		if (!topk_before(r, j, topk_slot(r, 0)))
			continue;
		r->out[0] = j;
		topk_sift(r, 0, k);
	}
}

/*
 * TOPK (ISA 1.7): per row of a (its last axis), the indices of its first
 * k elements in the sub-op's order, first to last: a heap of k indices
 * kept in the output row (its root the one that ranks last) takes each
 * element that ranks before the root, then is sorted in place.
 */
NEURON_EXEC(topk)
{
	const struct neuron_tensor_desc *o = &descs[in->operand[0]], *a = &descs[in->operand[1]];
	u32 last = a->rank - 1, k = o->dims[last], i;
	struct topk_row r = {
		.base = slots[a->slot].base, .dtype = a->dtype,
		.smallest = in->sub == NEURON_TOPK_SMALLEST, .stride = a->strides[last],
		.os = o->strides[last], .n = a->dims[last],
	};
	struct walk w;

	(void)scratch;
	walk_init(&w, a);
	w.dims[last] = 1;
	do {
		r.at = at(&w, a);
		r.out = (s64 *)slots[o->slot].base + at(&w, o);
		for (i = 0; i < k; i++)
			r.out[i * r.os] = i;
		for (i = k / 2; i-- > 0;)
			topk_sift(&r, i, k);
		topk_scan(&r, k);
		for (i = k; i-- > 1;) {
			s64 root = r.out[0];

			r.out[0] = r.out[i * r.os];
			r.out[i * r.os] = root;
			topk_sift(&r, 0, i);
		}
	} while (walk_next(&w));
	return NEURON_ISA_OK;
}
