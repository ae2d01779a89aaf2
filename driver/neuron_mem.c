// SPDX-License-Identifier: GPL-2.0
/*
 * neuron: device memory. Buffers, their per-file handles, copies in and
 * out, memset, mmap, and the accounting per device and per file.
 *
 * Fake devices back a buffer with host pages allocated on first write or
 * fault (charged to the caller's memory cgroup, refused past what the
 * host can back), so the device's size and untouched buffers cost no
 * host memory. Capacity is enforced in bytes:
 * each buffer has its own window of the device address space (handle <<
 * NEURON_WINDOW_SHIFT), so fragmentation can never make a device with
 * enough free bytes fail an allocation. A backend with real device
 * memory (Inf1) would allocate from a gen_pool over its BAR instead.
 */
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/vmstat.h>
#include <linux/overflow.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/version.h>
#include <linux/vmalloc.h>
#include <asm/fpu/api.h>

#include "neuron_copy.h"
#include "neuron_drv.h"

/* Each buffer owns a 1 TiB window of device addresses and mmap offsets. */
#define NEURON_WINDOW_SHIFT	40
#define NEURON_MAX_HANDLE	((1u << (63 - NEURON_WINDOW_SHIFT)) - 1)
/* Pages copied between checks for signals and rescheduling. */
#define NEURON_COPY_BATCH	256

static void neuron_account(struct neuron_buffer *buf, bool add)
{
	struct neuron_file *nf = buf->owner;
	struct neuron_device *nd = nf->nd;

	lockdep_assert_held(&nd->lock);
	if (buf->placement == NEURON_MEM_HOST) {
		if (add) {
			nd->host_memory_used += buf->size;
			nf->host_memory += buf->size;
		} else {
			nd->host_memory_used -= buf->size;
			nf->host_memory -= buf->size;
		}
		nd->host_memory_peak = max(nd->host_memory_peak, nd->host_memory_used);
		nf->host_memory_peak = max(nf->host_memory_peak, nf->host_memory);
	} else {
		if (add) {
			nd->memory_used += buf->size;
			nf->device_memory += buf->size;
		} else {
			nd->memory_used -= buf->size;
			nf->device_memory -= buf->size;
		}
		nd->memory_peak = max(nd->memory_peak, nd->memory_used);
		nf->device_memory_peak = max(nf->device_memory_peak, nf->device_memory);
	}
}

/* A superseded kernel mapping of a buffer. */
struct neuron_kmap {
	void *addr;
	struct neuron_kmap *next;
};

static void neuron_buffer_release(struct kref *ref)
{
	struct neuron_buffer *buf = container_of(ref, struct neuron_buffer, ref);
	struct neuron_device *nd = buf->owner->nd;
	unsigned long index, freed = 0;
	struct page *page;

	if (buf->kaddr)
		vunmap(buf->kaddr);
	while (buf->old_maps) {
		struct neuron_kmap *m = buf->old_maps;

		buf->old_maps = m->next;
		vunmap(m->addr);
		kfree(m);
	}
	mutex_destroy(&buf->map_lock);
	/*
	 * A buffer may hold most of the host's memory: returning a million
	 * pages (slower still under KASAN) must not keep the CPU from others.
	 * Every path to the last reference may sleep (it takes nd->lock).
	 */
	xa_for_each(&buf->pages, index, page) {
		put_page(page);
		if (!(++freed % NEURON_COPY_BATCH))
			cond_resched();
	}
	xa_destroy(&buf->pages);

	mutex_lock(&nd->lock);
	neuron_account(buf, false);
	mutex_unlock(&nd->lock);
	kfree(buf);
}

void neuron_buffer_put(struct neuron_buffer *buf)
{
	kref_put(&buf->ref, neuron_buffer_release);
}

/* Take a reference to @handle of @nf, or NULL when the file has none. */
struct neuron_buffer *neuron_buffer_get(struct neuron_file *nf, u32 handle)
{
	struct neuron_buffer *buf;

	xa_lock(&nf->buffers);
	buf = xa_load(&nf->buffers, handle);
	if (buf)
		kref_get(&buf->ref);
	xa_unlock(&nf->buffers);
	return buf;
}

/*
 * Fake device memory is host memory, in no process's RSS: the OOM killer
 * would not find who committed it, and would kill others first. So a page
 * is committed only while the host keeps a reserve available besides it
 * (a sixteenth of its memory), and never through the OOM killer: past
 * that the commit fails (ENOMEM; SIGBUS for a mapping), and the pages
 * stay charged to the committer's memory cgroup, whose limit applies.
 */
static bool neuron_host_can_back(struct neuron_device *nd)
{
	unsigned long reserve = totalram_pages() / 16;

	if (global_zone_page_state(NR_FREE_PAGES) > 2 * reserve || si_mem_available() > reserve)
		return true;
	dev_warn_ratelimited(&nd->dev,
			     "fake device memory is host memory: a commit is refused while less than %lu MiB of it is available\n",
			     reserve >> (20 - PAGE_SHIFT));
	return false;
}

/*
 * Whether the host can map @pages more pages into the kernel. Under KASAN
 * a vmap also allocates the mapping's shadow (an eighth of its size) with
 * GFP_KERNEL, which past the host's memory wakes the OOM killer instead
 * of failing: the mapping is refused (ENOMEM) unless that shadow and the
 * commit reserve are free. Elsewhere only page tables are added, which
 * the commit reserve covers.
 */
static bool neuron_host_can_map(struct neuron_device *nd, unsigned long pages)
{
	unsigned long need;

	if (!IS_ENABLED(CONFIG_KASAN_VMALLOC))
		return true;
	need = (pages >> 3) + totalram_pages() / 16;	/* KASAN_SHADOW_SCALE_SHIFT */
	if (global_zone_page_state(NR_FREE_PAGES) > need)
		return true;
	dev_warn_ratelimited(&nd->dev,
			     "a kernel mapping of %lu MiB is refused: KASAN's shadow of it needs %lu MiB of free host memory\n",
			     pages >> (20 - PAGE_SHIFT), need >> (20 - PAGE_SHIFT));
	return false;
}

/*
 * The page at @index, allocated (zeroed) when @create and absent. Returns
 * NULL when absent and not created, ERR_PTR on failure.
 */
static struct page *neuron_buffer_page(struct neuron_buffer *buf,
				       pgoff_t index, bool create)
{
	struct page *page, *old;

	page = xa_load(&buf->pages, index);
	if (page || !create)
		return page;

	if (!neuron_host_can_back(buf->owner->nd))
		return ERR_PTR(-ENOMEM);
	page = alloc_page(GFP_HIGHUSER | __GFP_ZERO | __GFP_ACCOUNT | __GFP_RETRY_MAYFAIL |
			  __GFP_NOWARN);
	if (!page)
		return ERR_PTR(-ENOMEM);
	old = xa_cmpxchg(&buf->pages, index, NULL, page, GFP_KERNEL_ACCOUNT);
	if (xa_is_err(old)) {
		__free_page(page);
		return ERR_PTR(xa_err(old));
	}
	if (old) {			/* another thread was first */
		__free_page(page);
		return old;
	}
	atomic_long_inc(&buf->resident);
	return page;
}

/*
 * A kernel mapping of at least the first @bytes (1..size) of @buf, for
 * the engine, with every page in it allocated. The mapping lives until
 * the buffer is released. Returns an ERR_PTR on failure (-EINTR on a
 * fatal signal while it waits for another mapping of the buffer). May sleep.
 */
void *neuron_buffer_kmap(struct neuron_buffer *buf, u64 bytes)
{
	struct neuron_kmap *old = NULL;
	struct page **pages;
	unsigned long i, n;
	void *addr;
	u64 want;

	/*
	 * Killable: another submitter may hold the lock while it commits a
	 * large buffer's pages, which can take long; a waiter stays killable
	 * (and is no "hung task" meanwhile).
	 */
	if (mutex_lock_killable(&buf->map_lock))
		return ERR_PTR(-EINTR);
	if (buf->kmap_bytes >= bytes) {
		addr = buf->kaddr;
		mutex_unlock(&buf->map_lock);
		return addr;
	}
	/* Grow by doubling at least, so that a buffer is remapped rarely. */
	want = PAGE_ALIGN(max(bytes, min(buf->size, 2 * buf->kmap_bytes)));
	n = want >> PAGE_SHIFT;
	if (buf->kaddr) {
		old = kmalloc(sizeof(*old), GFP_KERNEL_ACCOUNT);
		if (!old) {
			addr = ERR_PTR(-ENOMEM);
			goto out;
		}
	}
	pages = kvmalloc_array(n, sizeof(*pages), GFP_KERNEL_ACCOUNT);
	if (!pages) {
		addr = ERR_PTR(-ENOMEM);
		goto out;
	}
	for (i = 0; i < n; i++) {
		pages[i] = neuron_buffer_page(buf, i, true);
		if (IS_ERR(pages[i])) {
			addr = ERR_CAST(pages[i]);
			goto out_pages;
		}
		if (!(i % NEURON_COPY_BATCH)) {
			if (fatal_signal_pending(current)) {
				addr = ERR_PTR(-EINTR);
				goto out_pages;
			}
			cond_resched();
		}
	}
	if (!neuron_host_can_map(buf->owner->nd, n)) {
		addr = ERR_PTR(-ENOMEM);
		goto out_pages;
	}
	addr = vmap(pages, n, VM_MAP, PAGE_KERNEL);
	if (!addr) {
		addr = ERR_PTR(-ENOMEM);
		goto out_pages;
	}
	if (old) {
		old->addr = buf->kaddr;
		old->next = buf->old_maps;
		buf->old_maps = old;
		old = NULL;
	}
	buf->kaddr = addr;
	buf->kmap_bytes = want;
out_pages:
	kvfree(pages);
out:
	kfree(old);
	mutex_unlock(&buf->map_lock);
	return addr;
}

/* @offset and @length inside @buf, without overflow. */
static bool neuron_range_ok(const struct neuron_buffer *buf, u64 offset, u64 length)
{
	u64 end;

	return !check_add_overflow(offset, length, &end) && end <= buf->size;
}

/* MEM_ALLOC's result could not be copied back: the buffer goes again. */
static void neuron_mem_alloc_undo(struct neuron_file *nf, const void *arg)
{
	const struct neuron_mem_alloc *req = arg;
	struct neuron_buffer *buf = xa_erase(&nf->buffers, req->handle);

	if (buf)
		neuron_buffer_put(buf);
}

int neuron_ioctl_mem_alloc(struct neuron_file *nf, void *arg, struct neuron_ioctl_ctx *ctx)
{
	struct neuron_device *nd = nf->nd;
	struct neuron_mem_alloc *req = arg;
	struct neuron_buffer *buf;
	u64 size, limit;
	u32 handle;
	int ret;

	if (req->placement != NEURON_MEM_DEVICE && req->placement != NEURON_MEM_HOST) {
		dev_dbg(&nd->dev, "MEM_ALLOC: placement %u is neither device (0) nor host (1)\n",
			req->placement);
		return -EINVAL;
	}
	if (req->core != NEURON_CORE_ANY && req->core >= nd->core_count) {
		dev_dbg(&nd->dev, "MEM_ALLOC: core %u is not NEURON_CORE_ANY nor one of %u\n",
			req->core, nd->core_count);
		return -EINVAL;
	}
	if (!req->size) {
		dev_dbg(&nd->dev, "MEM_ALLOC: size 0\n");
		return -EINVAL;
	}
	/* Host-placed buffers are bounded by the host's memory. */
	limit = req->placement == NEURON_MEM_DEVICE ? nd->memory_size :
		(u64)totalram_pages() << PAGE_SHIFT;
	if (req->size > limit)
		return -ENOMEM;
	size = PAGE_ALIGN(req->size);

	buf = kzalloc(sizeof(*buf), GFP_KERNEL_ACCOUNT);
	if (!buf)
		return -ENOMEM;
	kref_init(&buf->ref);
	xa_init(&buf->pages);
	mutex_init(&buf->map_lock);
	buf->owner = nf;
	buf->size = size;
	buf->placement = req->placement;
	buf->core = req->core;

	mutex_lock(&nd->lock);
	if (req->placement == NEURON_MEM_DEVICE &&
	    size > nd->memory_size - nd->memory_used) {
		mutex_unlock(&nd->lock);
		kfree(buf);
		return -ENOMEM;
	}
	neuron_account(buf, true);
	mutex_unlock(&nd->lock);

	ret = xa_alloc(&nf->buffers, &handle, buf,
		       XA_LIMIT(1, NEURON_MAX_HANDLE), GFP_KERNEL_ACCOUNT);
	if (ret) {
		neuron_buffer_put(buf);
		return ret == -EBUSY ? -ENOSPC : ret;
	}
	/* Not yet visible to user space: set the handle-derived fields. */
	buf->handle = handle;
	buf->device_addr = (u64)handle << NEURON_WINDOW_SHIFT;
	buf->mmap_offset = (u64)handle << NEURON_WINDOW_SHIFT;

	req->handle = handle;
	req->device_addr = buf->device_addr;
	req->mmap_offset = buf->mmap_offset;
	ctx->undo = neuron_mem_alloc_undo;
	return 0;
}

int neuron_ioctl_mem_free(struct neuron_file *nf, void *arg, struct neuron_ioctl_ctx *ctx)
{
	struct neuron_mem_free *req = arg;
	struct neuron_buffer *buf;

	buf = xa_erase(&nf->buffers, req->handle);
	if (!buf) {
		dev_dbg(&nf->nd->dev, "MEM_FREE: no buffer %u in this file\n", req->handle);
		return -ENOENT;
	}
	neuron_buffer_put(buf);
	return 0;
}

int neuron_ioctl_mem_info(struct neuron_file *nf, void *arg, struct neuron_ioctl_ctx *ctx)
{
	struct neuron_mem_info *req = arg;
	struct neuron_buffer *buf;

	buf = neuron_buffer_get(nf, req->handle);
	if (!buf) {
		dev_dbg(&nf->nd->dev, "MEM_INFO: no buffer %u in this file\n", req->handle);
		return -ENOENT;
	}
	req->size = buf->size;
	req->placement = buf->placement;
	req->core = buf->core;
	req->device_addr = buf->device_addr;
	req->mmap_offset = buf->mmap_offset;
	req->resident_bytes = (u64)atomic_long_read(&buf->resident) << PAGE_SHIFT;
	neuron_buffer_put(buf);
	return 0;
}

/* Copy between user memory and @buf, page by page. */
static int neuron_buffer_copy(struct neuron_buffer *buf, u64 offset, u64 length,
			      u8 __user *user, bool to_buffer)
{
	unsigned int batch = 0;

	while (length) {
		size_t in_page = offset & ~PAGE_MASK;
		size_t chunk = min_t(u64, length, PAGE_SIZE - in_page);
		struct page *page = neuron_buffer_page(buf, offset >> PAGE_SHIFT, to_buffer);
		unsigned long left;
		u8 *kaddr;

		if (IS_ERR(page))
			return PTR_ERR(page);
		if (!page) {
			/* Never written: reads as zeros. */
			left = clear_user(user, chunk);
		} else {
			kaddr = kmap_local_page(page);
			if (to_buffer)
				left = copy_from_user(kaddr + in_page, user, chunk);
			else
				left = copy_to_user(user, kaddr + in_page, chunk);
			kunmap_local(kaddr);
		}
		if (left)
			return -EFAULT;
		offset += chunk;
		user += chunk;
		length -= chunk;
		if (++batch == NEURON_COPY_BATCH) {
			batch = 0;
			if (fatal_signal_pending(current))
				return -EINTR;
			cond_resched();
		}
	}
	return 0;
}

/*
 * Large copies: pin the user pages, then move the bytes with SIMD
 * registers in FPU sections of at most NEURON_PIN_BATCH pages, with a
 * chance to reschedule between them. Pages to write are allocated before
 * each section, since allocation may sleep.
 */
#define NEURON_PIN_BATCH	64
#define NEURON_PIN_THRESHOLD	(64 * 1024)

static int neuron_buffer_copy_pinned(struct neuron_buffer *buf, u64 offset, u64 length,
				     u8 __user *user, bool to_buffer)
{
	struct page *upages[NEURON_PIN_BATCH];

	while (length) {
		unsigned long uaddr = (unsigned long)user;
		unsigned long ulead = uaddr & ~PAGE_MASK;
		u64 span = min_t(u64, length, NEURON_PIN_BATCH * PAGE_SIZE - ulead);
		int npages = DIV_ROUND_UP(ulead + span, PAGE_SIZE);
		int pinned, i;
		u64 done = 0;

		pinned = pin_user_pages_fast(uaddr & PAGE_MASK, npages,
					     to_buffer ? 0 : FOLL_WRITE, upages);
		if (pinned <= 0)
			return pinned < 0 && pinned != -EFAULT ? pinned : -EFAULT;
		if (pinned < npages)
			span = (u64)pinned * PAGE_SIZE - ulead;

		/* Allocate the buffer pages this batch writes (may sleep). */
		for (i = 0; to_buffer && i <= (int)(((offset & ~PAGE_MASK) + span - 1) >> PAGE_SHIFT); i++) {
			struct page *page = neuron_buffer_page(buf, (offset >> PAGE_SHIFT) + i, true);

			if (IS_ERR(page)) {
				unpin_user_pages(upages, pinned);
				return PTR_ERR(page);
			}
		}

		kernel_fpu_begin();
		while (done < span) {
			u64 boff = offset + done;
			size_t uin = (ulead + done) & ~PAGE_MASK;
			size_t bin = boff & ~PAGE_MASK;
			size_t chunk = min3((size_t)(span - done), PAGE_SIZE - uin, PAGE_SIZE - bin);
			struct page *upage = upages[(ulead + done) >> PAGE_SHIFT];
			struct page *bpage = xa_load(&buf->pages, boff >> PAGE_SHIFT);
			u8 *ua = kmap_local_page(upage);

			if (to_buffer) {
				u8 *ba = kmap_local_page(bpage);

				neuron_simd_copy(ba + bin, ua + uin, chunk);
				kunmap_local(ba);
			} else {
				/* Never written: reads as zeros. */
				u8 *ba = kmap_local_page(bpage ?: ZERO_PAGE(0));

				neuron_simd_copy(ua + uin, ba + bin, chunk);
				kunmap_local(ba);
			}
			kunmap_local(ua);
			done += chunk;
		}
		kernel_fpu_end();
		unpin_user_pages_dirty_lock(upages, pinned, !to_buffer);

		offset += span;
		user += span;
		length -= span;
		if (fatal_signal_pending(current))
			return -EINTR;
		cond_resched();
	}
	return 0;
}

static int neuron_mem_copy(struct neuron_file *nf, struct neuron_mem_copy *req, bool to_buffer)
{
	const char *name = to_buffer ? "MEM_WRITE" : "MEM_READ";
	struct neuron_buffer *buf;
	int ret;

	buf = neuron_buffer_get(nf, req->handle);
	if (!buf) {
		dev_dbg(&nf->nd->dev, "%s: no buffer %u in this file\n", name, req->handle);
		return -ENOENT;
	}
	if (!neuron_range_ok(buf, req->offset, req->length)) {
		dev_dbg(&nf->nd->dev, "%s: offset %llu + length %llu pass buffer %u's %llu bytes\n",
			name, req->offset, req->length, req->handle, buf->size);
		ret = -EINVAL;
	} else if (req->length >= NEURON_PIN_THRESHOLD) {
		ret = neuron_buffer_copy_pinned(buf, req->offset, req->length,
						u64_to_user_ptr(req->user_addr), to_buffer);
	} else {
		ret = neuron_buffer_copy(buf, req->offset, req->length,
					 u64_to_user_ptr(req->user_addr), to_buffer);
	}
	neuron_buffer_put(buf);
	return ret;
}

int neuron_ioctl_mem_write(struct neuron_file *nf, void *arg, struct neuron_ioctl_ctx *ctx)
{
	return neuron_mem_copy(nf, arg, true);
}

int neuron_ioctl_mem_read(struct neuron_file *nf, void *arg, struct neuron_ioctl_ctx *ctx)
{
	return neuron_mem_copy(nf, arg, false);
}

int neuron_ioctl_mem_set(struct neuron_file *nf, void *arg, struct neuron_ioctl_ctx *ctx)
{
	struct neuron_mem_set *req = arg;
	struct neuron_buffer *buf;
	unsigned int batch = 0;
	u64 offset, length;
	int ret = 0;

	if (req->pad || req->value > 0xff) {
		dev_dbg(&nf->nd->dev, "MEM_SET: value 0x%x is not a byte, or pad 0x%x is not 0\n",
			req->value, req->pad);
		return -EINVAL;
	}
	buf = neuron_buffer_get(nf, req->handle);
	if (!buf) {
		dev_dbg(&nf->nd->dev, "MEM_SET: no buffer %u in this file\n", req->handle);
		return -ENOENT;
	}
	if (!neuron_range_ok(buf, req->offset, req->length)) {
		dev_dbg(&nf->nd->dev, "MEM_SET: offset %llu + length %llu pass buffer %u's %llu bytes\n",
			req->offset, req->length, req->handle, buf->size);
		neuron_buffer_put(buf);
		return -EINVAL;
	}
	offset = req->offset;
	length = req->length;
	while (length) {
		size_t in_page = offset & ~PAGE_MASK;
		size_t chunk = min_t(u64, length, PAGE_SIZE - in_page);
		/* Zeros need no page where none was written. */
		struct page *page = neuron_buffer_page(buf, offset >> PAGE_SHIFT,
						       req->value != 0);
		if (IS_ERR(page)) {
			ret = PTR_ERR(page);
			break;
		}
		if (page)
			memset_page(page, in_page, req->value, chunk);
		offset += chunk;
		length -= chunk;
		if (++batch == NEURON_COPY_BATCH) {
			batch = 0;
			if (fatal_signal_pending(current)) {
				ret = -EINTR;
				break;
			}
			cond_resched();
		}
	}
	neuron_buffer_put(buf);
	return ret;
}

/* mmap: each VMA holds a reference to its buffer. */

static void neuron_vm_open(struct vm_area_struct *vma)
{
	struct neuron_buffer *buf = vma->vm_private_data;

	kref_get(&buf->ref);
}

static void neuron_vm_close(struct vm_area_struct *vma)
{
	neuron_buffer_put(vma->vm_private_data);
}

static vm_fault_t neuron_vm_fault(struct vm_fault *vmf)
{
	struct neuron_buffer *buf = vmf->vma->vm_private_data;
	pgoff_t index = vmf->pgoff - (buf->mmap_offset >> PAGE_SHIFT);
	struct page *page;

	if (index >= buf->size >> PAGE_SHIFT)
		return VM_FAULT_SIGBUS;
	page = neuron_buffer_page(buf, index, true);
	if (IS_ERR(page))	/* as tmpfs past its size: never the OOM killer */
		return VM_FAULT_SIGBUS;
	get_page(page);
	vmf->page = page;
	return 0;
}

static const struct vm_operations_struct neuron_vm_ops = {
	.open = neuron_vm_open,
	.close = neuron_vm_close,
	.fault = neuron_vm_fault,
};

int neuron_mmap(struct file *filp, struct vm_area_struct *vma)
{
	struct neuron_file *nf = filp->private_data;
	unsigned long handle = vma->vm_pgoff >> (NEURON_WINDOW_SHIFT - PAGE_SHIFT);
	unsigned long first = vma->vm_pgoff & ((1UL << (NEURON_WINDOW_SHIFT - PAGE_SHIFT)) - 1);
	unsigned long pages = vma_pages(vma);
	struct neuron_buffer *buf;

	/* A private mapping would write to copies, not to the buffer. */
	if (!(vma->vm_flags & VM_SHARED)) {
		dev_dbg(&nf->nd->dev, "mmap: a private mapping; buffers map MAP_SHARED\n");
		return -EINVAL;
	}
	if (handle > NEURON_MAX_HANDLE) {
		dev_dbg(&nf->nd->dev, "mmap: offset names handle %lu, past %u\n", handle,
			NEURON_MAX_HANDLE);
		return -EINVAL;
	}
	buf = neuron_buffer_get(nf, handle);
	if (!buf) {
		dev_dbg(&nf->nd->dev, "mmap: no buffer %lu in this file\n", handle);
		return -EINVAL;
	}
	if (first > buf->size >> PAGE_SHIFT ||
	    pages > (buf->size >> PAGE_SHIFT) - first) {
		dev_dbg(&nf->nd->dev, "mmap: pages %lu + %lu pass buffer %lu's %llu bytes\n",
			first, pages, handle, buf->size);
		neuron_buffer_put(buf);
		return -EINVAL;
	}
	/* The reference taken above now belongs to the VMA. */
	vma->vm_private_data = buf;
	vma->vm_ops = &neuron_vm_ops;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP);
#else
	vma->vm_flags |= VM_DONTEXPAND | VM_DONTDUMP;
#endif
	return 0;
}

void neuron_mem_file_init(struct neuron_file *nf)
{
	xa_init_flags(&nf->buffers, XA_FLAGS_ALLOC1);
}

/*
 * Free every buffer the file still holds. Called from the file's release,
 * when no mapping of the file remains, so the table's are the last
 * references.
 */
void neuron_mem_file_release(struct neuron_file *nf)
{
	struct neuron_buffer *buf;
	unsigned long handle;

	xa_for_each(&nf->buffers, handle, buf) {
		xa_erase(&nf->buffers, handle);
		WARN_ON_ONCE(!kref_put(&buf->ref, neuron_buffer_release));
		/* A file may hold a great many small buffers. */
		cond_resched();
	}
	xa_destroy(&nf->buffers);
}
