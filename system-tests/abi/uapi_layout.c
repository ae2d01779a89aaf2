// SPDX-License-Identifier: GPL-2.0
/*
 * Compiled with -g by scripts/check-abi, which runs pahole over it: every
 * uapi structure must be free of holes and tail padding, and its size
 * a multiple of 8, so that 32- and 64-bit callers see one layout.
 */
#include "uapi/neuron.h"
#include "uapi/neuron_isa.h"

#define ABI_STRUCT(s)							\
	_Static_assert(sizeof(struct s) % 8 == 0, #s " size");	\
	struct s abi_##s

/* Every command's argument, from the uapi's one list of commands. */
#define ABI_IOCTL(NAME, lower, type)						\
	_Static_assert(sizeof(struct type) % 8 == 0, #type " size");		\
	_Static_assert(_IOC_SIZE(NEURON_IOCTL_##NAME) == sizeof(struct type),	\
		       #NAME " carries struct " #type);			\
	struct type abi_##lower;
NEURON_IOCTL_LIST(ABI_IOCTL)

/* And the structures inside them. */
ABI_STRUCT(neuron_process_info);
ABI_STRUCT(neuron_trace_header);
ABI_STRUCT(neuron_trace_record);
ABI_STRUCT(neuron_program_header);
ABI_STRUCT(neuron_tensor_desc);
ABI_STRUCT(neuron_insn);
