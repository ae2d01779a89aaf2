// SPDX-License-Identifier: GPL-2.0
/*
 * neuron: the fake backend. Creates fake_devices software-backed devices
 * of fake_cores NeuronCores and fake_memory_mb MiB each. Memory is
 * committed lazily, so a device's size costs no host memory until
 * buffers exist. The devices are linked in a ring, as on Inf1: device i
 * links to devices i-1 and i+1.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/err.h>
#include <linux/nodemask.h>
#include <linux/slab.h>

#include "neuron_drv.h"

struct neuron_fake {
	unsigned int ordinal;		/* 0..fake_devices-1 */
};

static struct neuron_device *neuron_fake_devs[16];
static unsigned int neuron_fake_count;

static void neuron_fake_release(struct neuron_device *nd)
{
	kfree(nd->priv);
}

static const struct neuron_device_ops neuron_fake_ops = {
	.platform = NEURON_PLATFORM_FAKE,
	.release = neuron_fake_release,
};

/* A serial that depends only on the ordinal: the same on every load. */
static void neuron_fake_serial(char *buf, size_t len, unsigned int ordinal)
{
	u64 z = 0x6e6575726f6e0000ULL + ordinal;	/* "neuron" */

	/* splitmix64 finaliser */
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	snprintf(buf, len, "FAKE%012llx", z & 0xffffffffffffULL);
}

static void neuron_fake_ring(struct neuron_device_desc *desc,
			     unsigned int ordinal, unsigned int n)
{
	unsigned int prev = (ordinal + n - 1) % n;
	unsigned int next = (ordinal + 1) % n;

	desc->connected_count = 0;
	if (n < 2)
		return;
	desc->connected[desc->connected_count++] = prev;
	if (next != prev)
		desc->connected[desc->connected_count++] = next;
}

int neuron_fake_init(void)
{
	unsigned int n = neuron_fake_devices;
	unsigned int i;

	BUILD_BUG_ON(ARRAY_SIZE(neuron_fake_devs) < 16);

	for (i = 0; i < n; i++) {
		struct neuron_device_desc desc = {
			.ops = &neuron_fake_ops,
			.core_count = neuron_fake_cores,
			.memory_size = (u64)neuron_fake_memory_mb << 20,
			.numa_node = first_online_node,
		};
		struct neuron_fake *fake;
		struct neuron_device *nd;

		fake = kzalloc(sizeof(*fake), GFP_KERNEL);
		if (!fake)
			goto fail_nomem;
		fake->ordinal = i;
		desc.priv = fake;
		neuron_fake_serial(desc.serial, sizeof(desc.serial), i);
		neuron_fake_ring(&desc, i, n);

		nd = neuron_device_create(&desc);
		if (IS_ERR(nd)) {
			kfree(fake);
			neuron_fake_exit();
			return PTR_ERR(nd);
		}
		neuron_fake_devs[neuron_fake_count++] = nd;
	}
	if (n)
		pr_info("%u fake device(s), %u NeuronCores and %u MiB each\n",
			n, neuron_fake_cores, neuron_fake_memory_mb);
	return 0;

fail_nomem:
	neuron_fake_exit();
	return -ENOMEM;
}

void neuron_fake_exit(void)
{
	while (neuron_fake_count)
		neuron_device_destroy(neuron_fake_devs[--neuron_fake_count]);
}
