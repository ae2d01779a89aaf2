// SPDX-License-Identifier: GPL-2.0
/*
 * Engine: running one instruction in parts. A queue bounds the time it
 * spends between reschedules (in the kernel, inside one kernel_fpu
 * section) by running a large instruction as several slices of one
 * dimension of its output. Every output element is computed by exactly
 * the same operations as in a whole run, so the bits do not change.
 *
 * The slice works on copies of the instruction and of its descriptors:
 * each sliced operand gets a smaller extent on its split dimension and
 * an offset moved to the slice's first index. CONV2D and POOL2D may also
 * split their output rows: the input then starts at the slice's first
 * window, with the top padding that remains. No floating point here.
 */
#include "neuron_engine.h"

/*
 * Which dimension of each operand follows the split (or -1), and how many
 * indices of it a part covers (the last part may cover fewer).
 */
struct split {
	int dim[4];
	u32 mul[4];		/* indices of the operand per index of the split */
	u32 unit;
	int rows;		/* CONV2D, POOL2D: output rows (dim[0] = 2) */
	int blocks;		/* CONV2D packed weights: operand 2 in blocks of channels */
	/*
	 * Outer axes, outermost first, split before the one above: a part
	 * is @ounit[j] indices of each (or what remains) and @unit of the
	 * inner one, so that no part of any shape is large. Outer axes are
	 * never used with @mul, @rows or @blocks.
	 */
	u32 outer;
	int odim[NEURON_MAX_RANK][4];
	u32 oext[NEURON_MAX_RANK];
	u32 ounit[NEURON_MAX_RANK];
};

static void split_none(struct split *s)
{
	u32 i;

	for (i = 0; i < 4; i++) {
		s->dim[i] = -1;
		s->mul[i] = 1;
	}
	s->unit = 1;
	s->rows = 0;
	s->blocks = 0;
	s->outer = 0;
}

/*
 * The work of one part an instruction is split into, at most: the queues
 * run each part as one call (in the kernel, inside one FPU section), and
 * the validator refuses an instruction whose parts would exceed
 * NEURON_MAX_SLICE_WORK. Element operations: a 2^24-element copy, or
 * 2^24 multiply-adds, take milliseconds natively.
 */
#define PART_WORK	(1ULL << 24)

static u64 part_work(const struct neuron_engine_program *prog)
{
	return prog->part_work ? prog->part_work : PART_WORK;
}

static u32 div_up(u64 a, u32 b)
{
	return (u32)((a + b - 1) / b);
}

/*
 * Operations over elements or rows: split the axes of @o in @axes (a
 * mask), which operands @ops (a mask) follow at the same index. The
 * longest axis alone when its parts are small enough (@per_index: the
 * work of one index of all of them); else the longest ones together, one
 * index of each a part, until they are, the inner one (the last of them)
 * in units.
 */
static void plan_axes(const struct neuron_engine_program *prog, const struct neuron_tensor_desc *o,
		      u32 axes, u32 ops, u64 work, struct split *s)
{
	u32 chosen = 0, count = 0, i, j, k, best;
	u64 part = work;

	while (axes & ~chosen) {
		best = NEURON_MAX_RANK;
		for (i = 0; i < o->rank; i++)
			if (((axes & ~chosen) >> i & 1) && (best == NEURON_MAX_RANK ||
							    o->dims[i] > o->dims[best]))
				best = i;
		chosen |= 1u << best;
		count++;
		part /= o->dims[best];
		if (part <= part_work(prog))
			break;
	}
	/* In axis order: the inner axis, the last, varies fastest. */
	for (i = 0, k = 0; i < o->rank; i++) {
		if (!(chosen >> i & 1))
			continue;
		for (j = 0; j < 4; j++) {
			int d = (ops >> j & 1) ? (int)i : -1;

			if (k + 1 < count)
				s->odim[k][j] = d;
			else
				s->dim[j] = d;
		}
		if (k + 1 < count) {
			s->oext[k] = o->dims[i];
			s->ounit[k] = 1;
		}
		k++;
	}
	s->outer = count - 1;
}

/*
 * An ungrouped CONV2D runs as a matrix product over gathered input
 * columns (engine_conv.c). A slice of several parts runs as one call, so
 * parts can be small (the kernel's FPU sections stay short) while a
 * queue with a larger budget still gets large calls: a call packs its
 * weights once for all its positions, and gathers its input columns once
 * for all its channels. Output rows, each with every channel, when a row
 * is at most CONV_ROW_WORK multiply-adds; else blocks of CONV_CHANNELS
 * output channels (the register block's rows), each with every position;
 * packed weights then follow in whole blocks.
 */
#define CONV_ROW_WORK	(1ULL << 24)
#define CONV_CHANNELS	NEURON_CONV_PACK_ROWS

static void plan_conv(const struct neuron_tensor_desc *d, const struct neuron_insn *in,
		      struct split *s)
{
	const struct neuron_tensor_desc *o = &d[in->operand[0]];
	const struct neuron_tensor_desc *w = &d[in->operand[2]];
	u64 taps = (u64)w->dims[1] * w->dims[2] * w->dims[3];
	u64 row = (u64)o->dims[1] * o->dims[3];

	if (in->flags & NEURON_CONV_WINOGRAD) {
		/* Rows of whole tiles (2 or 4): a slice's tiles are those of a whole run. */
		s->dim[0] = 2;
		s->rows = 1;
		s->unit = w->dims[0] == 36 ? 4 : 2;
		return;
	}
	if (o->dims[2] >= 2 && (!taps || row <= CONV_ROW_WORK / taps)) {
		s->dim[0] = 2;
		s->rows = 1;
		return;
	}
	s->dim[0] = 1;
	s->dim[2] = 0;
	if (in->flags & NEURON_CONV_BIAS)
		s->dim[3] = 0;
	s->unit = CONV_CHANNELS;
	s->blocks = !!(in->flags & NEURON_CONV_PACKED);
}

/*
 * CONV2D and POOL2D: split whichever of batch, channels (output channels
 * of one group; whole groups; pooled channels) and output rows has the
 * most indices, channels on a tie.
 */
static void plan_window(const struct neuron_tensor_desc *d, const struct neuron_insn *in,
			struct split *s)
{
	const struct neuron_tensor_desc *o = &d[in->operand[0]];
	const struct neuron_tensor_desc *x = &d[in->operand[1]];
	u32 channels = o->dims[1], groups = 1, per = 1;
	int bias = in->opcode == NEURON_OP_CONV2D && (in->flags & NEURON_CONV_BIAS);

	if (in->opcode == NEURON_OP_CONV2D && (in->flags & NEURON_CONV_WINOGRAD)) {
		channels = o->dims[1];
	} else if (in->opcode == NEURON_OP_CONV2D) {
		groups = x->dims[1] / d[in->operand[2]].dims[1];
		channels = groups > 1 ? groups : o->dims[1];
		per = groups > 1 ? o->dims[1] / groups : 1;
	}
	if (o->dims[0] > channels && o->dims[0] > o->dims[2]) {
		s->dim[0] = s->dim[1] = 0;
	} else if (in->opcode == NEURON_OP_CONV2D && groups == 1) {
		plan_conv(d, in, s);
	} else if (channels >= o->dims[2]) {
		s->dim[0] = 1;
		s->mul[0] = per;
		if (in->opcode == NEURON_OP_POOL2D) {
			s->dim[1] = 1;
		} else {
			s->dim[2] = 0;
			s->mul[2] = per;
			if (groups > 1) {	/* whole groups: their input channels too */
				s->dim[1] = 1;
				s->mul[1] = d[in->operand[2]].dims[1];
			}
			if (bias) {
				s->dim[3] = 0;
				s->mul[3] = per;
			}
		}
	} else {
		s->dim[0] = 2;
		s->rows = 1;
	}
}

/*
 * MATMUL parts keep the vector kernel efficient: it packs blocks of B and
 * sweeps every row of its call over them, and packing costs as much as
 * tens of rows of work. So a wide matmul is split by 256 columns (each
 * part packs only its own columns of B), a narrow one by 512 rows, a
 * batched one by batch. Where such parts would pass MATMUL_PART_WORK
 * multiply-adds (a multiple of the part work: they are the cheapest
 * operations there are), the batch becomes an outer axis, rows a part
 * fewer (a wide one: an outer axis of rows), and where one row is too
 * much, an outer axis of single rows over parts of fewer columns. B in
 * panels (ISA 1.11) is never cut: batches and rows only.
 */
#define SPLIT_ROWS	512
#define SPLIT_COLS	256
#define MATMUL_PART_WORK(prog)	(4 * part_work(prog))

/* Outer axis @s->outer: operand axes @o, @a, @b (or -1), @ext in @unit. */
static void outer_axis(struct split *s, int o, int a, int b, u32 ext, u32 unit)
{
	u32 k = s->outer++;

	s->odim[k][0] = o;
	s->odim[k][1] = a;
	s->odim[k][2] = b;
	s->odim[k][3] = -1;
	s->oext[k] = ext;
	s->ounit[k] = unit;
}

static void plan_matmul(const struct neuron_engine_program *prog, const struct neuron_insn *in,
			struct split *s)
{
	const struct neuron_tensor_desc *o = &prog->descs[in->operand[0]];
	const struct neuron_tensor_desc *a = &prog->descs[in->operand[1]];
	u32 r = o->rank, m = r - 2, n = r - 1, M = o->dims[m], N = o->dims[n];
	u64 K = a->dims[a->rank - 1] ?: 1, limit = MATMUL_PART_WORK(prog), rows;
	/* B in panels serves every batch and every row whole. */
	int panels = !!(in->flags & NEURON_MATMUL_B_PANELS);

	if (r == 3 && o->dims[0] > 1) {
		if ((u64)M * N * K <= limit) {
			s->dim[0] = s->dim[1] = 0;
			s->dim[2] = panels ? -1 : 0;
			return;
		}
		outer_axis(s, 0, 0, panels ? -1 : 0, o->dims[0], 1);
	}
	if (N >= 2 * SPLIT_COLS && !panels) {
		/* Columns inside, with the bias; rows outside when too many. */
		s->dim[0] = n;
		s->dim[2] = n;
		s->unit = SPLIT_COLS;
		if (in->flags & NEURON_MATMUL_BIAS)
			s->dim[3] = 0;
		if ((u64)M * SPLIT_COLS * K <= limit)
			return;
		rows = limit / (SPLIT_COLS * K);
		if (!rows) {
			rows = 1;
			s->unit = (u32)(limit / K) ?: 1;
		}
		outer_axis(s, m, m, -1, M, (u32)rows);
		return;
	}
	rows = limit / ((u64)N * K);
	if (rows || panels) {
		s->dim[0] = m;
		s->dim[1] = m;
		s->unit = !rows ? 1 : rows < SPLIT_ROWS ? (u32)rows : SPLIT_ROWS;
		return;
	}
	/* One row is too much: single rows, each in parts of fewer columns. */
	outer_axis(s, m, m, -1, M, 1);
	s->dim[0] = n;
	s->dim[2] = n;
	s->unit = (u32)(limit / K) ?: 1;
	if (in->flags & NEURON_MATMUL_BIAS)
		s->dim[3] = 0;
}

/* Parts of the inner axis, and of the whole split. */
static u32 inner_parts(const struct neuron_tensor_desc *o, const struct split *s)
{
	return div_up(o->dims[s->dim[0]] / s->mul[0], s->unit);
}

static u32 parts_of(const struct neuron_tensor_desc *o, const struct split *s)
{
	u64 parts = inner_parts(o, s);
	u32 k;

	for (k = 0; k < s->outer; k++)
		parts *= div_up(s->oext[k], s->ounit[k]);
	return parts > 0xffffffffu ? 0 : (u32)parts;	/* 0: too many */
}

/*
 * The split of instruction @in; returns the number of parts (>= 1).
 * Operations over elements or rows split their longest free axis, so
 * that no part of a large instruction is large.
 */
static u32 plan(const struct neuron_engine_program *prog, u32 index, struct split *s)
{
	const struct neuron_insn *in = &prog->insns[index];
	const struct neuron_insn_info *info = neuron_engine_insn_info(in->opcode);
	const struct neuron_tensor_desc *d = prog->descs;
	const struct neuron_tensor_desc *o;
	u32 r;

	split_none(s);
	if (info->split == NEURON_SPLIT_NONE)
		return 1;
	o = &d[in->operand[0]];
	r = o->rank;
	switch (info->split) {
	case NEURON_SPLIT_ELEMENTS:
		if (r < 1)
			return 1;
		plan_axes(prog, o, (1u << r) - 1, info->split_operands,
			  neuron_engine_insn_cost(prog, index), s);
		break;
	case NEURON_SPLIT_ROWS:
		if (r < 2)
			return 1;
		plan_axes(prog, o, (1u << (r - 1)) - 1, info->split_operands,
			  neuron_engine_insn_cost(prog, index), s);
		break;
	case NEURON_SPLIT_MATMUL:
		plan_matmul(prog, in, s);
		break;
	case NEURON_SPLIT_WINDOW:
		plan_window(d, in, s);
		break;
	default:
		return 1;
	}
	return parts_of(o, s);
}

u32 neuron_engine_insn_parts(const struct neuron_engine_program *prog, u32 index)
{
	struct split s;

	return plan(prog, index, &s) ?: 1;
}

u64 neuron_engine_part_cost(const struct neuron_engine_program *prog, u32 index)
{
	const struct neuron_insn *in = &prog->insns[index];
	u64 cost = neuron_engine_insn_cost(prog, index), ext;
	struct split s;
	u32 k;

	if (!plan(prog, index, &s))
		return ~0ULL;
	if (s.dim[0] < 0)
		return cost;
	/* Work is proportional to the output's indices along each split axis. */
	ext = prog->descs[in->operand[0]].dims[s.dim[0]] / s.mul[0];
	cost = cost / ext * (s.unit < ext ? s.unit : ext);
	for (k = 0; k < s.outer; k++)
		cost = cost / s.oext[k] * (s.ounit[k] < s.oext[k] ? s.ounit[k] : s.oext[k]);
	return cost;
}

/*
 * Run inner parts [@first, @first + @count) of outer part @outer as one
 * instruction over shrunken copies of the operands.
 */
static u32 step_slice(const struct neuron_engine_program *prog, u32 index,
		      const struct neuron_engine_slot *slots, const struct neuron_engine_slot *scratch,
		      const struct split *s, u64 outer, u32 first, u32 count)
{
	const struct neuron_insn *in = &prog->insns[index];
	struct neuron_tensor_desc descs[4];
	struct neuron_engine_program part;
	struct neuron_insn insn;
	u32 i, extent, start, len, k;

	insn = *in;
	for (i = 0; i < 4; i++) {
		descs[i] = prog->descs[in->operand[i]];
		insn.operand[i] = i;
	}
	/* The outer indices, the last outer axis varying fastest. */
	for (k = s->outer; k-- > 0; ) {
		u32 chunks = div_up(s->oext[k], s->ounit[k]);
		u32 at = (u32)(outer % chunks) * s->ounit[k];
		u32 n = s->oext[k] - at < s->ounit[k] ? s->oext[k] - at : s->ounit[k];

		outer /= chunks;
		for (i = 0; i < 4; i++) {
			int d = s->odim[k][i];

			if (d < 0)
				continue;
			descs[i].offset += (u64)at * descs[i].strides[d];
			descs[i].dims[d] = n;
		}
	}
	/* In indices of the split (whole groups for grouped channels). */
	extent = prog->descs[in->operand[0]].dims[s->dim[0]] / s->mul[0];
	start = first * s->unit;
	len = count * s->unit;
	if (len > extent - start)
		len = extent - start;
	for (i = 0; i < 4; i++) {
		if (s->dim[i] < 0)
			continue;
		if (i == 2 && s->blocks) {
			/* start is a whole number of blocks (the unit is one) */
			descs[i].offset += (u64)(start / NEURON_CONV_PACK_ROWS) * descs[i].strides[0];
			descs[i].dims[0] = (len + NEURON_CONV_PACK_ROWS - 1) / NEURON_CONV_PACK_ROWS;
			continue;
		}
		descs[i].offset += (u64)start * s->mul[i] * descs[i].strides[s->dim[i]];
		descs[i].dims[s->dim[i]] = len * s->mul[i];
	}
	if (s->rows) {
		/* The input from the first window of the slice's first row. */
		struct neuron_tensor_desc *x = &descs[1];
		s64 top = (s64)start * in->iparam[NEURON_WIN_STRIDE_H] -
			  (s64)in->iparam[NEURON_WIN_PAD_TOP];

		if (top <= 0) {
			insn.iparam[NEURON_WIN_PAD_TOP] = (u32)-top;
		} else {
			u32 skip = (u64)top < x->dims[2] ? (u32)top : x->dims[2];

			insn.iparam[NEURON_WIN_PAD_TOP] = 0;
			x->offset += (u64)skip * x->strides[2];
			x->dims[2] -= skip;	/* may reach 0: rows wholly in the padding */
		}
	}
	part.descs = descs;
	part.insns = &insn;
	part.desc_count = 4;
	part.insn_count = 1;
	part.part_work = 0;
	return neuron_engine_step(&part, 0, slots, scratch);
}

u32 neuron_engine_step_part(const struct neuron_engine_program *prog, u32 index,
			    const struct neuron_engine_slot *slots,
			    const struct neuron_engine_slot *scratch, u32 first, u32 count)
{
	const struct neuron_tensor_desc *o = &prog->descs[prog->insns[index].operand[0]];
	struct split s;
	u32 parts, inner, fault = 0, f, at, run;

	parts = plan(prog, index, &s);
	if (first >= parts || !count)
		return NEURON_ISA_OK;
	if (count > parts - first)
		count = parts - first;
	if (first == 0 && count == parts)
		return neuron_engine_step(prog, index, slots, scratch);
	/* Runs of parts within one outer part, each as one call. */
	inner = inner_parts(o, &s);
	while (count) {
		at = first % inner;
		run = inner - at < count ? inner - at : count;
		f = step_slice(prog, index, slots, scratch, &s, first / inner, at, run);
		if (!fault)
			fault = f;
		first += run;
		count -= run;
	}
	return fault;
}
