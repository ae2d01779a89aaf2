// SPDX-License-Identifier: GPL-2.0
/*
 * neuron: bulk copies with SIMD registers, through GCC vector extensions
 * and per-function target attributes (no intrinsics headers), chosen at
 * run time by CPU feature. This file alone is built with SSE enabled
 * (see Kbuild); its functions run only inside kernel_fpu_begin/end.
 *
 * Why: the generic user copies use "rep movsb", which is fast on silicon
 * but crawls under emulation (QEMU TCG, where fake devices are tested);
 * vector moves are fast on both.
 */
#include <asm/cpufeature.h>

#include "neuron_copy.h"

typedef u8 neuron_v32 __attribute__((vector_size(32), aligned(1)));
typedef u8 neuron_v16 __attribute__((vector_size(16), aligned(1)));

/* Keep GCC from turning the byte tails back into calls to memcpy. */
#define NEURON_NO_LIBCALL __attribute__((optimize("no-tree-loop-distribute-patterns")))

static NEURON_NO_LIBCALL __attribute__((target("avx2")))
void neuron_copy_avx2(u8 *d, const u8 *s, size_t n)
{
	while (n >= 128) {
		neuron_v32 a = *(const neuron_v32 *)s;
		neuron_v32 b = *(const neuron_v32 *)(s + 32);
		neuron_v32 c = *(const neuron_v32 *)(s + 64);
		neuron_v32 e = *(const neuron_v32 *)(s + 96);

		*(neuron_v32 *)d = a;
		*(neuron_v32 *)(d + 32) = b;
		*(neuron_v32 *)(d + 64) = c;
		*(neuron_v32 *)(d + 96) = e;
		d += 128;
		s += 128;
		n -= 128;
	}
	while (n >= 32) {
		*(neuron_v32 *)d = *(const neuron_v32 *)s;
		d += 32;
		s += 32;
		n -= 32;
	}
	while (n--)
		*d++ = *s++;
}

static NEURON_NO_LIBCALL
void neuron_copy_sse2(u8 *d, const u8 *s, size_t n)
{
	while (n >= 64) {
		neuron_v16 a = *(const neuron_v16 *)s;
		neuron_v16 b = *(const neuron_v16 *)(s + 16);
		neuron_v16 c = *(const neuron_v16 *)(s + 32);
		neuron_v16 e = *(const neuron_v16 *)(s + 48);

		*(neuron_v16 *)d = a;
		*(neuron_v16 *)(d + 16) = b;
		*(neuron_v16 *)(d + 32) = c;
		*(neuron_v16 *)(d + 48) = e;
		d += 64;
		s += 64;
		n -= 64;
	}
	while (n >= 16) {
		*(neuron_v16 *)d = *(const neuron_v16 *)s;
		d += 16;
		s += 16;
		n -= 16;
	}
	while (n--)
		*d++ = *s++;
}

void neuron_simd_copy(void *dst, const void *src, size_t n)
{
	if (boot_cpu_has(X86_FEATURE_AVX2))
		neuron_copy_avx2(dst, src, n);
	else
		neuron_copy_sse2(dst, src, n);
}
