// SPDX-License-Identifier: GPL-2.0
/*
 * neuron: the device registry, the neuron_device class and the character
 * devices /dev/neuronN, shared by every backend.
 *
 * A struct neuron_device lives as long as its struct device: the char
 * device and every open file hold a reference, so a device removed while
 * a file is open stays valid until that file is closed.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/idr.h>
#include <linux/slab.h>

#include "neuron_drv.h"

static dev_t neuron_devt;
static DEFINE_IDA(neuron_ida);
static DEFINE_MUTEX(neuron_devices_lock);
static LIST_HEAD(neuron_devices);
static unsigned int neuron_devices_count;

static struct class neuron_class = {
	.name = NEURON_CLASS_NAME,
};

int neuron_class_init(void)
{
	int ret;

	ret = alloc_chrdev_region(&neuron_devt, 0, NEURON_MAX_DEVICES,
				  NEURON_DRV_NAME);
	if (ret) {
		pr_err("cannot allocate device numbers: %d\n", ret);
		return ret;
	}
	ret = class_register(&neuron_class);
	if (ret) {
		pr_err("cannot register class %s: %d\n", NEURON_CLASS_NAME, ret);
		unregister_chrdev_region(neuron_devt, NEURON_MAX_DEVICES);
		return ret;
	}
	return 0;
}

void neuron_class_exit(void)
{
	class_unregister(&neuron_class);
	unregister_chrdev_region(neuron_devt, NEURON_MAX_DEVICES);
	ida_destroy(&neuron_ida);
}

unsigned int neuron_device_count(void)
{
	unsigned int n;

	mutex_lock(&neuron_devices_lock);
	n = neuron_devices_count;
	mutex_unlock(&neuron_devices_lock);
	return n;
}

static void neuron_device_release(struct device *dev)
{
	struct neuron_device *nd = to_neuron_device(dev);

	if (nd->ops->release)
		nd->ops->release(nd);
	ida_free(&neuron_ida, nd->index);
	mutex_destroy(&nd->lock);
	kfree(nd);
}

struct neuron_device *neuron_device_create(const struct neuron_device_desc *desc)
{
	struct neuron_device *nd;
	unsigned int i;
	int index, ret;

	if (!desc->core_count || desc->core_count > NEURON_MAX_CORES ||
	    desc->connected_count > NEURON_MAX_CONNECTED)
		return ERR_PTR(-EINVAL);

	nd = kzalloc(sizeof(*nd), GFP_KERNEL);
	if (!nd)
		return ERR_PTR(-ENOMEM);

	index = ida_alloc_max(&neuron_ida, NEURON_MAX_DEVICES - 1, GFP_KERNEL);
	if (index < 0) {
		kfree(nd);
		return ERR_PTR(index);
	}

	nd->index = index;
	nd->ops = desc->ops;
	nd->priv = desc->priv;
	nd->core_count = desc->core_count;
	nd->memory_size = desc->memory_size;
	nd->numa_node = desc->numa_node;
	strscpy(nd->serial, desc->serial, sizeof(nd->serial));
	strscpy(nd->pci_bdf, desc->pci_bdf, sizeof(nd->pci_bdf));
	nd->connected_count = desc->connected_count;
	memcpy(nd->connected, desc->connected, sizeof(nd->connected));
	mutex_init(&nd->lock);
	INIT_LIST_HEAD(&nd->files);
	INIT_LIST_HEAD(&nd->node);

	nd->groups[0] = &neuron_device_group;
	for (i = 0; i < nd->core_count; i++) {
		struct neuron_core *core = &nd->cores[i];

		core->nd = nd;
		core->index = i;
		core->state = NEURON_CORE_IDLE;
		atomic64_set(&core->jobs_completed, 0);
		atomic64_set(&core->busy_ns, 0);
		neuron_sysfs_init_core(core);
		nd->groups[i + 1] = &core->sysfs.group;
	}
	for (i = 0; i < nd->core_count; i++)
		neuron_core_init(&nd->cores[i]);

	/* From here on, put_device() frees @nd and its index. */
	device_initialize(&nd->dev);
	nd->dev.class = &neuron_class;
	nd->dev.parent = desc->parent;
	nd->dev.devt = MKDEV(MAJOR(neuron_devt), index);
	nd->dev.groups = nd->groups;
	nd->dev.release = neuron_device_release;
	set_dev_node(&nd->dev, desc->numa_node);
	ret = dev_set_name(&nd->dev, NEURON_DRV_NAME "%d", index);
	if (ret)
		goto err_put;

	cdev_init(&nd->cdev, &neuron_fops);
	nd->cdev.owner = THIS_MODULE;
	ret = cdev_device_add(&nd->cdev, &nd->dev);
	if (ret)
		goto err_put;

	mutex_lock(&neuron_devices_lock);
	list_add_tail(&nd->node, &neuron_devices);
	neuron_devices_count++;
	mutex_unlock(&neuron_devices_lock);
	return nd;

err_put:
	dev_err(&nd->dev, "cannot add device: %d\n", ret);
	/* The backend keeps ownership of @priv when creation fails. */
	nd->priv = NULL;
	put_device(&nd->dev);
	return ERR_PTR(ret);
}

/*
 * Remove the device node and sysfs entries. Open files keep the structure
 * alive; they are released, and the last reference dropped, on close.
 */
void neuron_device_destroy(struct neuron_device *nd)
{
	unsigned int i;

	mutex_lock(&neuron_devices_lock);
	list_del_init(&nd->node);
	neuron_devices_count--;
	mutex_unlock(&neuron_devices_lock);

	cdev_device_del(&nd->cdev, &nd->dev);
	/* Files hold the module, so none is open here: the queues are idle. */
	for (i = 0; i < nd->core_count; i++)
		neuron_core_stop(&nd->cores[i]);
	put_device(&nd->dev);
}
