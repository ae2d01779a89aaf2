// SPDX-License-Identifier: GPL-2.0
/* Nothing: the header declares libFuzzer's driver (a target needs a source). */
#include "fuzzer_driver.h"
