// SPDX-License-Identifier: GPL-2.0
/*
 * nrt_test: a C program against libnrt.so and nrt.h, as an application
 * written for AWS's runtime would use it. Loads the NEFF at argv[1] (the
 * example MLP: input x [8, 256], output probs [8, 10]), runs it, checks
 * the outputs (softmax rows: each in [0, 1], summing to 1, the same on a
 * second run), and bad calls. Prints PASS/FAIL lines; exits non-zero on
 * any failure.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nrt.h"

static int failures;

#define CHECK(cond, name, ...) do {						\
	if (cond) {								\
		printf("PASS capi.%s\n", name);					\
	} else {								\
		failures++;							\
		printf("FAIL capi.%s: ", name);					\
		printf(__VA_ARGS__);						\
		printf("\n");							\
	}									\
} while (0)

static void *read_file(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	void *data;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	data = malloc(n > 0 ? (size_t)n : 1);
	if (data && fread(data, 1, (size_t)n, f) != (size_t)n) {
		free(data);
		data = NULL;
	}
	fclose(f);
	*size = (size_t)n;
	return data;
}

int main(int argc, char **argv)
{
	nrt_tensor_info_array_t *info = NULL;
	nrt_tensor_t *x = NULL, *probs = NULL, *got = NULL;
	nrt_tensor_set_t *in = NULL, *out = NULL;
	nrt_model_t *model = NULL;
	uint32_t total = 0, visible = 0;
	float input[8 * 256], first[80], second[80];
	size_t size, i;
	NRT_STATUS st;
	void *neff;
	int ok;

	if (argc != 2) {
		fprintf(stderr, "usage: %s MODEL.neff\n", argv[0]);
		return 2;
	}
	neff = read_file(argv[1], &size);
	CHECK(neff != NULL, "read_neff", "cannot read %s", argv[1]);
	if (!neff)
		return 1;

	CHECK(nrt_get_total_nc_count(&total) == NRT_UNINITIALIZED, "uninitialized", "counted before nrt_init");
	st = nrt_init(NRT_FRAMEWORK_TYPE_NO_FW, "", "");
	CHECK(st == NRT_SUCCESS, "init", "%s", nrt_get_status_as_str(st));
	CHECK(nrt_get_total_nc_count(&total) == NRT_SUCCESS && total >= 1, "total_nc_count", "%u", total);
	CHECK(nrt_get_visible_nc_count(&visible) == NRT_SUCCESS && visible >= 1 && visible <= total,
	      "visible_nc_count", "%u of %u", visible, total);

	st = nrt_load(neff, size / 2, -1, 1, &model);
	CHECK(st == NRT_INVALID, "load_truncated_invalid", "%s", nrt_get_status_as_str(st));
	st = nrt_load(neff, size, -1, 1, &model);
	CHECK(st == NRT_SUCCESS, "load", "%s", nrt_get_status_as_str(st));
	if (st != NRT_SUCCESS)
		return 1;

	st = nrt_get_model_tensor_info(model, &info);
	CHECK(st == NRT_SUCCESS && info->tensor_count == 2 &&
	      !strcmp(info->tensor_array[0].name, "x") && info->tensor_array[0].usage == NRT_TENSOR_USAGE_INPUT &&
	      info->tensor_array[0].size == sizeof(input) && info->tensor_array[0].ndim == 2 &&
	      info->tensor_array[0].shape[1] == 256 &&
	      !strcmp(info->tensor_array[1].name, "probs") && info->tensor_array[1].size == sizeof(first),
	      "model_tensor_info", "%s", nrt_get_status_as_str(st));
	nrt_free_model_tensor_info(info);

	for (i = 0; i < 8 * 256; i++)
		input[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
	ok = nrt_tensor_allocate(NRT_TENSOR_PLACEMENT_DEVICE, 0, sizeof(input), "x", &x) == NRT_SUCCESS &&
	     nrt_tensor_allocate(NRT_TENSOR_PLACEMENT_DEVICE, 0, sizeof(first), "probs", &probs) == NRT_SUCCESS &&
	     nrt_tensor_get_size(x) == sizeof(input);
	CHECK(ok, "tensor_allocate", "failed");
	CHECK(nrt_tensor_write(x, input, 0, sizeof(input)) == NRT_SUCCESS, "tensor_write", "failed");
	CHECK(nrt_tensor_write(x, input, 8, sizeof(input)) == NRT_INVALID, "tensor_write_past_end", "accepted");
	ok = nrt_allocate_tensor_set(&in) == NRT_SUCCESS && nrt_allocate_tensor_set(&out) == NRT_SUCCESS &&
	     nrt_add_tensor_to_tensor_set(in, "x", x) == NRT_SUCCESS &&
	     nrt_add_tensor_to_tensor_set(out, "probs", probs) == NRT_SUCCESS &&
	     nrt_get_tensor_from_tensor_set(in, "x", &got) == NRT_SUCCESS && got == x;
	CHECK(ok, "tensor_sets", "failed");

	st = nrt_execute(model, in, out);
	CHECK(st == NRT_SUCCESS, "execute", "%s", nrt_get_status_as_str(st));
	nrt_tensor_read(probs, first, 0, sizeof(first));
	ok = 1;
	for (i = 0; i < 8; i++) {
		float sum = 0;
		size_t j;

		for (j = 0; j < 10; j++) {
			ok &= first[i * 10 + j] >= 0 && first[i * 10 + j] <= 1;
			sum += first[i * 10 + j];
		}
		ok &= fabsf(sum - 1) < 1e-5f;
	}
	CHECK(ok, "outputs_are_softmax_rows", "probs[0] = %g", first[0]);
	st = nrt_execute(model, in, out);
	nrt_tensor_read(probs, second, 0, sizeof(second));
	CHECK(st == NRT_SUCCESS && !memcmp(first, second, sizeof(first)), "execute_deterministic", "differs");

	st = nrt_execute(model, out, in);
	CHECK(st == NRT_EXEC_BAD_INPUT, "execute_swapped_sets_bad_input", "%s", nrt_get_status_as_str(st));
	CHECK(nrt_execute(NULL, in, out) == NRT_INVALID_HANDLE, "execute_null_model", "accepted");
	CHECK(!strcmp(nrt_get_status_as_str(NRT_EXEC_BAD_INPUT), "NRT_EXEC_BAD_INPUT") &&
	      !strcmp(nrt_get_status_as_str((NRT_STATUS)12345), "NRT_UNKNOWN_STATUS"), "status_strings", "wrong");

	nrt_destroy_tensor_set(&in);
	nrt_destroy_tensor_set(&out);
	nrt_tensor_free(&x);
	nrt_tensor_free(&probs);
	CHECK(x == NULL && probs == NULL, "tensor_free_clears", "not cleared");
	CHECK(nrt_unload(model) == NRT_SUCCESS, "unload", "failed");
	nrt_close();
	free(neff);
	return failures ? 1 : 0;
}
