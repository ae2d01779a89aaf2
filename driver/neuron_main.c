// SPDX-License-Identifier: GPL-2.0
/*
 * neuron: module entry, parameters and backend start-up.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/moduleparam.h>

#include "neuron_drv.h"

/*
 * An unsigned parameter with a range. Setting it outside the range, at
 * load time or later through /sys/module/neuron/parameters, fails with
 * -EINVAL and says why in the kernel log; a load with a bad value fails.
 */
struct neuron_uint_param {
	const char *name;
	unsigned int min;
	unsigned int max;
	unsigned int *value;
};

static int neuron_param_set(const char *val, const struct kernel_param *kp)
{
	const struct neuron_uint_param *p = kp->arg;
	unsigned int v;
	int ret;

	ret = kstrtouint(val, 0, &v);
	if (ret) {
		pr_err("%s=%s is not a number; expected %u..%u\n",
		       p->name, val, p->min, p->max);
		return -EINVAL;
	}
	if (v < p->min || v > p->max) {
		pr_err("%s=%u is out of range; expected %u..%u\n",
		       p->name, v, p->min, p->max);
		return -EINVAL;
	}
	WRITE_ONCE(*p->value, v);
	return 0;
}

static int neuron_param_get(char *buf, const struct kernel_param *kp)
{
	const struct neuron_uint_param *p = kp->arg;

	return sysfs_emit(buf, "%u\n", READ_ONCE(*p->value));
}

static const struct kernel_param_ops neuron_param_ops = {
	.set = neuron_param_set,
	.get = neuron_param_get,
};

#define NEURON_PARAM(var, pname, lo, hi, perm, desc)			\
	static struct neuron_uint_param var##_param = {			\
		.name = #pname, .min = (lo), .max = (hi), .value = &(var), \
	};								\
	module_param_cb(pname, &neuron_param_ops, &var##_param, perm);	\
	MODULE_PARM_DESC(pname, desc " (" #lo "-" #hi ")")

unsigned int neuron_fake_devices;
unsigned int neuron_fake_cores = 4;
unsigned int neuron_fake_memory_mb = 8192;
static unsigned int job_timeout_ms = 10000;

NEURON_PARAM(neuron_fake_devices, fake_devices, 0, 16, 0444,
	     "Number of software-backed fake devices to create, default 0");
NEURON_PARAM(neuron_fake_cores, fake_cores, 1, 8, 0444,
	     "NeuronCores per fake device, default 4");
NEURON_PARAM(neuron_fake_memory_mb, fake_memory_mb, 1, 1048576, 0444,
	     "Device memory per fake device in MiB, committed lazily, default 8192");
NEURON_PARAM(job_timeout_ms, job_timeout_ms, 10, 3600000, 0644,
	     "Time in ms after which a running job is aborted, default 10000");

unsigned int neuron_job_timeout_ms(void)
{
	return READ_ONCE(job_timeout_ms);
}

static int __init neuron_init(void)
{
	int ret;

	ret = neuron_class_init();
	if (ret)
		return ret;

	ret = neuron_fake_init();
	if (ret) {
		neuron_class_exit();
		return ret;
	}

	pr_info("driver %s loaded, API %u.%u, %u device(s)\n",
		NEURON_DRV_VERSION, NEURON_API_VERSION_MAJOR,
		NEURON_API_VERSION_MINOR, neuron_device_count());
	return 0;
}

static void __exit neuron_exit(void)
{
	neuron_fake_exit();
	neuron_class_exit();
}

module_init(neuron_init);
module_exit(neuron_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("NeuronCore accelerator driver (Inferentia-class, with fake devices)");
MODULE_VERSION(NEURON_DRV_VERSION);
