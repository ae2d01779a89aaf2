/* SPDX-License-Identifier: GPL-2.0 */
/* Helpers of libnrt's Swift side; not part of the API. */
#ifndef NRT_INTERNAL_H
#define NRT_INTERNAL_H

#include "nrt.h"

nrt_tensor_info_array_t *nrt_info_alloc(uint64_t count);
int nrt_info_set(nrt_tensor_info_array_t *a, uint64_t i, const char *name, int usage, size_t size,
		 int dtype, const uint32_t *shape, uint32_t ndim);
void nrt_info_free(nrt_tensor_info_array_t *a);

#endif
