// SPDX-License-Identifier: GPL-2.0
/*
 * The C side of libnrt: building nrt_tensor_info_array_t, whose layout
 * only C knows. The API itself is implemented in Swift (NeuronRT).
 */
#include <stdlib.h>
#include <string.h>

#include "nrt.h"
#include "nrt_internal.h"

nrt_tensor_info_array_t *nrt_info_alloc(uint64_t count)
{
	nrt_tensor_info_array_t *a = calloc(1, sizeof(*a) + count * sizeof(a->tensor_array[0]));

	if (a)
		a->tensor_count = count;
	return a;
}

int nrt_info_set(nrt_tensor_info_array_t *a, uint64_t i, const char *name, int usage, size_t size,
		 int dtype, const uint32_t *shape, uint32_t ndim)
{
	nrt_tensor_info_t *t = &a->tensor_array[i];

	strncpy(t->name, name, NRT_TENSOR_NAME_MAX - 1);
	t->usage = (nrt_tensor_usage_t)usage;
	t->size = size;
	t->dtype = (nrt_dtype_t)dtype;
	t->ndim = ndim;
	t->shape = calloc(ndim ? ndim : 1, sizeof(uint32_t));
	if (!t->shape)
		return -1;
	memcpy(t->shape, shape, ndim * sizeof(uint32_t));
	return 0;
}

void nrt_info_free(nrt_tensor_info_array_t *a)
{
	uint64_t i;

	if (!a)
		return;
	for (i = 0; i < a->tensor_count; i++)
		free(a->tensor_array[i].shape);
	free(a);
}
