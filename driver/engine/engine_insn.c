// SPDX-License-Identifier: GPL-2.0
/*
 * Engine: the instruction table, one row per opcode of uapi/neuron_isa.h.
 * Adding an instruction is a row here, its check (engine_validate.c) and
 * its step (engine_exec.c); the validator, the cost, the splitter and the
 * job runner take the rest from the row (docs/architecture.md).
 */
#include "engine_insn.h"

static const char *const binary_names[NEURON_BIN_COUNT] = {
	[NEURON_BIN_ADD] = "ADD", [NEURON_BIN_SUB] = "SUB", [NEURON_BIN_MUL] = "MUL",
	[NEURON_BIN_DIV] = "DIV", [NEURON_BIN_MAX] = "MAX", [NEURON_BIN_MIN] = "MIN",
	[NEURON_BIN_POW] = "POW", [NEURON_BIN_MOD] = "MOD", [NEURON_BIN_FMOD] = "FMOD",
	[NEURON_BIN_AND] = "AND", [NEURON_BIN_OR] = "OR", [NEURON_BIN_XOR] = "XOR",
	[NEURON_BIN_SHL] = "SHL", [NEURON_BIN_SHR] = "SHR",
};

static const char *const unary_names[NEURON_UN_COUNT] = {
	[NEURON_UN_RELU] = "RELU", [NEURON_UN_LEAKY_RELU] = "LEAKY_RELU",
	[NEURON_UN_GELU_ERF] = "GELU_ERF", [NEURON_UN_GELU_TANH] = "GELU_TANH",
	[NEURON_UN_SIGMOID] = "SIGMOID", [NEURON_UN_TANH] = "TANH", [NEURON_UN_EXP] = "EXP",
	[NEURON_UN_LOG] = "LOG", [NEURON_UN_SQRT] = "SQRT", [NEURON_UN_RSQRT] = "RSQRT",
	[NEURON_UN_ERF] = "ERF", [NEURON_UN_NEG] = "NEG", [NEURON_UN_ABS] = "ABS",
	[NEURON_UN_RECIPROCAL] = "RECIPROCAL", [NEURON_UN_NOT] = "NOT",
	[NEURON_UN_FLOOR] = "FLOOR", [NEURON_UN_CEIL] = "CEIL", [NEURON_UN_ROUND] = "ROUND",
	[NEURON_UN_SIN] = "SIN", [NEURON_UN_COS] = "COS", [NEURON_UN_TAN] = "TAN",
	[NEURON_UN_ASIN] = "ASIN", [NEURON_UN_ACOS] = "ACOS", [NEURON_UN_ATAN] = "ATAN",
	[NEURON_UN_SINH] = "SINH", [NEURON_UN_COSH] = "COSH", [NEURON_UN_ASINH] = "ASINH",
	[NEURON_UN_ACOSH] = "ACOSH", [NEURON_UN_ATANH] = "ATANH", [NEURON_UN_SILU] = "SILU",
};

static const char *const reduce_names[NEURON_RED_COUNT] = {
	[NEURON_RED_SUM] = "SUM", [NEURON_RED_MEAN] = "MEAN", [NEURON_RED_MAX] = "MAX",
	[NEURON_RED_MIN] = "MIN", [NEURON_RED_PROD] = "PROD", [NEURON_RED_ARGMAX] = "ARGMAX",
	[NEURON_RED_ARGMIN] = "ARGMIN",
};

static const char *const compare_names[NEURON_CMP_COUNT] = {
	[NEURON_CMP_EQ] = "EQ", [NEURON_CMP_LT] = "LT", [NEURON_CMP_LE] = "LE",
	[NEURON_CMP_GT] = "GT", [NEURON_CMP_GE] = "GE",
};

static const char *const topk_names[NEURON_TOPK_COUNT] = {
	[NEURON_TOPK_LARGEST] = "LARGEST", [NEURON_TOPK_SMALLEST] = "SMALLEST",
};

static const char *const scatter_names[NEURON_SCATTER_COUNT] = {
	[NEURON_SCATTER_SET] = "SET", [NEURON_SCATTER_ADD] = "ADD", [NEURON_SCATTER_MUL] = "MUL",
	[NEURON_SCATTER_MAX] = "MAX", [NEURON_SCATTER_MIN] = "MIN",
};

static const char *const pool_names[NEURON_POOL_COUNT] = {
	[NEURON_POOL_MAX] = "MAX", [NEURON_POOL_AVG] = "AVG",
};

#define SYNC(op)							\
	[NEURON_OP_##op] = {						\
		.name = #op, .kind = NEURON_INSN_SYNC, .iparams = 2,	\
		.cost = NEURON_COST_UNIT, .slice_weight = 1,		\
		.check = neuron_check_sync,				\
	}

static const struct neuron_insn_info insn_table[NEURON_OP_COUNT] = {
	[NEURON_OP_NOP] = {
		.name = "NOP", .kind = NEURON_INSN_NOP, .cost = NEURON_COST_UNIT,
		.slice_weight = 1, .check = neuron_check_none, .exec = neuron_exec_nop,
	},
	[NEURON_OP_FILL] = {
		.name = "FILL", .kind = NEURON_INSN_COMPUTE, .operands = 1, .fparams = 1,
		.cost = NEURON_COST_OUTPUT, .slice_weight = 64,
		.split = NEURON_SPLIT_ELEMENTS, .split_operands = 0x1,
		.check = neuron_check_none, .exec = neuron_exec_fill,
	},
	[NEURON_OP_COPY] = {
		.name = "COPY", .kind = NEURON_INSN_COMPUTE, .operands = 2,
		.cost = NEURON_COST_OUTPUT, .slice_weight = 64,
		.split = NEURON_SPLIT_ELEMENTS, .split_operands = 0x3,
		.check = neuron_check_copy, .exec = neuron_exec_copy,
	},
	[NEURON_OP_BINARY] = {
		.name = "BINARY", .sub_names = binary_names, .kind = NEURON_INSN_COMPUTE,
		.operands = 3, .subs = NEURON_BIN_COUNT,
		.cost = NEURON_COST_OUTPUT, .slice_weight = 64,
		.split = NEURON_SPLIT_ELEMENTS, .split_operands = 0x7,
		.check = neuron_check_elementwise, .exec = neuron_exec_elementwise,
	},
	[NEURON_OP_UNARY] = {
		.name = "UNARY", .sub_names = unary_names, .kind = NEURON_INSN_COMPUTE,
		.operands = 2, .subs = NEURON_UN_COUNT, .fparams = 1,
		.cost = NEURON_COST_OUTPUT, .slice_weight = 64,
		.split = NEURON_SPLIT_ELEMENTS, .split_operands = 0x3,
		.check = neuron_check_elementwise, .exec = neuron_exec_elementwise,
	},
	[NEURON_OP_MATMUL] = {
		.name = "MATMUL", .kind = NEURON_INSN_COMPUTE, .operands = 3, .fparams = 1,
		.flags = NEURON_MATMUL_BIAS | NEURON_MATMUL_BF16_PAIRS | NEURON_MATMUL_B_PANELS |
			 NEURON_MATMUL_RELU | NEURON_MATMUL_CLAMP,
		.bias_flag = NEURON_MATMUL_BIAS,
		.cost = NEURON_COST_MATMUL, .slice_weight = 1, .split = NEURON_SPLIT_MATMUL,
		.check = neuron_check_matmul, .exec = neuron_exec_matmul,
	},
	[NEURON_OP_REDUCE] = {
		.name = "REDUCE", .sub_names = reduce_names, .kind = NEURON_INSN_COMPUTE,
		.operands = 2, .subs = NEURON_RED_COUNT, .flags = NEURON_REDUCE_LAST_INDEX,
		.cost = NEURON_COST_ROWS, .slice_weight = 64,
		.split = NEURON_SPLIT_ROWS, .split_operands = 0x3,
		.check = neuron_check_reduce, .exec = neuron_exec_rows,
	},
	[NEURON_OP_SOFTMAX] = {
		.name = "SOFTMAX", .kind = NEURON_INSN_COMPUTE, .operands = 2,
		.flags = NEURON_ROW_SUM_LANES,
		.cost = NEURON_COST_ROWS, .slice_weight = 64,
		.split = NEURON_SPLIT_ROWS, .split_operands = 0x3,
		.check = neuron_check_softmax, .exec = neuron_exec_rows,
	},
	[NEURON_OP_CAST] = {
		.name = "CAST", .kind = NEURON_INSN_COMPUTE, .operands = 2,
		.flags = NEURON_CAST_WRAP | NEURON_CAST_NO_SATURATE | NEURON_CAST_E8M0_UP |
			 NEURON_CAST_E8M0_DOWN,
		.cost = NEURON_COST_OUTPUT, .slice_weight = 64,
		.split = NEURON_SPLIT_ELEMENTS, .split_operands = 0x3,
		.check = neuron_check_cast, .exec = neuron_exec_cast,
	},
	[NEURON_OP_GATHER] = {
		/* out[i..., :] = table[indices[i...], :]: the table is not cut */
		.name = "GATHER", .kind = NEURON_INSN_COMPUTE, .operands = 3,
		.cost = NEURON_COST_OUTPUT, .slice_weight = 64,
		.split = NEURON_SPLIT_ROWS, .split_operands = 0x5,
		.check = neuron_check_gather, .exec = neuron_exec_gather,
	},
	[NEURON_OP_LAYERNORM] = {
		/* scale and shift (operands 2 and 3) run along the last axis */
		.name = "LAYERNORM", .kind = NEURON_INSN_COMPUTE, .operands = 4, .fparams = 1,
		.flags = NEURON_ROW_SUM_LANES,
		.cost = NEURON_COST_ROWS, .slice_weight = 64,
		.split = NEURON_SPLIT_ROWS, .split_operands = 0x3,
		.check = neuron_check_layernorm, .exec = neuron_exec_layernorm,
	},
	[NEURON_OP_CONV2D] = {
		.name = "CONV2D", .kind = NEURON_INSN_COMPUTE, .operands = 3, .iparams = 8,
		.fparams = 1,
		.flags = NEURON_CONV_BIAS | NEURON_CONV_RELU | NEURON_CONV_PACKED |
			 NEURON_CONV_ACCUMULATE | NEURON_CONV_WINOGRAD | NEURON_CONV_BF16_PAIRS |
			 NEURON_CONV_CLAMP,
		.bias_flag = NEURON_CONV_BIAS,
		.cost = NEURON_COST_CONV, .slice_weight = 1, .split = NEURON_SPLIT_WINDOW,
		.check = neuron_check_conv2d, .exec = neuron_exec_conv2d,
	},
	[NEURON_OP_POOL2D] = {
		.name = "POOL2D", .sub_names = pool_names, .kind = NEURON_INSN_COMPUTE,
		.operands = 2, .subs = NEURON_POOL_COUNT, .iparams = 8,
		.flags = NEURON_POOL_COUNT_PAD,
		.cost = NEURON_COST_POOL, .slice_weight = 1, .split = NEURON_SPLIT_WINDOW,
		.check = neuron_check_pool2d, .exec = neuron_exec_pool2d,
	},
	SYNC(SEM_SIGNAL),
	SYNC(SEM_WAIT),
	SYNC(BARRIER),
	[NEURON_OP_COMPARE] = {
		.name = "COMPARE", .sub_names = compare_names, .kind = NEURON_INSN_COMPUTE,
		.operands = 3, .subs = NEURON_CMP_COUNT,
		.cost = NEURON_COST_OUTPUT, .slice_weight = 64,
		.split = NEURON_SPLIT_ELEMENTS, .split_operands = 0x7,
		.check = neuron_check_compare, .exec = neuron_exec_compare,
	},
	[NEURON_OP_SELECT] = {
		/* out = cond ? a : b, cond (operand 1) bool */
		.name = "SELECT", .kind = NEURON_INSN_COMPUTE, .operands = 4,
		.cost = NEURON_COST_OUTPUT, .slice_weight = 64,
		.split = NEURON_SPLIT_ELEMENTS, .split_operands = 0xf,
		.check = neuron_check_select, .exec = neuron_exec_select,
	},
	[NEURON_OP_SCATTER] = {
		/* out[indices[i]] <sub>= updates[i], in order: one part */
		.name = "SCATTER", .sub_names = scatter_names, .kind = NEURON_INSN_COMPUTE,
		.operands = 3, .subs = NEURON_SCATTER_COUNT,
		.cost = NEURON_COST_ROWS, .slice_weight = 64, .split = NEURON_SPLIT_NONE,
		.check = neuron_check_scatter, .exec = neuron_exec_scatter,
	},
	[NEURON_OP_TOPK] = {
		/* out = the indices of each row's first k, in order */
		.name = "TOPK", .sub_names = topk_names, .kind = NEURON_INSN_COMPUTE,
		.operands = 2, .subs = NEURON_TOPK_COUNT,
		.cost = NEURON_COST_TOPK, .slice_weight = 64,
		.split = NEURON_SPLIT_ROWS, .split_operands = 0x3,
		.check = neuron_check_topk, .exec = neuron_exec_topk,
	},
};

const struct neuron_insn_info *neuron_engine_insn_info(u32 opcode)
{
	return opcode < NEURON_OP_COUNT && insn_table[opcode].name ? &insn_table[opcode] : NULL;
}

int neuron_engine_insn_is_sync(const struct neuron_insn *in)
{
	const struct neuron_insn_info *info = neuron_engine_insn_info(in->opcode);

	return info && info->kind == NEURON_INSN_SYNC;
}

u32 neuron_engine_insn_operands(const struct neuron_insn *in)
{
	const struct neuron_insn_info *info = neuron_engine_insn_info(in->opcode);

	if (!info)
		return 0;
	return info->bias_flag && (in->flags & info->bias_flag) ? 4 : info->operands;
}
