/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * neuron_isa.h - the NeuronCore instruction set, version 1.
 *
 * Part of the neuron uapi: programs are built in userspace and checked and
 * run by the engine (driver/engine), in the kernel for fake devices and in
 * the Swift simulator. See docs/isa.md.
 *
 * A program is one contiguous little-endian image:
 *
 *   struct neuron_program_header
 *   struct neuron_tensor_desc   descs[header.desc_count]
 *   struct neuron_insn          insns[header.insn_count]
 *
 * Instructions name tensors by index into the descriptor table; a
 * descriptor names a buffer slot bound to the job (never an address), an
 * element offset, a shape and element strides. Every range is checked
 * against the bound buffers before anything runs.
 */
#ifndef _UAPI_NEURON_ISA_H
#define _UAPI_NEURON_ISA_H

#include <linux/types.h>

#define NEURON_ISA_MAGIC	0x4153494eu	/* "NISA" */
#define NEURON_ISA_VERSION	1

#define NEURON_MAX_RANK		6
#define NEURON_MAX_SLOTS	16
#define NEURON_MAX_DESCS	4096
#define NEURON_MAX_INSNS	65536
/* Semaphores and barriers each file has for its NeuronCores (ISA 1.1). */
#define NEURON_MAX_SEMAPHORES	32
#define NEURON_MAX_BARRIERS	8
#define NEURON_MAX_SEM_COUNT	65535
/*
 * Most work one slice of an instruction may take (see docs/isa.md,
 * Slices): multiply-adds of MATMUL, CONV2D and POOL2D, 64 for each
 * element operation of the others. A larger one is refused
 * (NEURON_ISA_E_OPERAND), so that a queue can always stop a job, and a
 * CPU never runs one slice without preemption for long. (It was 2^35
 * operations of any kind, which let one slice run for tens of seconds.)
 */
#define NEURON_MAX_SLICE_WORK	(1ULL << 30)
/* Core mask naming NeuronCores 0-7, the most a BARRIER can join. */
#define NEURON_BARRIER_ALL_CORES	0xffu

/**
 * struct neuron_program_header - first bytes of a program
 * @magic:      NEURON_ISA_MAGIC
 * @version:    NEURON_ISA_VERSION
 * @flags:      must be 0
 * @desc_count: entries in the descriptor table, 0..NEURON_MAX_DESCS
 * @insn_count: instructions, 1..NEURON_MAX_INSNS
 * @reserved:   must be 0
 */
struct neuron_program_header {
	__u32 magic;
	__u16 version;
	__u16 flags;
	__u32 desc_count;
	__u32 insn_count;
	__u64 reserved[2];
};

enum neuron_dtype {
	NEURON_DT_F32 = 1,
	NEURON_DT_BF16 = 2,
	NEURON_DT_I32 = 3,
	NEURON_DT_I64 = 4,
	/*
	 * ISA 1.4: moved by FILL, COPY, CAST, GATHER and SELECT; integers
	 * and bool computed by BINARY, UNARY and COMPARE (docs/isa.md).
	 * A BOOL element is one byte: 0 is false, anything else true.
	 */
	NEURON_DT_F16 = 5,
	NEURON_DT_F64 = 6,
	NEURON_DT_I8 = 7,
	NEURON_DT_U8 = 8,
	NEURON_DT_I16 = 9,
	NEURON_DT_U16 = 10,
	NEURON_DT_U32 = 11,
	NEURON_DT_U64 = 12,
	NEURON_DT_BOOL = 13,
	/*
	 * ISA 1.6 (driver API 1.7): storage types, one byte per element,
	 * moved by FILL, COPY, CAST, GATHER, SELECT and SCATTER's SET and
	 * computed by nothing else (CAST them to a type that computes).
	 * The float8 formats of OCP and ONNX (FN: no infinity, one NaN per
	 * sign; FNUZ: no infinity, no -0, NaN is 0x80; E8M0: a power of two
	 * 2^(e-127), 0xff is NaN); FLOAT4 E2M1 in the low four bits (no
	 * infinity or NaN); the signed and unsigned integers of four and two
	 * bits in the byte's low bits (a signed one stored sign-extended).
	 */
	NEURON_DT_F8E4M3FN = 14,
	NEURON_DT_F8E4M3FNUZ = 15,
	NEURON_DT_F8E5M2 = 16,
	NEURON_DT_F8E5M2FNUZ = 17,
	NEURON_DT_F8E8M0 = 18,
	NEURON_DT_F4E2M1 = 19,
	NEURON_DT_I4 = 20,
	NEURON_DT_U4 = 21,
	NEURON_DT_I2 = 22,
	NEURON_DT_U2 = 23,
	NEURON_DT_COUNT
};

/**
 * struct neuron_tensor_desc - a strided view into a bound buffer
 * @slot:    buffer slot of the job, 0..NEURON_MAX_SLOTS-1
 * @dtype:   enum neuron_dtype
 * @rank:    dimensions used, 0..NEURON_MAX_RANK (0: a scalar)
 * @pad:     must be 0
 * @offset:  offset of element [0,...,0] in the buffer, in elements
 * @dims:    extent of each used dimension, >= 1; unused ones must be 0
 * @strides: distance in elements between neighbours along each used
 *           dimension (0 broadcasts); unused ones must be 0
 */
struct neuron_tensor_desc {
	__u16 slot;
	__u8 dtype;
	__u8 rank;
	__u32 pad;
	__u64 offset;
	__u32 dims[NEURON_MAX_RANK];
	__u64 strides[NEURON_MAX_RANK];
};

enum neuron_opcode {
	NEURON_OP_NOP = 0,
	NEURON_OP_FILL = 1,		/* out[...] = value; a[0]=out */
	NEURON_OP_COPY = 2,		/* out = a (strided copy, transpose) */
	NEURON_OP_BINARY = 3,		/* out = a <sub> b, broadcast by strides */
	NEURON_OP_UNARY = 4,		/* out = <sub>(a) */
	NEURON_OP_MATMUL = 5,		/* out[b,m,n] = sum_k a[b,m,k] * b[b,k,n] (+ bias[n]) */
	NEURON_OP_REDUCE = 6,		/* out = <sub> of a over its last axis */
	NEURON_OP_SOFTMAX = 7,		/* out = softmax of a over its last axis */
	NEURON_OP_CAST = 8,		/* out = a converted to out's dtype */
	NEURON_OP_GATHER = 9,		/* out[i..., :] = a[b[i...], :] (embedding lookup) */
	NEURON_OP_LAYERNORM = 10,	/* out = (a - mean) / sqrt(var + eps) * b + c, last axis */
	NEURON_OP_CONV2D = 11,		/* out[N,Co,Ho,Wo] = a[N,Ci,H,W] conv b[Co,Ci/g,Kh,Kw] (+ c[Co]) */
	NEURON_OP_POOL2D = 12,		/* out[N,C,Ho,Wo] = <sub> pool of a[N,C,H,W] */
	/* Synchronisation between the NeuronCores a file holds (ISA 1.1). */
	NEURON_OP_SEM_SIGNAL = 13,	/* semaphore[iparam[0]] += iparam[1] */
	NEURON_OP_SEM_WAIT = 14,	/* wait for semaphore[iparam[0]] >= iparam[1], subtract it */
	NEURON_OP_BARRIER = 15,		/* wait until every core of mask iparam[1] reached barrier iparam[0] */
	/* Element types beyond f32 (ISA 1.4). */
	NEURON_OP_COMPARE = 16,		/* out (bool) = a <sub> b */
	NEURON_OP_SELECT = 17,		/* out = a[0] ? a[1] : a[2], a[0] bool */
	/* ISA 1.5 (driver API 1.6) */
	NEURON_OP_SCATTER = 18,		/* out[a[i]] <sub>= b[i], i in order */
	/* ISA 1.7 (driver API 1.9) */
	NEURON_OP_TOPK = 19,		/* out (I64) = indices of a's k first in <sub> order, last axis */
	NEURON_OP_COUNT
};

/* ISA 1.4: integer operands, and MOD to SHR (integers and bool only). */
enum neuron_binary_op {
	NEURON_BIN_ADD, NEURON_BIN_SUB, NEURON_BIN_MUL, NEURON_BIN_DIV,
	NEURON_BIN_MAX, NEURON_BIN_MIN, NEURON_BIN_POW,
	NEURON_BIN_MOD, NEURON_BIN_FMOD, NEURON_BIN_AND, NEURON_BIN_OR, NEURON_BIN_XOR,
	NEURON_BIN_SHL, NEURON_BIN_SHR, NEURON_BIN_COUNT
};

/* ISA 1.4: NEG, ABS and NOT of integers, NOT of bool; FLOOR, CEIL, ROUND. */
enum neuron_unary_op {
	NEURON_UN_RELU, NEURON_UN_LEAKY_RELU, NEURON_UN_GELU_ERF, NEURON_UN_GELU_TANH,
	NEURON_UN_SIGMOID, NEURON_UN_TANH, NEURON_UN_EXP, NEURON_UN_LOG,
	NEURON_UN_SQRT, NEURON_UN_RSQRT, NEURON_UN_ERF, NEURON_UN_NEG,
	NEURON_UN_ABS, NEURON_UN_RECIPROCAL,
	NEURON_UN_NOT, NEURON_UN_FLOOR, NEURON_UN_CEIL, NEURON_UN_ROUND,
	/* ISA 1.5 (driver API 1.6) */
	NEURON_UN_SIN, NEURON_UN_COS, NEURON_UN_TAN, NEURON_UN_ASIN, NEURON_UN_ACOS,
	NEURON_UN_ATAN, NEURON_UN_SINH, NEURON_UN_COSH, NEURON_UN_ASINH, NEURON_UN_ACOSH,
	NEURON_UN_ATANH,
	/* ISA 1.7 (driver API 1.9): x * SIGMOID(x), the product rounded once */
	NEURON_UN_SILU,
	NEURON_UN_COUNT
};

/* ISA 1.4: PROD, and ARGMAX and ARGMIN into an I64 output. */
enum neuron_reduce_op {
	NEURON_RED_SUM, NEURON_RED_MEAN, NEURON_RED_MAX, NEURON_RED_MIN,
	NEURON_RED_PROD, NEURON_RED_ARGMAX, NEURON_RED_ARGMIN, NEURON_RED_COUNT
};

/* NEURON_OP_COMPARE (ISA 1.4): a and b of one dtype; NaN compares false. */
enum neuron_compare_op {
	NEURON_CMP_EQ, NEURON_CMP_LT, NEURON_CMP_LE, NEURON_CMP_GT, NEURON_CMP_GE, NEURON_CMP_COUNT
};

/* NEURON_OP_SCATTER (ISA 1.5): how an update meets the element it lands on. */
enum neuron_scatter_op {
	NEURON_SCATTER_SET, NEURON_SCATTER_ADD, NEURON_SCATTER_MUL, NEURON_SCATTER_MAX,
	NEURON_SCATTER_MIN, NEURON_SCATTER_COUNT
};

/*
 * NEURON_OP_TOPK (ISA 1.7): the order it ranks a row's elements in. A NaN
 * comes before every number in both; equal elements (and NaNs) by index.
 */
enum neuron_topk_op {
	NEURON_TOPK_LARGEST, NEURON_TOPK_SMALLEST, NEURON_TOPK_COUNT
};

enum neuron_pool_op {
	NEURON_POOL_MAX, NEURON_POOL_AVG, NEURON_POOL_COUNT
};

/* NEURON_OP_MATMUL and NEURON_OP_CONV2D flags. */
#define NEURON_MATMUL_BIAS	0x1	/* operand[3] is a bias over n */
/*
 * MATMUL in bfloat16 pairs (ISA 1.9, driver API 1.11): a and b each f32
 * or bf16, out (and bias) f32. An f32 operand is rounded to bf16 as it is
 * read (nearest even; a denormal f32 in, or a result below bf16's normal
 * range, is a zero of its sign). k runs in pairs, K padded with one zero
 * element when odd: acc = +0, then for each pair p
 * acc = fma(a[2p+1], b[2p+1], acc) and acc = fma(a[2p], b[2p], acc), with
 * denormal inputs and every denormal result (tiny after rounding) taken
 * as a zero of its sign; the bias is added last, as IEEE. This is what
 * AVX512_BF16's VDPBF16PS computes; other CPUs emulate it exactly
 * (docs/isa.md).
 */
#define NEURON_MATMUL_BF16_PAIRS	0x2
/*
 * MATMUL with b in panels (ISA 1.11, driver API 1.13): b is a float32
 * [ceil(N / 32), K, 32] tensor, element (k, n) of the product's B at
 * b[n / 32][k][n % 32]: the columns in panels of NEURON_MATMUL_PANEL, one
 * panel's rows after another, the last panel's lanes past N never read.
 * One b serves every batch. out, a and b are float32; not with
 * BF16_PAIRS. The product is MATMUL's (the same chains, the same bits);
 * a compiler lays constant weights out so, and the engine then reads
 * each panel's rows in order instead of across rows of B.
 *
 * With BF16_PAIRS (ISA 1.14, driver API 1.16) b is instead a bfloat16
 * [ceil(N / 32), ceil(K / 2), 64] tensor of pairs: element (k, n) at
 * b[n / 32][k / 2][2 * (n % 32) + k % 2], each pair's two elements side
 * by side (the 32-bit words that VDPBF16PS and AMX read), one panel's
 * pairs after another. The lanes past N and, when K is odd, the last
 * pair's second elements are never read (the definition's zero). out
 * float32, a float32 or bfloat16; the product is the pairs' (the same
 * bits as b in rows).
 */
#define NEURON_MATMUL_B_PANELS	0x4
#define NEURON_MATMUL_PANEL	32
/*
 * MATMUL with relu and an upper bound (ISA 1.13, driver API 1.15), as
 * CONV2D's NEURON_CONV_RELU and NEURON_CONV_CLAMP: after the bias, RELU
 * makes each output v that is not > 0 a +0 unless it is NaN; then CLAMP
 * makes it fparam[0] unless v < fparam[0] or v is NaN (BINARY MIN's
 * bits). The bound must not be NaN; without CLAMP fparam[0] must be 0.
 * float32 outputs only.
 */
#define NEURON_MATMUL_RELU	0x8
#define NEURON_MATMUL_CLAMP	0x10
#define NEURON_CONV_BIAS	0x1	/* operand[3] is a bias over Co */
#define NEURON_CONV_RELU	0x2	/* relu after the bias */
/*
 * CONV2D, one group only (ISA 1.2): w is in the blocked layout
 * [ceil(Co/6), Ci, Kh, Kw, 6], contiguous: output channel co is
 * w[co / 6][ci][kh][kw][co % 6] (the lanes past Co are never read into an
 * output), and a tap in the padding multiplies a zero instead of being
 * skipped. The engine then reads the weights as they are.
 */
#define NEURON_CONV_PACKED	0x4
#define NEURON_CONV_PACK_ROWS	6
/*
 * CONV2D with NEURON_CONV_PACKED or NEURON_CONV_WINOGRAD (ISA 1.2): the
 * output's value is added in (a residual, in place) before the bias and
 * relu: packed sums start from it instead of zero.
 */
#define NEURON_CONV_ACCUMULATE	0x8
/*
 * CONV2D, 3x3 of stride 1 and dilation 1, one group (ISA 1.2): Winograd's
 * F(2x2, 3x3) over w = U, the weights transformed G g G^T and laid out
 * [16, ceil(Co/6), Ci, 6], contiguous; or (ISA 1.3) F(4x4, 3x3) over U
 * laid out [36, ceil(Co/6), Ci, 6] (docs/isa.md gives every step). Not
 * with NEURON_CONV_PACKED; NEURON_CONV_ACCUMULATE adds the output to each
 * result.
 */
#define NEURON_CONV_WINOGRAD	0x10
/*
 * CONV2D in bfloat16 pairs (ISA 1.10, driver API 1.12): x and w each f32
 * or bf16, w as given ([Co, Ci/g, Kh, Kw]); out and bias f32. Each output
 * is MATMUL in bf16 pairs (NEURON_MATMUL_BF16_PAIRS) of its weights,
 * flattened in order (input channel, kernel row, kernel column), by its
 * window of the input in the same order, a tap in the padding being a
 * zero; then, as IEEE, the output's value is added (with
 * NEURON_CONV_ACCUMULATE), the bias added and relu applied. Not with
 * NEURON_CONV_PACKED or NEURON_CONV_WINOGRAD.
 */
#define NEURON_CONV_BF16_PAIRS	0x20
/*
 * CONV2D with an upper bound (ISA 1.12, driver API 1.14): after the bias
 * and relu, each output v becomes fparam[0] unless v < fparam[0] or v is
 * NaN, as BINARY MIN(v, fparam[0]) (ReLU6 with NEURON_CONV_RELU and a
 * bound of 6). The bound must not be NaN; without the flag fparam[0] is 0.
 */
#define NEURON_CONV_CLAMP	0x40
/*
 * NEURON_OP_SOFTMAX and NEURON_OP_LAYERNORM flag (ISA 1.8, driver API
 * 1.10): every sum over a row runs in NEURON_ROW_SUM_WIDTH lanes instead
 * of first to last. Element j is added to partial j mod 16, each partial
 * in order from +0; then partial l takes partial l + 8 (l < 8), then
 * l + 4, l + 2 and l + 1, in that order; the sum is partial 0. Vectors of
 * 16 hold the partials in one register, of 8 in two, so that no width
 * waits on one chain of additions.
 */
#define NEURON_ROW_SUM_LANES	0x1
#define NEURON_ROW_SUM_WIDTH	16
/* NEURON_OP_POOL2D flags. */
#define NEURON_POOL_COUNT_PAD	0x1	/* AVG divides by the whole window */
/* NEURON_OP_REDUCE flags (ISA 1.4). */
#define NEURON_REDUCE_LAST_INDEX	0x1	/* ARGMAX, ARGMIN: the last of equal extremes */
/* NEURON_OP_CAST flags (ISA 1.4). */
#define NEURON_CAST_WRAP	0x1	/* integer to integer keeps the low bits instead of saturating */
/*
 * ISA 1.6: into a float8 type, a value beyond its largest finite one
 * becomes infinity (E5M2) or NaN instead of that largest value (the
 * default, as ONNX's saturate=1).
 */
#define NEURON_CAST_NO_SATURATE	0x2
/*
 * ISA 1.6: into F8E8M0, round up or down to a power of two instead of
 * to the nearest one; not both.
 */
#define NEURON_CAST_E8M0_UP	0x4
#define NEURON_CAST_E8M0_DOWN	0x8

/* iparam of NEURON_OP_CONV2D and NEURON_OP_POOL2D. */
enum neuron_window_param {
	NEURON_WIN_STRIDE_H, NEURON_WIN_STRIDE_W,
	NEURON_WIN_PAD_TOP, NEURON_WIN_PAD_LEFT, NEURON_WIN_PAD_BOTTOM, NEURON_WIN_PAD_RIGHT,
	NEURON_WIN_DILATION_H, NEURON_WIN_DILATION_W,	/* CONV2D */
	NEURON_WIN_KERNEL_H = 6, NEURON_WIN_KERNEL_W = 7,	/* POOL2D */
};

/**
 * struct neuron_insn - one instruction (64 bytes)
 * @opcode:  enum neuron_opcode
 * @sub:     the operation within the opcode (enum neuron_binary_op, ...)
 * @flags:   opcode-specific flags; unknown bits must be 0
 * @pad:     must be 0
 * @operand: descriptor indices; operand[0] is the output; unused ones 0
 * @fparam:  float parameters (FILL value, LEAKY_RELU slope, LAYERNORM
 *           epsilon); unused ones 0
 * @iparam:  integer parameters (CONV2D and POOL2D windows, enum
 *           neuron_window_param; semaphore and barrier numbers, counts
 *           and core masks); unused ones 0
 */
struct neuron_insn {
	__u8 opcode;
	__u8 sub;
	__u16 flags;
	__u32 pad;
	__u32 operand[4];
	float fparam[2];
	__u32 iparam[8];
};

/* Validation results: 0, or where and why a program is refused. */
enum neuron_isa_error {
	NEURON_ISA_OK = 0,
	NEURON_ISA_E_HEADER,		/* magic, version, flags, counts, size */
	NEURON_ISA_E_DESC,		/* a descriptor's fields */
	NEURON_ISA_E_RANGE,		/* a descriptor reaches past its buffer */
	NEURON_ISA_E_SLOT,		/* a descriptor names an unbound slot */
	NEURON_ISA_E_OPCODE,		/* unknown opcode, sub-op or flags */
	NEURON_ISA_E_OPERAND,		/* operand index, dtype or shape */
	NEURON_ISA_E_PARAM,		/* fparam or iparam */
	/* Faults found while running (data-dependent). */
	NEURON_ISA_FAULT_INDEX = 64,	/* a GATHER or SCATTER index outside its tensor */
};

#endif /* _UAPI_NEURON_ISA_H */
