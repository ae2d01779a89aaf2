/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * neuron.h - userspace ABI of the neuron driver (Inferentia-class
 * NeuronCore accelerators, real or software-backed "fake" devices).
 *
 * This file is the single source of truth for the ABI: the kernel module
 * compiles it and the Swift userspace imports this very file through a C
 * module. See docs/abi.md for the rules it follows:
 *
 *  - every structure has fixed-width fields, explicit padding and a size
 *    that is a multiple of 8; pointers travel as __u64;
 *  - every field is documented as [in], [out] or [in/out];
 *  - every @flags and @reserved field must be zero on input, else the
 *    ioctl fails with -EINVAL, so that later versions can give them meaning;
 *  - an unknown command (including a known number with another size)
 *    fails with -ENOTTY.
 *
 * The ioctl type is 'N', numbers 0xC0-0xDF.
 */
#ifndef _UAPI_NEURON_H
#define _UAPI_NEURON_H

#include <linux/ioctl.h>
#include <linux/types.h>

/*
 * API version reported by NEURON_IOCTL_DRIVER_INFO. The major number
 * changes only on an incompatible change (never, we hope); the minor
 * number grows when ioctls or fields are added.
 */
#define NEURON_API_VERSION_MAJOR	1
#define NEURON_API_VERSION_MINOR	16

#define NEURON_IOCTL_TYPE		'N'

/* Sizes of fixed strings, including the terminating NUL. */
#define NEURON_VERSION_LEN		32
#define NEURON_SERIAL_LEN		32
#define NEURON_BDF_LEN			16
#define NEURON_COMM_LEN			16

/* Most links a device reports in struct neuron_device_info. */
#define NEURON_MAX_CONNECTED		4
/* Most NeuronCores one device may have. */
#define NEURON_MAX_CORES		8
/* Most devices the driver manages. */
#define NEURON_MAX_DEVICES		64

/* Value of struct neuron_device_info.platform. */
enum neuron_platform {
	NEURON_PLATFORM_FAKE = 1,	/* software-backed NeuronCores */
	NEURON_PLATFORM_INF1 = 2,	/* Inferentia (Inf1) PCI device */
};

/* Value of numa_node when the device has no NUMA affinity. */
#define NEURON_NUMA_NONE		(-1)

/**
 * struct neuron_driver_info - NEURON_IOCTL_DRIVER_INFO
 * @flags:        [in]  must be 0
 * @api_major:    [out] NEURON_API_VERSION_MAJOR of the running driver
 * @api_minor:    [out] NEURON_API_VERSION_MINOR of the running driver
 * @device_count: [out] number of devices the driver currently manages
 * @version:      [out] module version string, NUL-terminated
 * @reserved:     [in]  must be 0
 */
struct neuron_driver_info {
	__u32 flags;
	__u32 api_major;
	__u32 api_minor;
	__u32 device_count;
	char version[NEURON_VERSION_LEN];
	__u64 reserved[4];
};

/**
 * struct neuron_device_info - NEURON_IOCTL_DEVICE_INFO, for the opened device
 * @flags:           [in]  must be 0
 * @platform:        [out] enum neuron_platform
 * @index:           [out] N of /dev/neuronN
 * @core_count:      [out] number of NeuronCores
 * @memory_size:     [out] device memory in bytes
 * @memory_used:     [out] device memory currently allocated, in bytes
 * @numa_node:       [out] NUMA node of the device, or NEURON_NUMA_NONE
 * @connected_count: [out] valid entries in @connected
 * @connected:       [out] indices of the devices this one links to
 * @serial:          [out] serial number, stable across loads, NUL-terminated
 * @pci_bdf:         [out] PCI address "dddd:bb:dd.f", or "" for a fake device
 * @job_timeout_ms:  [out] job timeout in force on this device
 * @pad:             [out] always 0
 * @reserved:        [in]  must be 0
 */
struct neuron_device_info {
	__u32 flags;
	__u32 platform;
	__u32 index;
	__u32 core_count;
	__u64 memory_size;
	__u64 memory_used;
	__s32 numa_node;
	__u32 connected_count;
	__u32 connected[NEURON_MAX_CONNECTED];
	char serial[NEURON_SERIAL_LEN];
	char pci_bdf[NEURON_BDF_LEN];
	__u32 job_timeout_ms;
	__u32 pad;
	__u64 reserved[4];
};

/**
 * struct neuron_process_info - one process attached to a device
 * @pid:                process id (thread group id) in the caller's PID
 *                      namespace, or 0 when it is not visible there or
 *                      when no live process has the files open (one in
 *                      flight over a socket, or only mapped); such files
 *                      share one entry
 * @open_files:         number of open files the process holds on the device
 * @cores_held:         bit mask of the NeuronCores the process has reserved
 * @pad:                always 0
 * @host_memory:        host-placed buffer bytes the process holds
 * @device_memory:      device buffer bytes the process holds
 * @command:            command name (as in /proc/PID/comm), NUL-terminated
 * @host_memory_peak:   highest @host_memory since each file was opened,
 *                      summed over the process's files (API 1.1)
 * @device_memory_peak: likewise for @device_memory (API 1.1)
 */
struct neuron_process_info {
	__s32 pid;
	__u32 open_files;
	__u32 cores_held;
	__u32 pad;
	__u64 host_memory;
	__u64 device_memory;
	char command[NEURON_COMM_LEN];
	__u64 host_memory_peak;
	__u64 device_memory_peak;
};

/**
 * struct neuron_process_list - NEURON_IOCTL_PROCESS_LIST
 *
 * Lists the processes that hold the device open, one entry per process,
 * ordered by the time the process first opened the device. Any user who
 * can open the device may call it.
 *
 * @flags:      [in]  must be 0
 * @entry_size: [in]  sizeof(struct neuron_process_info) as the caller knows it
 * @capacity:   [in]  number of entries the array at @entries can hold
 * @count:      [out] number of attached processes; may exceed @capacity, in
 *                    which case only the first @capacity were written
 * @entries:    [in]  user pointer to an array of struct neuron_process_info;
 *                    may be 0 when @capacity is 0
 * @reserved:   [in]  must be 0
 */
struct neuron_process_list {
	__u32 flags;
	__u32 entry_size;
	__u32 capacity;
	__u32 count;
	__u64 entries;
	__u64 reserved[2];
};

/* Value of struct neuron_mem_alloc.placement. */
enum neuron_mem_placement {
	NEURON_MEM_DEVICE = 0,	/* device memory, counted against its capacity */
	NEURON_MEM_HOST = 1,	/* host memory the device can reach (staging) */
};

/* struct neuron_mem_alloc.core: no NeuronCore affinity. */
#define NEURON_CORE_ANY			0xffffffffu

/*
 * Device memory (API 1.1). A buffer is named by a handle that is valid
 * only on the file that allocated it. Its bytes are zero until written.
 * mmap(fd, len, PROT_*, MAP_SHARED, mmap_offset + off) maps it, with off
 * and len multiples of the page size inside the buffer. A buffer freed
 * while mapped lives until the last mapping goes away; memory is counted
 * as used until then. Sizes are rounded up to the page size.
 */

/**
 * struct neuron_mem_alloc - NEURON_IOCTL_MEM_ALLOC
 * @size:        [in]  bytes, 1 up to the device's memory size
 * @placement:   [in]  enum neuron_mem_placement
 * @core:        [in]  NeuronCore the buffer is meant for, or NEURON_CORE_ANY
 * @flags:       [in]  must be 0
 * @handle:      [out] the buffer's handle on this file, never 0
 * @device_addr: [out] the buffer's address in the device's address space
 * @mmap_offset: [out] offset to pass to mmap for this buffer
 * @reserved:    [in]  must be 0
 */
struct neuron_mem_alloc {
	__u64 size;
	__u32 placement;
	__u32 core;
	__u32 flags;
	__u32 handle;
	__u64 device_addr;
	__u64 mmap_offset;
	__u64 reserved[2];
};

/**
 * struct neuron_mem_free - NEURON_IOCTL_MEM_FREE
 * @handle:   [in] the buffer to free
 * @flags:    [in] must be 0
 * @reserved: [in] must be 0
 */
struct neuron_mem_free {
	__u32 handle;
	__u32 flags;
	__u64 reserved[2];
};

/**
 * struct neuron_mem_info - NEURON_IOCTL_MEM_INFO
 * @handle:         [in]  the buffer
 * @flags:          [in]  must be 0
 * @size:           [out] bytes, as allocated (a multiple of the page size)
 * @placement:      [out] enum neuron_mem_placement
 * @core:           [out] NeuronCore affinity, or NEURON_CORE_ANY
 * @device_addr:    [out] as from MEM_ALLOC
 * @mmap_offset:    [out] as from MEM_ALLOC
 * @resident_bytes: [out] host memory the buffer's written pages take
 * @reserved:       [in]  must be 0
 */
struct neuron_mem_info {
	__u32 handle;
	__u32 flags;
	__u64 size;
	__u32 placement;
	__u32 core;
	__u64 device_addr;
	__u64 mmap_offset;
	__u64 resident_bytes;
	__u64 reserved[2];
};

/**
 * struct neuron_mem_copy - NEURON_IOCTL_MEM_WRITE and NEURON_IOCTL_MEM_READ
 *
 * WRITE copies @length bytes from @user_addr into the buffer at @offset;
 * READ copies them out of the buffer to @user_addr.
 *
 * @handle:    [in] the buffer
 * @flags:     [in] must be 0
 * @offset:    [in] byte offset in the buffer
 * @length:    [in] bytes; @offset + @length must not pass the buffer's end
 * @user_addr: [in] user memory to copy from (WRITE) or to (READ)
 * @reserved:  [in] must be 0
 */
struct neuron_mem_copy {
	__u32 handle;
	__u32 flags;
	__u64 offset;
	__u64 length;
	__u64 user_addr;
	__u64 reserved[2];
};

/**
 * struct neuron_mem_set - NEURON_IOCTL_MEM_SET: fill bytes with a value
 * @handle:   [in] the buffer
 * @flags:    [in] must be 0
 * @offset:   [in] byte offset in the buffer
 * @length:   [in] bytes; @offset + @length must not pass the buffer's end
 * @value:    [in] the byte to store, 0-255
 * @pad:      [in] must be 0
 * @reserved: [in] must be 0
 */
struct neuron_mem_set {
	__u32 handle;
	__u32 flags;
	__u64 offset;
	__u64 length;
	__u32 value;
	__u32 pad;
	__u64 reserved[2];
};

/*
 * NeuronCores and their queues (API 1.2). A file reserves NeuronCores,
 * exclusively, until it releases them or is closed. Each NeuronCore runs
 * the jobs submitted to it in order, one at a time; a job is a program
 * (uapi/neuron_isa.h) with up to NEURON_MAX_SLOTS of the file's buffers
 * bound to its slots. Jobs are numbered per NeuronCore from 1 and never
 * reused. poll() on the file reports EPOLLIN while a job of the file has
 * finished and was not yet waited for, and EPOLLOUT while a NeuronCore it
 * holds has room in its queue. See docs/abi.md.
 */

/* Jobs a NeuronCore queues, the running one included. */
#define NEURON_QUEUE_DEPTH		64
/* Finished jobs whose status a NeuronCore keeps for JOB_WAIT. */
#define NEURON_JOB_HISTORY		256
/* Largest program a job can carry, in bytes. */
#define NEURON_MAX_PROGRAM_SIZE		(32 + 4096 * 88 + 65536 * 64)

/**
 * struct neuron_core_reserve - NEURON_IOCTL_CORE_RESERVE and _CORE_RELEASE
 *
 * RESERVE takes every NeuronCore of @core_mask or none: it fails with
 * -EBUSY when another file holds one of them, and then reports who in
 * @busy_mask and @busy_pid. Reserving a core the file already holds is
 * not an error. RELEASE gives back NeuronCores the file holds (-EINVAL
 * when it holds one of them not): their queued jobs end ABORTED, the
 * running one at its next instruction boundary, before it returns.
 *
 * @flags:     [in]  must be 0
 * @core_mask: [in]  bit n names NeuronCore n; not 0, only existing cores
 * @held_mask: [out] the NeuronCores the file holds after the call
 * @busy_mask: [out] on -EBUSY: the requested NeuronCores held elsewhere
 * @busy_pid:  [out] on -EBUSY: a process holding one of them (0 when not
 *                   visible in the caller's PID namespace, or when no live
 *                   process has the holding file open)
 * @pad:       [in]  must be 0
 * @reserved:  [in]  must be 0
 */
struct neuron_core_reserve {
	__u32 flags;
	__u32 core_mask;
	__u32 held_mask;
	__u32 busy_mask;
	__s32 busy_pid;
	__u32 pad;
	__u64 reserved[2];
};

/* struct neuron_job_submit.dep_core: the job depends on no other. */
#define NEURON_NO_DEP			0xffffffffu

/**
 * struct neuron_job_submit - NEURON_IOCTL_JOB_SUBMIT
 *
 * Queues a job on a NeuronCore the file holds. The program is copied
 * and validated against the bound buffers before the call returns; a
 * program the engine refuses fails with -EINVAL and @error and
 * @error_index say why and where (enum neuron_isa_error). The buffers
 * stay alive until the job ends, even if freed meanwhile. A full queue
 * fails with -EAGAIN: wait for a job, or poll() for EPOLLOUT.
 *
 * A job with a dependency starts only after job @dep_seq of NeuronCore
 * @dep_core (which the file must hold, and may be @core) has ended; if
 * that job did not end NEURON_JOB_OK, this one ends ABORTED unrun.
 *
 * With NEURON_JOB_TRACE in @flags (API 1.8) the job also writes a trace
 * of its run into buffer @trace of the file (struct neuron_trace_header,
 * then struct neuron_trace_record entries, as many as fit); see below.
 *
 * @flags:        [in]  0, or NEURON_JOB_TRACE
 * @core:         [in]  the NeuronCore, held by this file
 * @program:      [in]  user pointer to the program image, 8-byte aligned
 * @program_size: [in]  bytes, up to NEURON_MAX_PROGRAM_SIZE
 * @slot_count:   [in]  slots used, 0..NEURON_MAX_SLOTS
 * @slots:        [in]  buffer handle bound to each slot, 0 for none;
 *                      entries from @slot_count on must be 0
 * @dep_core:     [in]  NeuronCore of the job to wait for, or NEURON_NO_DEP
 * @pad:          [in]  must be 0
 * @dep_seq:      [in]  that job's sequence number (already submitted);
 *                      0 with NEURON_NO_DEP
 * @seq:          [out] this job's sequence number on @core
 * @error:        [out] on -EINVAL from validation: enum neuron_isa_error,
 *                      else 0
 * @error_index:  [out] the descriptor or instruction at fault
 * @trace:        [in]  with NEURON_JOB_TRACE: the trace buffer's handle, of
 *                      at least sizeof(struct neuron_trace_header) bytes;
 *                      else must be 0 (API 1.8)
 * @trace_pad:    [in]  must be 0
 * @reserved:     [in]  must be 0
 */
struct neuron_job_submit {
	__u32 flags;
	__u32 core;
	__u64 program;
	__u32 program_size;
	__u32 slot_count;
	__u32 slots[16];
	__u32 dep_core;
	__u32 pad;
	__u64 dep_seq;
	__u64 seq;
	__u32 error;
	__u32 error_index;
	__u32 trace;
	__u32 trace_pad;
	__u64 reserved[1];
};

/* struct neuron_job_submit.flags: write a trace of the run (API 1.8). */
#define NEURON_JOB_TRACE		(1u << 0)
/* Every flag JOB_SUBMIT knows. */
#define NEURON_JOB_SUBMIT_FLAGS		NEURON_JOB_TRACE

/*
 * Job traces (API 1.8). A traced job writes, when it ends, a header at the
 * start of its trace buffer, followed by one record per instruction it
 * ran (per run of parts of a sliced instruction), in the order they ran.
 * The records are written while the job runs and the header last, so a
 * trace is complete once JOB_WAIT reports the job ended. A buffer too
 * small for every record keeps the first @capacity and counts the rest in
 * @dropped: nothing is written past the buffer. Times are the kernel's
 * CLOCK_MONOTONIC in nanoseconds (the simulator's too), so they compare
 * with clock_gettime(CLOCK_MONOTONIC) in userspace. The same engine code
 * writes traces in the driver and in the simulator (engine/engine_run.c).
 */
#define NEURON_TRACE_MAGIC		0x4352544eu	/* "NTRC" */
#define NEURON_TRACE_VERSION		1

/* Value of struct neuron_trace_record.kind. */
enum neuron_trace_kind {
	NEURON_TRACE_COMPUTE = 1,	/* a compute instruction, or parts of one */
	NEURON_TRACE_SYNC = 2,		/* SEM_SIGNAL, SEM_WAIT or BARRIER, its wait included */
	NEURON_TRACE_NOP = 3,		/* an instruction with nothing to do */
};

/**
 * struct neuron_trace_header - the start of a job's trace buffer
 * @magic:        NEURON_TRACE_MAGIC
 * @version:      NEURON_TRACE_VERSION
 * @header_size:  bytes of this header; the records follow it
 * @record_size:  bytes of each record
 * @capacity:     records the buffer has room for, up to a record per part
 *                of every instruction (the most the program can write:
 *                the driver maps and commits no more of the buffer)
 * @count:        records written, at most @capacity
 * @dropped:      records that did not fit
 * @core:         the NeuronCore that ran the job
 * @status:       how the job ended (enum neuron_job_status)
 * @seq:          the job's sequence number on @core
 * @submitted_ns: JOB_SUBMIT queued the job
 * @dequeued_ns:  the NeuronCore took it from its queue; waiting for a
 *                dependency starts here
 * @started_ns:   it began to run (its dependency met), or 0 when it never ran
 * @finished_ns:  it ended
 * @insn_count:   instructions of the program
 * @pad:          0
 * @reserved:     0
 */
struct neuron_trace_header {
	__u32 magic;
	__u32 version;
	__u32 header_size;
	__u32 record_size;
	__u32 capacity;
	__u32 count;
	__u64 dropped;
	__u32 core;
	__u32 status;
	__u64 seq;
	__u64 submitted_ns;
	__u64 dequeued_ns;
	__u64 started_ns;
	__u64 finished_ns;
	__u32 insn_count;
	__u32 pad;
	__u64 reserved[2];
};

/**
 * struct neuron_trace_record - one instruction's run, or parts of it
 * @start_ns:      it began
 * @end_ns:        it ended
 * @work:          the engine's work estimate for what ran (the cost that
 *                 bounds sections, in element operations; a MATMUL's is
 *                 M * N * K), the parts' share for a sliced instruction
 * @bytes_read:    bytes of the input operands' distinct elements (a
 *                 broadcast counts once), the parts' share
 * @bytes_written: bytes of the output's elements, the parts' share
 * @index:         the instruction's index in the program
 * @opcode:        its enum neuron_opcode
 * @kind:          enum neuron_trace_kind
 * @pad:           0
 * @part:          the first part this record ran
 * @part_count:    parts it ran: a record of the whole instruction has
 *                 @part 0 and @part_count @parts
 * @parts:         parts the instruction divides into when it is sliced
 * @pad2:          0
 */
struct neuron_trace_record {
	__u64 start_ns;
	__u64 end_ns;
	__u64 work;
	__u64 bytes_read;
	__u64 bytes_written;
	__u32 index;
	__u16 opcode;
	__u8 kind;
	__u8 pad;
	__u32 part;
	__u32 part_count;
	__u32 parts;
	__u32 pad2;
};

/* Value of struct neuron_job_wait.status. */
enum neuron_job_status {
	NEURON_JOB_OK = 1,		/* ran to the end */
	NEURON_JOB_INVALID = 2,		/* an instruction could not run here
					 * (a BARRIER naming a core not held) */
	NEURON_JOB_TIMEOUT = 3,		/* ran past job_timeout_ms; core reset */
	NEURON_JOB_ABORTED = 4,		/* cores released, or a dependency failed */
	NEURON_JOB_FAULT = 5,		/* a data fault (enum neuron_isa_error) */
};

/**
 * struct neuron_job_wait - NEURON_IOCTL_JOB_WAIT
 *
 * Waits up to @timeout_ms for job @seq of @core to end (0 only checks)
 * and reports how it ended. Fails with -ETIMEDOUT when it has not ended
 * in time, -EINTR on a signal, -EINVAL for a job never submitted, and
 * -ENODATA when it ended more than NEURON_JOB_HISTORY jobs ago.
 *
 * @flags:       [in]  must be 0
 * @core:        [in]  a NeuronCore the file holds
 * @seq:         [in]  the job
 * @timeout_ms:  [in]  longest wait in milliseconds
 * @status:      [out] enum neuron_job_status
 * @error:       [out] for FAULT and INVALID: enum neuron_isa_error, else 0
 * @error_index: [out] the instruction at fault, where it applies
 * @duration_ns: [out] time the job ran, waits for dependencies excluded
 * @reserved:    [in]  must be 0
 */
struct neuron_job_wait {
	__u32 flags;
	__u32 core;
	__u64 seq;
	__u32 timeout_ms;
	__u32 status;
	__u32 error;
	__u32 error_index;
	__u64 duration_ns;
	__u64 reserved[2];
};

/**
 * struct neuron_queue_info - NEURON_IOCTL_QUEUE_INFO, for one NeuronCore
 * @flags:        [in]  must be 0
 * @core:         [in]  a NeuronCore of the device (held or not)
 * @submitted:    [out] the last sequence number handed out, 0 for none
 * @completed:    [out] every job up to this one has ended
 * @queued:       [out] jobs in the queue, the running one included
 * @owner_pid:    [out] process holding the core, 0 when free, not visible,
 *                or held by a file no live process has open
 * @reserved:     [in]  must be 0
 */
struct neuron_queue_info {
	__u32 flags;
	__u32 core;
	__u64 submitted;
	__u64 completed;
	__u32 queued;
	__s32 owner_pid;
	__u64 reserved[2];
};

#define NEURON_IOCTL_DRIVER_INFO \
	_IOWR(NEURON_IOCTL_TYPE, 0xC0, struct neuron_driver_info)
#define NEURON_IOCTL_DEVICE_INFO \
	_IOWR(NEURON_IOCTL_TYPE, 0xC1, struct neuron_device_info)
#define NEURON_IOCTL_PROCESS_LIST \
	_IOWR(NEURON_IOCTL_TYPE, 0xC2, struct neuron_process_list)
#define NEURON_IOCTL_MEM_ALLOC \
	_IOWR(NEURON_IOCTL_TYPE, 0xC3, struct neuron_mem_alloc)
#define NEURON_IOCTL_MEM_FREE \
	_IOW(NEURON_IOCTL_TYPE, 0xC4, struct neuron_mem_free)
#define NEURON_IOCTL_MEM_INFO \
	_IOWR(NEURON_IOCTL_TYPE, 0xC5, struct neuron_mem_info)
#define NEURON_IOCTL_MEM_WRITE \
	_IOW(NEURON_IOCTL_TYPE, 0xC6, struct neuron_mem_copy)
#define NEURON_IOCTL_MEM_READ \
	_IOW(NEURON_IOCTL_TYPE, 0xC7, struct neuron_mem_copy)
#define NEURON_IOCTL_MEM_SET \
	_IOW(NEURON_IOCTL_TYPE, 0xC8, struct neuron_mem_set)
#define NEURON_IOCTL_CORE_RESERVE \
	_IOWR(NEURON_IOCTL_TYPE, 0xC9, struct neuron_core_reserve)
#define NEURON_IOCTL_CORE_RELEASE \
	_IOWR(NEURON_IOCTL_TYPE, 0xCA, struct neuron_core_reserve)
#define NEURON_IOCTL_JOB_SUBMIT \
	_IOWR(NEURON_IOCTL_TYPE, 0xCB, struct neuron_job_submit)
#define NEURON_IOCTL_JOB_WAIT \
	_IOWR(NEURON_IOCTL_TYPE, 0xCC, struct neuron_job_wait)
#define NEURON_IOCTL_QUEUE_INFO \
	_IOWR(NEURON_IOCTL_TYPE, 0xCD, struct neuron_queue_info)

/*
 * Every command once, X(NAME, name, struct): NEURON_IOCTL_NAME takes
 * struct <struct>. What is built over all commands is built from this
 * list: the driver's dispatch table (handler neuron_ioctl_<name>), the
 * ABI layout check and userspace's request codes.
 */
#define NEURON_IOCTL_LIST(X)						\
	X(DRIVER_INFO, driver_info, neuron_driver_info)			\
	X(DEVICE_INFO, device_info, neuron_device_info)			\
	X(PROCESS_LIST, process_list, neuron_process_list)		\
	X(MEM_ALLOC, mem_alloc, neuron_mem_alloc)			\
	X(MEM_FREE, mem_free, neuron_mem_free)				\
	X(MEM_INFO, mem_info, neuron_mem_info)				\
	X(MEM_WRITE, mem_write, neuron_mem_copy)			\
	X(MEM_READ, mem_read, neuron_mem_copy)				\
	X(MEM_SET, mem_set, neuron_mem_set)				\
	X(CORE_RESERVE, core_reserve, neuron_core_reserve)		\
	X(CORE_RELEASE, core_release, neuron_core_reserve)		\
	X(JOB_SUBMIT, job_submit, neuron_job_submit)			\
	X(JOB_WAIT, job_wait, neuron_job_wait)				\
	X(QUEUE_INFO, queue_info, neuron_queue_info)

#endif /* _UAPI_NEURON_H */
