/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The NeuronCore engine: checks and runs ISA v1 programs
 * (uapi/neuron_isa.h) over the buffers bound to a job. Freestanding C,
 * built into neuron.ko and into the Swift simulator from this one tree.
 *
 * The caller binds buffers to slots, validates the program once, then
 * runs it instruction by instruction, so that a kernel caller can bound
 * each FPU section and reschedule between instructions.
 */
#ifndef NEURON_ENGINE_H
#define NEURON_ENGINE_H

#include "neuron_engine_port.h"
#include "../../include/uapi/neuron_isa.h"

/* A buffer bound to a slot: host-addressable bytes. */
struct neuron_engine_slot {
	void *base;
	u64 size;		/* bytes; 0 when the slot is unbound */
};

/* Why and where validation failed. */
struct neuron_engine_status {
	u32 error;		/* enum neuron_isa_error */
	u32 index;		/* the descriptor or instruction at fault */
};

/* A validated program: pointers into the caller's image. */
struct neuron_engine_program {
	const struct neuron_tensor_desc *descs;
	const struct neuron_insn *insns;
	u32 desc_count;
	u32 insn_count;
	/*
	 * How much work one part of a sliced instruction may take
	 * (engine_split.c); 0, as validation leaves it, for the engine's
	 * own. Tests set a small one to slice small instructions finely.
	 */
	u64 part_work;
};

/*
 * What an instruction is, in one place (engine_insn.c holds one row per
 * opcode): the validator, the cost, the splitter, the step and the job
 * runner read it, and the Swift side takes names and kinds from it.
 */
enum neuron_insn_kind {
	NEURON_INSN_NOP,	/* does nothing */
	NEURON_INSN_COMPUTE,	/* runs in FPU sections, may be sliced */
	NEURON_INSN_SYNC,	/* the job runner's: semaphores and barriers */
};

/* How an instruction's work is counted (neuron_engine_insn_cost). */
enum neuron_insn_cost {
	NEURON_COST_UNIT,	/* 1 */
	NEURON_COST_OUTPUT,	/* an operation per output element */
	NEURON_COST_ROWS,	/* three passes over the input's elements */
	NEURON_COST_MATMUL,	/* M * N * K multiply-adds */
	NEURON_COST_CONV,	/* multiply-adds of the direct, packed or Winograd form */
	NEURON_COST_POOL,	/* a window's elements per output */
	NEURON_COST_TOPK,	/* the input's elements, times 2 + log2(k) */
};

/* How an instruction is cut into parts (engine_split.c). */
enum neuron_insn_split {
	NEURON_SPLIT_NONE,	/* one part */
	NEURON_SPLIT_ELEMENTS,	/* along any axis of the output */
	NEURON_SPLIT_ROWS,	/* along any axis but the last */
	NEURON_SPLIT_MATMUL,	/* batches, rows and column panels */
	NEURON_SPLIT_WINDOW,	/* CONV2D and POOL2D: batches, channels, output rows */
};

struct neuron_insn_info {
	const char *name;		/* as docs/isa.md writes it: "MATMUL" */
	const char *const *sub_names;	/* the sub-operations' names, or NULL */
	u8 kind;			/* enum neuron_insn_kind */
	u8 operands;			/* always used; operand[0] is the output */
	u8 subs;			/* sub < subs; 0: sub must be 0 */
	u8 fparams;			/* fparam[0..fparams) used, the rest 0 */
	u8 iparams;			/* iparam[0..iparams) used, the rest 0 */
	u8 cost;			/* enum neuron_insn_cost */
	/*
	 * Element operations one unit of cost stands for against
	 * NEURON_MAX_SLICE_WORK: 1 for multiply-adds of the vector kernels,
	 * 64 for a memory-bound or transcendental element operation.
	 */
	u8 slice_weight;
	u8 split;			/* enum neuron_insn_split */
	u8 split_operands;		/* bit i: operand i is cut along with the output */
	u16 flags;			/* every flag it knows */
	u16 bias_flag;			/* the flag that makes operand[3] a bias */
	/* Operand dtypes and shapes, sub-operation and parameters (validation). */
	u32 (*check)(const struct neuron_insn *in, const struct neuron_tensor_desc *descs);
	/* Run it over validated operands (FPU section); 0 or a fault. */
	u32 (*exec)(const struct neuron_insn *in, const struct neuron_tensor_desc *descs,
		    const struct neuron_engine_slot *slots, const struct neuron_engine_slot *scratch);
};

/* The row of @opcode, or NULL when it is not an opcode. */
const struct neuron_insn_info *neuron_engine_insn_info(u32 opcode);

/* Is @in a semaphore or barrier instruction, which the job runner runs? */
int neuron_engine_insn_is_sync(const struct neuron_insn *in);

/* Operands @in uses: its row's, plus the bias when its flag is set. */
u32 neuron_engine_insn_operands(const struct neuron_insn *in);

/*
 * Check @image (@size bytes) against @slots. Fills @prog and returns 0,
 * or returns -1 with @status saying what and where. Never reads outside
 * @image, never touches the slots' memory.
 */
int neuron_engine_validate(const void *image, u64 size,
			   const struct neuron_engine_slot *slots, u32 slot_count,
			   struct neuron_engine_program *prog,
			   struct neuron_engine_status *status);

/*
 * Scratch memory a NeuronCore lends the engine (packed panels): at least
 * this many bytes, 64-byte aligned, or none (slower, same results).
 */
/* Scratch of a NeuronCore: at least 256 x 256 of B and 256 x 16 of A for
 * the matmul, and 16 x 1024 x 16 of Winograd's V. */
#define NEURON_GEMM_SCRATCH	1081344

/*
 * Run instruction @index of a validated program, with @scratch (may be
 * NULL) as working memory. Touches only the bound
 * slots' memory, within the ranges validation checked. In the kernel,
 * call between kernel_fpu_begin() and kernel_fpu_end(). Returns 0, or a
 * data-dependent fault (NEURON_ISA_FAULT_*); the instruction then still
 * completes, with zeros where the fault was.
 */
u32 neuron_engine_step(const struct neuron_engine_program *prog, u32 index,
		       const struct neuron_engine_slot *slots,
		       const struct neuron_engine_slot *scratch);

/*
 * Work of instruction @index of a validated program, in element
 * operations (a MATMUL costs M*N*K): for scheduling, bounded sections
 * and refusing work over a budget. Saturates at U64_MAX.
 */
u64 neuron_engine_insn_cost(const struct neuron_engine_program *prog, u32 index);

/*
 * Running an instruction in slices (engine_split.c): it has
 * neuron_engine_insn_parts() parts of about equal work; running parts
 * [@first, @first + @count) of every part in any grouping gives the same
 * bits as neuron_engine_step(). Returns as neuron_engine_step() does.
 */
u32 neuron_engine_insn_parts(const struct neuron_engine_program *prog, u32 index);
/* The work of the largest of those parts (U64_MAX: too many parts). */
u64 neuron_engine_part_cost(const struct neuron_engine_program *prog, u32 index);
u32 neuron_engine_step_part(const struct neuron_engine_program *prog, u32 index,
			    const struct neuron_engine_slot *slots,
			    const struct neuron_engine_slot *scratch, u32 first, u32 count);

/*
 * The job runner (engine_run.c), the one loop the driver's core threads
 * and the simulator's run a validated job with: compute instructions in
 * sections of bounded work (whole small instructions, or parts of a large
 * one), a check for an abort and for the deadline after each section, and
 * the semaphores and barriers of the job's file. What differs between the
 * two is only what the host table below supplies.
 *
 * The section budget: the work one section may run, in units of
 * neuron_engine_insn_cost(). The driver's sections run with preemption
 * off (kernel_fpu_begin), so they stay near a millisecond of native work;
 * a userspace thread is preemptible, and its sections only bound how soon
 * an abort or the timeout is noticed (a few milliseconds), while larger
 * ones keep a convolution from being cut into parts that each read all of
 * its weights. An instruction that fits a whole section is never cut.
 */
#define NEURON_SECTION_WORK_KERNEL	(1ULL << 21)
#define NEURON_SECTION_WORK_THREAD	(1ULL << 28)

/* Semaphores and barriers of one file's NeuronCores, under the host's sync lock. */
struct neuron_sync_state {
	u32 sem[NEURON_MAX_SEMAPHORES];
	u32 barrier_arrived[NEURON_MAX_BARRIERS];	/* cores at each barrier */
	u32 barrier_gen[NEURON_MAX_BARRIERS];		/* passes of each barrier */
	u64 events;			/* bumped by every signal and every arrival */
};

/* What the host supplies: all may be called from the runner's thread only. */
struct neuron_run_host {
	void (*fpu_begin)(void *ctx);	/* around each compute section */
	void (*fpu_end)(void *ctx);
	void (*yield)(void *ctx);	/* between sections */
	u64 (*now_ns)(void *ctx);	/* a monotonic clock */
	int (*aborting)(void *ctx);	/* the job is to stop (cores released) */
	u32 (*cores_held)(void *ctx);	/* the file's cores, for barrier masks */
	void (*sync_lock)(void *ctx);	/* guards the file's neuron_sync_state */
	void (*sync_unlock)(void *ctx);
	/*
	 * Without the sync lock: sleep until the state's events differ from
	 * @seen, the job is aborting, or @ns pass (it may wake sooner).
	 */
	void (*sync_wait)(void *ctx, u64 seen, u64 ns);
	void (*sync_wake)(void *ctx);	/* after events changed, without the lock */
};

/*
 * A traced job (uapi/neuron.h, struct neuron_trace_header, API 1.8): the
 * host fills in the buffer and the queue times; the runner appends a
 * record per instruction (per run of parts) and never writes past @buf.
 * Tracing off (a NULL trace) costs the runner one test per section.
 */
struct neuron_engine_trace {
	struct neuron_engine_slot buf;	/* at least a struct neuron_trace_header */
	u64 submitted_ns;		/* the host's */
	u64 dequeued_ns;
	u64 started_ns;			/* the runner's; 0 while it has not run */
	u32 count;			/* records written */
	u64 dropped;			/* records that did not fit */
};

/*
 * The most bytes a trace of @prog (validated) can fill: a header and a
 * record per part of every instruction. A host hands the runner at most
 * this much of a trace buffer, so that no page past it is ever touched
 * (at most 65536 instructions of at most 2^32 parts: no overflow).
 */
u64 neuron_engine_trace_extent(const struct neuron_engine_program *prog);

/*
 * Write @t's header once the job ended (run, or ended before it could
 * run), with @now_ns its end; the host calls it from the core's thread.
 */
void neuron_engine_trace_close(struct neuron_engine_trace *t, u32 core, u64 seq,
			       u32 insn_count, u32 status, u64 now_ns);

/*
 * Floating-point operations of instruction @index as a model counts them:
 * two per multiply-add of MATMUL and CONV2D (the direct convolution's,
 * whatever form its weights take), else its cost (an operation per
 * element). Profiles report FLOPs with it. Saturates at U64_MAX.
 */
u64 neuron_engine_insn_flops(const struct neuron_engine_program *prog, u32 index);

/* Bytes an instruction reads (its inputs' distinct elements) and writes. */
void neuron_engine_insn_bytes(const struct neuron_engine_program *prog, u32 index,
			      u64 *read, u64 *written);

struct neuron_run_job {
	const struct neuron_engine_program *prog;
	const struct neuron_engine_slot *slots;
	const struct neuron_engine_slot *scratch;
	struct neuron_sync_state *sync;	/* the file's */
	u32 core;			/* this NeuronCore's index on its device */
	u64 deadline_ns;		/* on the host's clock */
	u64 section_work;		/* NEURON_SECTION_WORK_KERNEL or _THREAD */
	struct neuron_engine_trace *trace;	/* NULL: not traced */
};

/* How a job ended: enum neuron_job_status, and where (uapi/neuron.h). */
struct neuron_run_result {
	u32 status;
	u32 error;		/* enum neuron_isa_error, for FAULT and INVALID */
	u32 error_index;	/* the instruction */
};

/* Run @job to its end, a fault, an abort or its deadline. */
void neuron_engine_run(const struct neuron_run_host *host, void *ctx,
		       const struct neuron_run_job *job, struct neuron_run_result *res);

/* Bytes from the start of each slot that a validated program can reach. */
void neuron_engine_slot_extents(const struct neuron_engine_program *prog,
				u64 extent[NEURON_MAX_SLOTS]);

/*
 * The vector MATMUL kernel (engine_gemm.c); see op_matmul. @kind: which
 * operands are bf16, whether the product runs in bf16 pairs
 * (NEURON_MATMUL_BF16_PAIRS), and whether B is in panels.
 */
#define NEURON_GEMM_A_BF16	0x1
#define NEURON_GEMM_B_BF16	0x2
#define NEURON_GEMM_PAIRS	0x4
/*
 * B in panels (NEURON_MATMUL_B_PANELS), f32 only: column n of row k at
 * b[(n / 32) * bs_k + k * 32 + n % 32] (@bs_k is then the panels' stride).
 */
#define NEURON_GEMM_B_PANELS	0x8
void neuron_gemm_block(const void *a, u64 as_m, u64 as_k, const void *b, u64 bs_k, u32 kind,
		       float *o, u64 os_m, u32 M, u32 N, u32 K, u32 *rows_done, u32 *cols_done,
		       const struct neuron_engine_slot *scratch);
/*
 * MATMUL's epilogue over the M x N outputs at @o (rows @os_m apart,
 * columns @os_n): + @bias[n * @bs] when @bias, then relu when @relu (a
 * value not > 0 becomes +0 unless NaN), then the bound @hi when @clamp
 * (NEURON_CONV_BOUND); by vectors where rows and the bias are contiguous.
 */
void neuron_gemm_epilogue(float *o, u64 os_m, u64 os_n, u32 M, u32 N, const float *bias, u64 bs,
			  int relu, int clamp, float hi);
#ifndef __KERNEL__
/*
 * Tests only: whether this thread's bf16 pairs use AVX512_BF16's
 * VDPBF16PS (1, where the CPU has it), the FMA emulation (0), or as the
 * process chose (-1, the default); returns whether 1 will run it.
 */
int neuron_gemm_set_bf16_thread(int native);
/*
 * Whether bf16 pairs run on VDPBF16PS by default here: the CPU has
 * AVX512_BF16 and the instruction is faster than the FMA emulation
 * (measured once).
 */
int neuron_gemm_bf16_native(void);

/*
 * bf16 pairs on AMX's tiles (TDPBF16PS): an explicit, inexact mode of
 * userspace (the simulator's NEURON_SIM_AMX), never a default. The tiles
 * sum their pairs in an order of their own, so results differ from the
 * definition's in the last bits (docs/isa.md). NEURON_AMX_EMULATED runs
 * the same kernel on C tiles that keep the definition's chain, to test
 * its blocking bit for bit on any machine.
 */
enum neuron_amx {
	NEURON_AMX_OFF,
	NEURON_AMX_NATIVE,
	NEURON_AMX_EMULATED,
	NEURON_AMX_PROCESS = 0xff,	/* neuron_amx_set_thread(): back to the process's */
};

/* Can this process run @mode? NATIVE needs AMX-BF16 and the kernel's leave (asked once). */
int neuron_amx_can_run(u32 mode);
/* The process's mode (NEURON_AMX_OFF at start); -1 if it cannot run. */
int neuron_amx_set_process(u32 mode);
/* Tests only: this thread's mode, over the process's; -1 if it cannot run. */
int neuron_amx_set_thread(u32 mode);
/* The mode in force on this thread. */
u32 neuron_amx_mode(void);
#endif

/*
 * Element @i of a MATMUL operand in bf16 pairs (f32, or bf16 when
 * @half) as the bf16 the product reads: an f32 rounds to nearest even,
 * a denormal f32 first becoming a zero of its sign (as VCVTNEPS2BF16);
 * NaN stays a quiet NaN. A bf16 is read as it is (the product takes a
 * denormal as zero).
 */
static inline u16 neuron_bf16_pair_elem(const void *p, u64 i, int half)
{
	u32 x;

	if (half)
		return ((const u16 *)p)[i];
	x = ((const u32 *)p)[i];
	if (!(x & 0x7f800000u))
		return (u16)((x >> 16) & 0x8000u);
	if ((x & 0x7fffffffu) > 0x7f800000u)
		return (u16)((x >> 16) | 0x40u);
	return (u16)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);
}

/*
 * One CONV2D for the vector kernel (engine_conv.c): bases at element
 * [0,0,0,0], element strides, the first input channel of the block's
 * group, the input's height and width, the window, the output's height
 * and width, and the output columns [wlo, whi) whose windows lie wholly
 * inside the input.
 */
struct neuron_conv_args {
	const float *x;
	const float *wt;
	float *o;
	u64 xs[4], ws[4], os[4];
	u32 c0, cig, h, w, kh, kw;
	u32 sh, sw, pt, pl, dh, dw;
	u32 ho, wo, wlo, whi;
	const float *bias;	/* first element, or NULL; the gemm path adds it */
	u64 bs;			/* bias stride */
	int relu;		/* the gemm path applies it after the bias */
	int clamp;		/* NEURON_CONV_CLAMP: the bound @hi after relu */
	float hi;
	int packed;		/* wt is NEURON_CONV_PACKED's layout (ws unused) */
	int accumulate;		/* the output is added in (packed, Winograd) */
	u32 co;			/* output channels (Winograd) */
	u32 wtile;		/* Winograd's output tile: 2 (U of 16) or 4 (U of 36) */
	/* NEURON_CONV_BF16_PAIRS: x and wt as their types (bf16 when *half) */
	const void *xv, *wv;
	int xhalf, whalf;
};

/*
 * Every output of channels co0..co0+cos-1 (one group, from input channel
 * @c->c0) for batch @n of a NEURON_CONV_BF16_PAIRS convolution, finished,
 * as neuron_gemm_block() products of the weights by the input's windows
 * (engine_conv.c). Returns 0, having written nothing, when it cannot (no
 * vector unit or scratch, operands not in rows).
 */
int neuron_conv_pairs(const struct neuron_conv_args *c, u32 n, u32 co0, u32 cos,
		      const struct neuron_engine_slot *scratch);

/*
 * Every output of batch @n of a NEURON_CONV_WINOGRAD convolution
 * (engine_winograd.c), F(2x2, 3x3) or F(4x4, 3x3) as @c->wtile says: by vector with AVX2 and enough @scratch, else by
 * the reference loop; the same bits either way.
 */
void neuron_conv_winograd(const struct neuron_conv_args *c, u32 n,
			  const struct neuron_engine_slot *scratch);

/* Output channels the vector kernel computes at once (0: none here). */
u32 neuron_conv_lanes(void);

/*
 * Every output of channels co0..co0+cos-1 (cos <= neuron_conv_lanes(),
 * one group) for batch @n, before bias and relu, with the packed weights
 * in @scratch. Returns 0 when it cannot (no vector unit, no scratch).
 */
int neuron_conv_block(const struct neuron_conv_args *c, u32 n, u32 co0, u32 cos,
		      const struct neuron_engine_slot *scratch);

/*
 * Every output of channels co0..co0+cos-1 (one group, weights as given)
 * for batch @n, finished (bias, relu), by output columns in vector lanes
 * (engine_grouped.c): for groups of few output channels, as depthwise
 * convolutions have. Returns 0 without a vector unit, or when weights
 * that are not contiguous do not fit @scratch.
 */
int neuron_conv_grouped(const struct neuron_conv_args *c, u32 n, u32 co0, u32 cos,
			const struct neuron_engine_slot *scratch);

/*
 * Every output of channels co0..co0+cos-1 (one group) for batch @n,
 * finished, as a direct convolution with output channels in vector lanes
 * (engine_narrow.c): for images of few input channels (NW_MAX_CIG), whose
 * windows the matrix product would gather for few products each. Returns
 * 0, having written nothing, when it does not apply (accumulating, output
 * rows neither contiguous nor channels last, fewer than 8 columns, more
 * input channels), without
 * a vector unit or enough @scratch, or when packed weights are not finite.
 */
int neuron_conv_narrow(const struct neuron_conv_args *c, u32 n, u32 co0, u32 cos,
		       const struct neuron_engine_slot *scratch);

/*
 * Every output of a depthwise convolution (one input and one output
 * channel per group, @co_count channels) for batch @n, finished, with
 * channels in vector lanes (engine_grouped.c): for rows too narrow for
 * neuron_conv_grouped()'s lanes, and for any row when the input or the
 * output is channels last (the input then read in place when its channels
 * are whole vectors). Returns 0 when it does not apply, without a vector
 * unit, or when the weights (and the image, unless read in place) do not
 * fit @scratch.
 */
int neuron_conv_depthwise(const struct neuron_conv_args *c, u32 n, u32 co_count,
			  const struct neuron_engine_slot *scratch);

/*
 * The same outputs for the whole group co0..co0+cos-1 as a matrix product
 * over gathered input columns (engine_conv.c), finished: with the bias
 * added and relu applied as the reference does. Returns 0 when it cannot:
 * no AVX2, too little scratch, weights or outputs not in rows, or a weight
 * that is not finite (where skipping the padding and multiplying it by
 * zero differ). Packed weights (c->packed, @co0 a multiple of 6) are read
 * in place, and any weight is fine, as the padding is multiplied by zero
 * by definition.
 */
int neuron_conv_gemm(const struct neuron_conv_args *c, u32 n, u32 co0, u32 cos,
		     const struct neuron_engine_slot *scratch);

/* One output row of POOL2D, for the vector path (engine_pool.c). */
struct neuron_pool_args {
	s64 ih0;		/* the window's first input row (may be < 0) */
	u64 xs2;		/* input row stride; columns are contiguous */
	u32 h, kh, kw, sw, pl;
	int max;		/* MAX, else AVG */
	int count_pad;		/* AVG divides by kh * kw */
};

/*
 * Outputs [wo0, wo1) of one row (their windows inside the input's columns,
 * @x the channel's first element, @out the row's), eight at a time with
 * AVX2, as the reference computes them. Returns the first column it did
 * not compute.
 */
u32 neuron_pool_row(const struct neuron_pool_args *p, const float *x, float *out, u32 wo0, u32 wo1);

/*
 * Output column @wo of one row for eight channels at once (@x and @out
 * their first channel's, @cs and @os elements apart; input columns @xs3
 * apart, @w of them), each as the reference computes it: for rows too
 * narrow for neuron_pool_row(), global pooling among them. Only when
 * neuron_pool_channels_ok() (AVX2).
 */
int neuron_pool_channels_ok(void);
void neuron_pool_channels(const struct neuron_pool_args *p, const float *x, u64 cs, u64 xs3, u32 w,
			  float *out, u64 os, u32 wo);

/*
 * The vector width the engine's row kernels (engine_rows.c) use: the
 * widest the CPU has, or in userspace a test's choice for its thread.
 * NEURON_SIMD_WIDE_ON_AVX2 is the AVX-512 kernels' 16-lane code built for
 * AVX2 (each vector split in halves): their logic on any AVX2 machine.
 */
enum neuron_simd {
	NEURON_SIMD_SCALAR,
	NEURON_SIMD_AVX2,
	NEURON_SIMD_AVX512,
	NEURON_SIMD_WIDE_ON_AVX2,
	NEURON_SIMD_CPU = 0xff,		/* neuron_simd_set_thread(): back to the CPU's */
};

/*
 * A 16-lane fused multiply-add as two 8-lane ones (@fma8 over @V8), for
 * the 16-lane kernels built for AVX2: the same rounding per lane as
 * AVX-512's. A macro: a function taking 16-lane vectors under the AVX2
 * target would change the ABI.
 */
/*
 * NEURON_CONV_CLAMP's bound on @v: @v where v < @hi or v is NaN, else @hi
 * (BINARY MIN's bits); _V over vectors of floats @V (integers @I, @hv
 * the bound in every lane). Each evaluates @v more than once.
 */
/*
 * The first @n (at most @W) floats at @src into @dst, zeros after them,
 * by plain loads: GCC turns a conditional load (j < n ? src[j] : 0) into
 * a masked one (VMASKMOVPS), whose masked-out lanes QEMU's emulation
 * faults on past the end of a mapping, where the architecture does not.
 */
#define NEURON_LOAD_PART(dst, src, n, W)					\
do {										\
	u32 j_;									\
										\
	for (j_ = 0; j_ < (W); j_++)						\
		(dst)[j_] = 0.0f;						\
	for (j_ = 0; j_ < (n); j_++)						\
		(dst)[j_] = (src)[j_];						\
} while (0)

#define NEURON_CONV_BOUND(v, hi)	((v) < (hi) || (v) != (v) ? (v) : (hi))
#define NEURON_CONV_BOUND_V(V, I, v, hv)					\
	((V)((((I)((v) < (hv)) | (I)((v) != (v))) & (I)(v)) |			\
	     (~((I)((v) < (hv)) | (I)((v) != (v))) & (I)(hv))))

#define NEURON_FMA_HALVES(V16, V8, fma8, a, b, c)				\
	({									\
		union { V16 v; V8 h[2]; } a_ = { .v = (a) }, b_ = { .v = (b) },	\
					  c_ = { .v = (c) };			\
		c_.h[0] = fma8(a_.h[0], b_.h[0], c_.h[0]);			\
		c_.h[1] = fma8(a_.h[1], b_.h[1], c_.h[1]);			\
		c_.v;								\
	})

u32 neuron_simd_level(void);
#ifndef __KERNEL__
/* This thread's width from now on; -1 if the CPU cannot run it. */
int neuron_simd_set_thread(u32 level);
/*
 * The process's width (under any thread's own choice) and whether bf16
 * pairs use VDPBF16PS (1) or the FMA emulation (0): the simulator's
 * NEURON_SIM_SIMD, to measure what a CPU with fewer extensions would do.
 * Until it is set, VDPBF16PS runs where it is faster than the emulation
 * (measured once; the bits are the same). -1 if the CPU cannot run it
 * (bf16 only with NEURON_SIMD_AVX512 or NEURON_SIMD_CPU).
 */
int neuron_simd_set_process(u32 level, int bf16_native);
int neuron_simd_can_run(u32 level, int bf16_native);
int neuron_simd_process_bf16(void);
#endif

/*
 * float32 BINARY and UNARY over @n contiguous elements (@b one element
 * broadcast when @b_scalar), in vectors, as the reference computes each:
 * returns how many leading elements were done (whole vectors; 0 for an
 * operation without a vector kernel or rows that overlap other than in
 * place). The caller does the rest.
 */
u64 neuron_rows_binary(u32 sub, float *o, const float *a, const float *b, int b_scalar, u64 n);
u64 neuron_rows_unary(u32 sub, float *o, const float *a, float alpha, u64 n);
/*
 * SOFTMAX's row max over @n contiguous elements from *@max (the row's
 * first element), x > max taking x, in vectors: returns how many leading
 * elements it folded into *@max (whole vectors). The max of numbers does
 * not depend on the order, but for the sign of a zero max, which changes
 * no result of SOFTMAX (x - max and exp(-0) = exp(+0) = 1 give the same
 * bits); a NaN never wins, as in the reference.
 */
u64 neuron_rows_max(const float *a, u64 n, float *max);
/*
 * One SOFTMAX row of @n contiguous elements, @o apart from @a or equal, as
 * the reference computes it with its vector parts in one call, the sum in
 * order or (@lanes) in NEURON_ROW_SUM_WIDTH lanes: 1 if done, 0 if the
 * caller must (no vector width, or overlapping rows).
 */
int neuron_rows_softmax(const float *a, float *o, u64 n, int lanes);
/*
 * One LAYERNORM row with NEURON_ROW_SUM_LANES, every operand contiguous
 * (@g the scale, @b the bias), as the reference computes it, by vector:
 * 1 if done, 0 if the caller must.
 */
int neuron_rows_layernorm(const float *a, float *o, const float *g, const float *b, u64 n,
			  float eps);
/* The partials of NEURON_ROW_SUM_LANES combined into their sum (they are overwritten). */
float neuron_lane_sum(float *p);

/*
 * float32 to bfloat16, the one conversion of the stack (the engine's CAST
 * and FILL, constant folding, the tools; Swift calls it through
 * BFloat16): on the bits, round to nearest with ties to even; every NaN
 * becomes the quiet NaN 0x7fc0. Rounding never carries a finite value
 * past infinity's bits, and no sum overflows.
 */
static inline u16 neuron_bf16_from_f32_bits(u32 bits)
{
	if ((bits & 0x7fffffffu) > 0x7f800000u)
		return 0x7fc0;
	return (u16)((bits + 0x7fffu + ((bits >> 16) & 1)) >> 16);
}

/* bfloat16 to float32 bits: exact. */
static inline u32 neuron_f32_bits_from_bf16(u16 half)
{
	return (u32)half << 16;
}

/*
 * The small float types of ISA 1.6 (F8E4M3FN to F4E2M1): each converts
 * to float32 exactly, and from a double rounded once to nearest, ties to
 * even, as OCP's and ONNX's conversions do. Integer arithmetic on the
 * bits only, so the kernel, the simulator and the tools (Swift calls
 * these for .npy files and constant folding) agree bit for bit.
 */
struct neuron_minifloat {
	u32 ebits, mbits, bias;
	u32 nan;	/* NaN's magnitude bits (FN, E5M2), or 0: NaN is the sign alone (FNUZ) */
	u32 max;	/* the largest finite magnitude's bits */
	u32 inf;	/* infinity's magnitude bits, or 0 when there is none */
};

/* The format of @dtype, 0 if it is none of F8E4M3FN to F4E2M1 but E8M0. */
static inline int neuron_minifloat_of(u32 dtype, struct neuron_minifloat *f)
{
	static const struct neuron_minifloat formats[] = {
		{ 4, 3, 7, 0x7f, 0x7e, 0 },	/* F8E4M3FN */
		{ 4, 3, 8, 0, 0x7f, 0 },	/* F8E4M3FNUZ */
		{ 5, 2, 15, 0x7e, 0x7b, 0x7c },	/* F8E5M2 */
		{ 5, 2, 16, 0, 0x7f, 0 },	/* F8E5M2FNUZ */
		{ 2, 1, 1, 0, 0x7, 0 },		/* F4E2M1: no NaN (nan unused) */
	};

	switch (dtype) {
	case NEURON_DT_F8E4M3FN: *f = formats[0]; return 1;
	case NEURON_DT_F8E4M3FNUZ: *f = formats[1]; return 1;
	case NEURON_DT_F8E5M2: *f = formats[2]; return 1;
	case NEURON_DT_F8E5M2FNUZ: *f = formats[3]; return 1;
	case NEURON_DT_F4E2M1: *f = formats[4]; return 1;
	}
	return 0;
}

/* float32 bits of @code of a small float @dtype (F8E4M3FN to F4E2M1): exact. */
static inline u32 neuron_f32_bits_from_small(u32 dtype, u32 code)
{
	struct neuron_minifloat f;
	u32 n, sign, mag, e, m, k = 0;

	if (dtype == NEURON_DT_F8E8M0) {
		code &= 0xff;
		if (code == 0xff)
			return 0x7fc00000u;
		return code ? code << 23 : 0x00400000u;	/* 2^-127: a float32 subnormal */
	}
	if (!neuron_minifloat_of(dtype, &f))
		return 0x7fc00000u;
	n = f.ebits + f.mbits;
	code &= (1u << (n + 1)) - 1;
	sign = (code >> n) << 31;
	mag = code & ((1u << n) - 1);
	/* NaN: past infinity (E5M2), all ones (FN), or -0's code (FNUZ); F4E2M1 has none */
	if (dtype != NEURON_DT_F4E2M1 && (f.inf ? mag > f.inf : f.nan ? mag == f.nan : code == 1u << n))
		return sign | 0x7fc00000u;
	if (f.inf && mag == f.inf)
		return sign | 0x7f800000u;
	e = mag >> f.mbits;
	m = mag & ((1u << f.mbits) - 1);
	if (!e) {
		if (!m)
			return sign;
		while (!(m & (1u << f.mbits))) {	/* a subnormal: normalise */
			m <<= 1;
			k++;
		}
		return sign | ((128 - f.bias - k) << 23) | ((m & ((1u << f.mbits) - 1)) << (23 - f.mbits));
	}
	return sign | ((e - f.bias + 127) << 23) | (m << (23 - f.mbits));
}

/*
 * The code of small float @dtype nearest the double of @bits (to nearest,
 * ties to even). A value beyond the largest finite one, and infinity,
 * become it (saturate), or else infinity (E5M2) or NaN; F4E2M1 has
 * neither and always saturates, and takes NaN to 0. Not for E8M0.
 */
static inline u32 neuron_small_from_f64_bits(u32 dtype, u64 bits, int saturate)
{
	struct neuron_minifloat f;
	u32 n, sign, ex = (u32)(bits >> 52) & 0x7ff;
	u64 man = bits & ((1ULL << 52) - 1), m, rem, half;
	s32 te;
	u32 shift, r;

	if (!neuron_minifloat_of(dtype, &f))
		return 0;
	n = f.ebits + f.mbits;
	sign = (u32)(bits >> 63) << n;
	if (dtype == NEURON_DT_F4E2M1)
		saturate = 1;
	if (ex == 0x7ff && man) {	/* NaN */
		if (dtype == NEURON_DT_F4E2M1)
			return 0;
		return f.nan ? sign | f.nan : 1u << n;
	}
	if (ex == 0x7ff)
		r = ~0u;		/* infinity: beyond every finite value */
	else if (!ex)
		r = 0;			/* a double subnormal: far below every one */
	else {
		te = (s32)ex - 1023 + (s32)f.bias;
		if (te > (s32)(1u << f.ebits)) {
			r = ~0u;
		} else if (te >= 1) {
			shift = 52 - f.mbits;
			m = man >> shift;
			rem = man & ((1ULL << shift) - 1);
			half = 1ULL << (shift - 1);
			r = ((u32)te << f.mbits) | (u32)m;
			if (rem > half || (rem == half && (r & 1)))
				r++;	/* may carry into the exponent */
		} else {
			shift = 52 - f.mbits + (u32)(1 - te);
			if (shift > 54) {
				r = 0;	/* below a quarter of the least subnormal */
			} else {
				man |= 1ULL << 52;
				m = man >> shift;
				rem = man & ((1ULL << shift) - 1);
				half = 1ULL << (shift - 1);
				r = (u32)m;
				if (rem > half || (rem == half && (r & 1)))
					r++;
			}
		}
	}
	if (r > f.max) {
		if (saturate)
			r = f.max;
		else if (f.inf)
			r = f.inf;
		else
			return f.nan ? sign | f.nan : 1u << n;
	}
	if (!r && !f.nan && dtype != NEURON_DT_F4E2M1)
		return 0;		/* FNUZ has no -0 */
	return sign | r;
}

/*
 * F8E8M0's code for float32 @bits: its exponent, rounded up when any
 * fraction is left (@flags NEURON_CAST_E8M0_UP), down (..._DOWN), or to
 * the nearest power (a fraction of more than a half, or of a half past
 * 2^-127), as ONNX's reference rounds; infinity and NaN are NaN (0xff).
 * Saturating, rounding never reaches 0xff; the sign is ignored (ONNX
 * leaves negative values unspecified).
 */
static inline u32 neuron_e8m0_from_f32_bits(u32 bits, u32 flags)
{
	u32 e = (bits >> 23) & 0xff, up;

	if (e == 0xff)
		return 0xff;
	if (flags & NEURON_CAST_E8M0_UP)
		up = (bits & 0x7fffff) != 0;
	else if (flags & NEURON_CAST_E8M0_DOWN)
		up = 0;
	else
		up = (bits & 0x400000) && ((bits & 0x3fffff) || e);
	if (up && e == 0xfe && !(flags & NEURON_CAST_NO_SATURATE))
		up = 0;
	return e + up;
}

/* Bytes of one element of @dtype (a valid enum neuron_dtype), 0 if none. */
static inline u32 neuron_dtype_size(u32 dtype)
{
	switch (dtype) {
	case NEURON_DT_I8: case NEURON_DT_U8: case NEURON_DT_BOOL:
	case NEURON_DT_F8E4M3FN: case NEURON_DT_F8E4M3FNUZ: case NEURON_DT_F8E5M2:
	case NEURON_DT_F8E5M2FNUZ: case NEURON_DT_F8E8M0: case NEURON_DT_F4E2M1:
	case NEURON_DT_I4: case NEURON_DT_U4: case NEURON_DT_I2: case NEURON_DT_U2:
		return 1;
	case NEURON_DT_BF16: case NEURON_DT_F16: case NEURON_DT_I16: case NEURON_DT_U16:
		return 2;
	case NEURON_DT_F32: case NEURON_DT_I32: case NEURON_DT_U32:
		return 4;
	case NEURON_DT_I64: case NEURON_DT_U64: case NEURON_DT_F64:
		return 8;
	}
	return 0;
}

/* Elements a descriptor spans (product of its dims; 1 for a scalar). */
u64 neuron_engine_desc_elements(const struct neuron_tensor_desc *d);

/* The engine's own math, the same bits everywhere (engine_math.c). */
float neuron_expf(float x);
float neuron_logf(float x);
float neuron_tanhf(float x);
float neuron_erff(float x);
float neuron_sqrtf(float x);
float neuron_powf(float x, float y);
/* To an integral value: ties to even (ROUND), or downward (FLOOR; CEIL is
 * -floor(-x)); exact, NaN and infinities kept, the sign of zero kept. */
float neuron_roundevenf(float x);
float neuron_floorf(float x);
/* x - trunc(x / y) · y, exactly (C's fmodf); NaN when y is 0. */
float neuron_fmodf(float x, float y);
/* x * y + z with a single rounding: the hardware's FMA where the CPU has
 * one, else an exact emulation. MATMUL and CONV2D accumulate with it. */
float neuron_fmaf(float x, float y, float z);
/* ISA 1.5: float64 tensors (engine_math.c). */
double neuron_exp(double x);
double neuron_log(double x);
double neuron_sqrt(double x);
double neuron_roundeven(double x);
double neuron_floor(double x);
double neuron_fmod(double x, double y);
/* ISA 1.5: computed in double, rounded once (engine_math.c). */
float neuron_sinf(float x);
float neuron_cosf(float x);
float neuron_tanf(float x);
float neuron_asinf(float x);
float neuron_acosf(float x);
float neuron_atanf(float x);
float neuron_sinhf(float x);
float neuron_coshf(float x);
float neuron_asinhf(float x);
float neuron_acoshf(float x);
float neuron_atanhf(float x);

#endif /* NEURON_ENGINE_H */
