/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nrt.h - the C API of the Neuron runtime (libnrt.so), after the core of
 * AWS's libnrt: the same names and signatures where they fit.
 *
 * Backend and visible NeuronCores come from the environment:
 * NEURON_BACKEND (kernel or sim), NEURON_RT_VISIBLE_CORES, NEURON_RT_NUM_CORES.
 */
#ifndef NRT_H
#define NRT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum NRT_STATUS {
	NRT_SUCCESS = 0,
	NRT_FAILURE = 1,
	NRT_INVALID = 2,
	NRT_INVALID_HANDLE = 3,
	NRT_RESOURCE = 4,
	NRT_TIMEOUT = 5,
	NRT_HW_ERROR = 6,
	NRT_QUEUE_FULL = 7,
	NRT_LOAD_NOT_ENOUGH_NC = 9,
	NRT_UNSUPPORTED_NEFF_VERSION = 10,
	NRT_UNINITIALIZED = 13,
	NRT_CLOSED = 14,
	NRT_EXEC_BAD_INPUT = 1002,
	NRT_EXEC_COMPLETED_WITH_NUM_ERR = 1003,
	NRT_EXEC_COMPLETED_WITH_ERR = 1004,
	NRT_EXEC_NC_BUSY = 1005,
} NRT_STATUS;

typedef enum nrt_framework_type {
	NRT_FRAMEWORK_TYPE_INVALID = 0,
	NRT_FRAMEWORK_TYPE_NO_FW = 1,
} nrt_framework_type_t;

typedef enum nrt_tensor_placement {
	NRT_TENSOR_PLACEMENT_DEVICE = 0,
	NRT_TENSOR_PLACEMENT_HOST = 1,
} nrt_tensor_placement_t;

typedef enum nrt_tensor_usage {
	NRT_TENSOR_USAGE_INPUT = 0,
	NRT_TENSOR_USAGE_OUTPUT = 1,
} nrt_tensor_usage_t;

/* The engine's element types (neuron_isa.h's enum neuron_dtype), value for value. */
typedef enum nrt_dtype {
	NRT_DTYPE_FLOAT32 = 1,
	NRT_DTYPE_BFLOAT16 = 2,
	NRT_DTYPE_INT32 = 3,
	NRT_DTYPE_INT64 = 4,
	NRT_DTYPE_FLOAT16 = 5,
	NRT_DTYPE_FLOAT64 = 6,
	NRT_DTYPE_INT8 = 7,
	NRT_DTYPE_UINT8 = 8,
	NRT_DTYPE_INT16 = 9,
	NRT_DTYPE_UINT16 = 10,
	NRT_DTYPE_UINT32 = 11,
	NRT_DTYPE_UINT64 = 12,
	NRT_DTYPE_BOOL = 13,	/* one byte, 0 false, anything else true */
	/* One byte each: float8 and float4 codes, four- and two-bit integers in the low bits. */
	NRT_DTYPE_FLOAT8_E4M3FN = 14,
	NRT_DTYPE_FLOAT8_E4M3FNUZ = 15,
	NRT_DTYPE_FLOAT8_E5M2 = 16,
	NRT_DTYPE_FLOAT8_E5M2FNUZ = 17,
	NRT_DTYPE_FLOAT8_E8M0FNU = 18,
	NRT_DTYPE_FLOAT4_E2M1FN = 19,
	NRT_DTYPE_INT4 = 20,
	NRT_DTYPE_UINT4 = 21,
	NRT_DTYPE_INT2 = 22,
	NRT_DTYPE_UINT2 = 23,
} nrt_dtype_t;

#define NRT_TENSOR_NAME_MAX 256

typedef struct nrt_tensor_info {
	char name[NRT_TENSOR_NAME_MAX];
	nrt_tensor_usage_t usage;
	size_t size;			/* bytes */
	nrt_dtype_t dtype;
	uint32_t *shape;
	uint32_t ndim;
} nrt_tensor_info_t;

typedef struct nrt_tensor_info_array {
	uint64_t tensor_count;
	nrt_tensor_info_t tensor_array[];
} nrt_tensor_info_array_t;

typedef struct nrt_model nrt_model_t;
typedef struct nrt_tensor nrt_tensor_t;
typedef struct nrt_tensor_set nrt_tensor_set_t;

NRT_STATUS nrt_init(nrt_framework_type_t framework, const char *fw_version, const char *fal_version);
void nrt_close(void);

NRT_STATUS nrt_get_total_nc_count(uint32_t *nc_count);
NRT_STATUS nrt_get_visible_nc_count(uint32_t *nc_count);

/* Load a NEFF (its bytes) on nc_count NeuronCores from visible core
 * start_nc (-1: the first free group). */
NRT_STATUS nrt_load(const void *neff_bytes, size_t size, int32_t start_nc, int32_t nc_count,
		    nrt_model_t **model);
NRT_STATUS nrt_unload(nrt_model_t *model);
NRT_STATUS nrt_execute(nrt_model_t *model, const nrt_tensor_set_t *input_set,
		       nrt_tensor_set_t *output_set);

NRT_STATUS nrt_get_model_tensor_info(nrt_model_t *model, nrt_tensor_info_array_t **tensor_info);
NRT_STATUS nrt_free_model_tensor_info(nrt_tensor_info_array_t *tensor_info);

NRT_STATUS nrt_tensor_allocate(nrt_tensor_placement_t placement, int logical_nc_id, size_t size,
			       const char *name, nrt_tensor_t **tensor);
void nrt_tensor_free(nrt_tensor_t **tensor);
NRT_STATUS nrt_tensor_read(const nrt_tensor_t *tensor, void *buf, size_t offset, size_t size);
NRT_STATUS nrt_tensor_write(nrt_tensor_t *tensor, const void *buf, size_t offset, size_t size);
size_t nrt_tensor_get_size(const nrt_tensor_t *tensor);

NRT_STATUS nrt_allocate_tensor_set(nrt_tensor_set_t **result);
void nrt_destroy_tensor_set(nrt_tensor_set_t **tensor_set);
NRT_STATUS nrt_add_tensor_to_tensor_set(nrt_tensor_set_t *tensor_set, const char *tensor_name,
					nrt_tensor_t *tensor);
NRT_STATUS nrt_get_tensor_from_tensor_set(nrt_tensor_set_t *tensor_set, const char *tensor_name,
					  nrt_tensor_t **tensor);

const char *nrt_get_status_as_str(NRT_STATUS status);

#ifdef __cplusplus
}
#endif

#endif /* NRT_H */
