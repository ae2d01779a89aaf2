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

ABI_STRUCT(neuron_driver_info);
ABI_STRUCT(neuron_device_info);
ABI_STRUCT(neuron_process_info);
ABI_STRUCT(neuron_process_list);
ABI_STRUCT(neuron_mem_alloc);
ABI_STRUCT(neuron_mem_free);
ABI_STRUCT(neuron_mem_info);
ABI_STRUCT(neuron_mem_copy);
ABI_STRUCT(neuron_mem_set);
ABI_STRUCT(neuron_core_reserve);
ABI_STRUCT(neuron_job_submit);
ABI_STRUCT(neuron_job_wait);
ABI_STRUCT(neuron_queue_info);
ABI_STRUCT(neuron_program_header);
ABI_STRUCT(neuron_tensor_desc);
ABI_STRUCT(neuron_insn);
