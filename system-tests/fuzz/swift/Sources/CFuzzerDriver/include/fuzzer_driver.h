/* SPDX-License-Identifier: GPL-2.0 */
/*
 * libFuzzer's entry for programs that have their own main: SwiftPM names
 * an executable's entry point itself (main is an alias of it), so the
 * fuzz targets call the driver from their top-level code instead of
 * linking libFuzzer's main.
 */
#ifndef FUZZER_DRIVER_H
#define FUZZER_DRIVER_H
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv,
			int (*one_input)(const uint8_t *data, size_t size));

#endif
