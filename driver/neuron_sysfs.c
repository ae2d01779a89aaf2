// SPDX-License-Identifier: GPL-2.0
/*
 * neuron: sysfs attributes of /sys/class/neuron_device/neuronN and of its
 * NeuronCores (neuronN/neuron_coreM/). Documented in
 * docs/sysfs-class-neuron_device.
 */
#include <linux/device.h>
#include <linux/kernel.h>
#include <linux/sysfs.h>

#include "neuron_drv.h"

static const char *neuron_platform_name(enum neuron_platform platform)
{
	switch (platform) {
	case NEURON_PLATFORM_FAKE:
		return "fake";
	case NEURON_PLATFORM_INF1:
		return "inf1";
	}
	return "unknown";
}

static ssize_t core_count_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", to_neuron_device(dev)->core_count);
}
static DEVICE_ATTR_RO(core_count);

static ssize_t memory_total_show(struct device *dev,
				 struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%llu\n", to_neuron_device(dev)->memory_size);
}
static DEVICE_ATTR_RO(memory_total);

static ssize_t memory_used_show(struct device *dev,
				struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%llu\n",
			  READ_ONCE(to_neuron_device(dev)->memory_used));
}
static DEVICE_ATTR_RO(memory_used);

static ssize_t memory_peak_show(struct device *dev,
				struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%llu\n",
			  READ_ONCE(to_neuron_device(dev)->memory_peak));
}
static DEVICE_ATTR_RO(memory_peak);

static ssize_t host_memory_used_show(struct device *dev,
				     struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%llu\n",
			  READ_ONCE(to_neuron_device(dev)->host_memory_used));
}
static DEVICE_ATTR_RO(host_memory_used);

static ssize_t host_memory_peak_show(struct device *dev,
				     struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%llu\n",
			  READ_ONCE(to_neuron_device(dev)->host_memory_peak));
}
static DEVICE_ATTR_RO(host_memory_peak);

static ssize_t platform_show(struct device *dev,
			     struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%s\n",
			  neuron_platform_name(to_neuron_device(dev)->ops->platform));
}
static DEVICE_ATTR_RO(platform);

static ssize_t serial_show(struct device *dev,
			   struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%s\n", to_neuron_device(dev)->serial);
}
static DEVICE_ATTR_RO(serial);

static ssize_t connected_devices_show(struct device *dev,
				      struct device_attribute *attr, char *buf)
{
	struct neuron_device *nd = to_neuron_device(dev);
	unsigned int i;
	int len = 0;

	for (i = 0; i < nd->connected_count; i++)
		len += sysfs_emit_at(buf, len, "%s%u", i ? " " : "",
				     nd->connected[i]);
	len += sysfs_emit_at(buf, len, "\n");
	return len;
}
static DEVICE_ATTR_RO(connected_devices);

static ssize_t numa_node_show(struct device *dev,
			      struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n", to_neuron_device(dev)->numa_node);
}
static DEVICE_ATTR_RO(numa_node);

static ssize_t pci_bdf_show(struct device *dev,
			    struct device_attribute *attr, char *buf)
{
	struct neuron_device *nd = to_neuron_device(dev);

	return sysfs_emit(buf, "%s\n", nd->pci_bdf[0] ? nd->pci_bdf : "none");
}
static DEVICE_ATTR_RO(pci_bdf);

static struct attribute *neuron_device_attrs[] = {
	&dev_attr_core_count.attr,
	&dev_attr_memory_total.attr,
	&dev_attr_memory_used.attr,
	&dev_attr_memory_peak.attr,
	&dev_attr_host_memory_used.attr,
	&dev_attr_host_memory_peak.attr,
	&dev_attr_platform.attr,
	&dev_attr_serial.attr,
	&dev_attr_connected_devices.attr,
	&dev_attr_numa_node.attr,
	&dev_attr_pci_bdf.attr,
	NULL,
};

const struct attribute_group neuron_device_group = {
	.attrs = neuron_device_attrs,
};

/* Per-NeuronCore attributes: the dev_ext_attribute's var is the core. */

static struct neuron_core *attr_core(struct device_attribute *attr)
{
	return container_of(attr, struct dev_ext_attribute, attr)->var;
}

static ssize_t core_status_show(struct device *dev,
				struct device_attribute *attr, char *buf)
{
	static const char * const names[] = {
		[NEURON_CORE_IDLE] = "idle",
		[NEURON_CORE_BUSY] = "busy",
		[NEURON_CORE_RESET] = "reset",
	};
	enum neuron_core_state state = READ_ONCE(attr_core(attr)->state);

	if (state >= ARRAY_SIZE(names))
		return sysfs_emit(buf, "unknown\n");
	return sysfs_emit(buf, "%s\n", names[state]);
}

static ssize_t core_jobs_completed_show(struct device *dev,
					struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%lld\n",
			  (long long)atomic64_read(&attr_core(attr)->jobs_completed));
}

static ssize_t core_jobs_failed_show(struct device *dev,
				     struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%lld\n",
			  (long long)atomic64_read(&attr_core(attr)->jobs_failed));
}

static ssize_t core_resets_show(struct device *dev,
				struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%lld\n", (long long)atomic64_read(&attr_core(attr)->resets));
}

static ssize_t core_jobs_queued_show(struct device *dev,
				     struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", READ_ONCE(attr_core(attr)->queued));
}

static ssize_t core_busy_time_us_show(struct device *dev,
				      struct device_attribute *attr, char *buf)
{
	s64 ns = atomic64_read(&attr_core(attr)->busy_ns);

	return sysfs_emit(buf, "%lld\n", (long long)div_s64(ns, NSEC_PER_USEC));
}

static void neuron_core_attr(struct neuron_core_sysfs *s, unsigned int i,
			     const char *name, struct neuron_core *core,
			     ssize_t (*show)(struct device *,
					     struct device_attribute *, char *))
{
	struct dev_ext_attribute *ea = &s->attrs[i];

	sysfs_attr_init(&ea->attr.attr);
	ea->attr.attr.name = name;
	ea->attr.attr.mode = 0444;
	ea->attr.show = show;
	ea->var = core;
	s->attr_list[i] = &ea->attr.attr;
}

void neuron_sysfs_init_core(struct neuron_core *core)
{
	struct neuron_core_sysfs *s = &core->sysfs;

	snprintf(s->name, sizeof(s->name), "neuron_core%u", core->index);
	neuron_core_attr(s, 0, "status", core, core_status_show);
	neuron_core_attr(s, 1, "jobs_completed", core, core_jobs_completed_show);
	neuron_core_attr(s, 2, "busy_time_us", core, core_busy_time_us_show);
	neuron_core_attr(s, 3, "jobs_failed", core, core_jobs_failed_show);
	neuron_core_attr(s, 4, "resets", core, core_resets_show);
	neuron_core_attr(s, 5, "jobs_queued", core, core_jobs_queued_show);
	s->attr_list[6] = NULL;
	s->group.name = s->name;
	s->group.attrs = s->attr_list;
}
