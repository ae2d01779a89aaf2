/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The engine's port header: the only place it touches its environment.
 * Kernel builds get the kernel's fixed-width types; userspace builds get
 * them from the compiler's own freestanding headers. No libc is used.
 */
#ifndef NEURON_ENGINE_PORT_H
#define NEURON_ENGINE_PORT_H

#ifdef __KERNEL__
#include <linux/types.h>
#include <asm/cpufeature.h>

static inline int neuron_cpu_has_fma(void)
{
	return boot_cpu_has(X86_FEATURE_FMA);
}

static inline int neuron_cpu_has_avx2_fma(void)
{
	return boot_cpu_has(X86_FEATURE_AVX2) && boot_cpu_has(X86_FEATURE_FMA);
}

static inline int neuron_cpu_has_avx512f(void)
{
	return boot_cpu_has(X86_FEATURE_AVX512F);
}

static inline int neuron_cpu_has_avx512bf16(void)
{
	return boot_cpu_has(X86_FEATURE_AVX512F) && boot_cpu_has(X86_FEATURE_AVX512_BF16);
}
#else
#include <stddef.h>
#include <stdint.h>
typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int8_t s8;
typedef int16_t s16;
typedef int32_t s32;
typedef int64_t s64;
#include <linux/types.h>

static inline int neuron_cpu_has_fma(void)
{
	return __builtin_cpu_supports("fma");
}

static inline int neuron_cpu_has_avx2_fma(void)
{
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

static inline int neuron_cpu_has_avx512f(void)
{
	return __builtin_cpu_supports("avx512f");
}

static inline int neuron_cpu_has_avx512bf16(void)
{
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
}

/*
 * Whether this process may use AMX-BF16's tiles: the CPU has them and the
 * kernel grants the process their state, arch_prctl(ARCH_REQ_XCOMP_PERM,
 * XFEATURE_XTILEDATA), asked with a raw system call (no libc). Userspace
 * only: the kernel's own code cannot use AMX.
 */
#define NEURON_ARCH_PRCTL		158
#define NEURON_ARCH_REQ_XCOMP_PERM	0x1023
#define NEURON_XFEATURE_XTILEDATA	18

static inline int neuron_amx_request(void)
{
	long ret;

	if (!__builtin_cpu_supports("amx-tile") || !__builtin_cpu_supports("amx-bf16"))
		return 0;
	__asm__ volatile("syscall" : "=a"(ret)
			 : "0"((long)NEURON_ARCH_PRCTL), "D"((long)NEURON_ARCH_REQ_XCOMP_PERM),
			   "S"((long)NEURON_XFEATURE_XTILEDATA)
			 : "rcx", "r11", "memory");
	return ret == 0;
}
#endif

/* sparse does not know every compiler builtin the engine uses. */
#ifdef __CHECKER__
float __builtin_sqrtf(float x);
#endif

#endif /* NEURON_ENGINE_PORT_H */
