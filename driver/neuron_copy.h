/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _NEURON_COPY_H
#define _NEURON_COPY_H

#include <linux/types.h>

/*
 * Copy @n bytes with SIMD registers (AVX2 where the CPU has it, else
 * SSE2). Only between kernel_fpu_begin() and kernel_fpu_end().
 */
void neuron_simd_copy(void *dst, const void *src, size_t n);

#endif /* _NEURON_COPY_H */
