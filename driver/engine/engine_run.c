// SPDX-License-Identifier: GPL-2.0
/*
 * Engine: the job runner, shared by the driver's NeuronCore threads and
 * the simulator's, so that both run a job's sections, slices, aborts,
 * timeouts, semaphores and barriers the same way (neuron_engine.h says
 * what the host supplies). No floating point here: the compute steps it
 * calls run between the host's fpu_begin and fpu_end.
 */
#include "neuron_engine.h"
#include "../include/uapi/neuron.h"

/* A sync wait sleeps at most this long before it looks again. */
#define SYNC_POLL_NS	1000000000ULL

static int sem_take(const struct neuron_run_host *host, void *ctx, struct neuron_sync_state *s,
		    u32 id, u32 count, u64 *seen)
{
	int taken = 0;

	host->sync_lock(ctx);
	if (s->sem[id] >= count) {
		s->sem[id] -= count;
		taken = 1;
	}
	*seen = s->events;
	host->sync_unlock(ctx);
	return taken;
}

static int barrier_passed(const struct neuron_run_host *host, void *ctx,
			  struct neuron_sync_state *s, u32 id, u32 gen, u64 *seen)
{
	int passed;

	host->sync_lock(ctx);
	passed = s->barrier_gen[id] != gen;
	*seen = s->events;
	host->sync_unlock(ctx);
	return passed;
}

/* Sleep once before looking again; 0, or the status that ends the wait. */
static u32 sync_sleep(const struct neuron_run_host *host, void *ctx,
		      const struct neuron_run_job *job, u64 seen)
{
	u64 now;

	if (host->aborting(ctx))
		return NEURON_JOB_ABORTED;
	now = host->now_ns(ctx);
	if (now >= job->deadline_ns)
		return NEURON_JOB_TIMEOUT;
	host->sync_wait(ctx, seen, job->deadline_ns - now < SYNC_POLL_NS ?
			job->deadline_ns - now : SYNC_POLL_NS);
	return 0;
}

/* Run a SEM_SIGNAL, SEM_WAIT or BARRIER; 0, or the status that ends the job. */
static u32 run_sync(const struct neuron_run_host *host, void *ctx,
		    const struct neuron_run_job *job, const struct neuron_insn *in)
{
	struct neuron_sync_state *s = job->sync;
	u32 id = in->iparam[0], arg = in->iparam[1], bit = 1u << job->core, gen, st;
	u64 seen;

	switch (in->opcode) {
	case NEURON_OP_SEM_SIGNAL:
		host->sync_lock(ctx);
		s->sem[id] = s->sem[id] > 0xffffffffu - arg ? 0xffffffffu : s->sem[id] + arg;
		s->events++;
		host->sync_unlock(ctx);
		host->sync_wake(ctx);
		return 0;
	case NEURON_OP_SEM_WAIT:
		while (!sem_take(host, ctx, s, id, arg, &seen)) {
			st = sync_sleep(host, ctx, job, seen);
			if (st)
				return st;
		}
		return 0;
	case NEURON_OP_BARRIER:
		/* Validated: the barrier exists and the mask names a core. */
		if (!(arg & bit) || (arg & ~host->cores_held(ctx)))
			return NEURON_JOB_INVALID;
		host->sync_lock(ctx);
		gen = s->barrier_gen[id];
		s->barrier_arrived[id] |= bit;
		if ((s->barrier_arrived[id] & arg) == arg) {
			s->barrier_arrived[id] = 0;
			s->barrier_gen[id] = gen + 1;
		}
		s->events++;
		host->sync_unlock(ctx);
		host->sync_wake(ctx);
		while (!barrier_passed(host, ctx, s, id, gen, &seen)) {
			st = sync_sleep(host, ctx, job, seen);
			if (st) {
				/* Leave the barrier, unless it passed meanwhile. */
				host->sync_lock(ctx);
				if (s->barrier_gen[id] == gen)
					s->barrier_arrived[id] &= ~bit;
				host->sync_unlock(ctx);
				return st;
			}
		}
		return 0;
	}
	return NEURON_JOB_INVALID;
}

/* The records of a trace buffer, after its header. */
static struct neuron_trace_record *trace_records(const struct neuron_engine_trace *t)
{
	return (struct neuron_trace_record *)((u8 *)t->buf.base + sizeof(struct neuron_trace_header));
}

/* Records @t's buffer has room for. */
static u64 trace_capacity(const struct neuron_engine_trace *t)
{
	if (!t->buf.base || t->buf.size < sizeof(struct neuron_trace_header))
		return 0;
	return (t->buf.size - sizeof(struct neuron_trace_header)) /
		sizeof(struct neuron_trace_record);
}

/* @whole's share for parts [@first, @first + @count) of @parts. */
static u64 part_share(u64 whole, u32 count, u32 parts)
{
	if (count >= parts)
		return whole;
	return whole / parts * count + whole % parts * count / parts;
}

/* Append a record of parts [@first, @first + @count) of instruction @index. */
static void trace_insn(struct neuron_engine_trace *t, const struct neuron_engine_program *prog,
		       u32 index, u32 first, u32 count, u32 parts, u64 start, u64 end)
{
	const struct neuron_insn *in = &prog->insns[index];
	const struct neuron_insn_info *info = neuron_engine_insn_info(in->opcode);
	struct neuron_trace_record *r;
	u64 read, written;

	if (t->count >= trace_capacity(t)) {
		t->dropped++;
		return;
	}
	r = trace_records(t) + t->count++;
	neuron_engine_insn_bytes(prog, index, &read, &written);
	r->start_ns = start;
	r->end_ns = end;
	r->work = part_share(neuron_engine_insn_cost(prog, index), count, parts);
	r->bytes_read = part_share(read, count, parts);
	r->bytes_written = part_share(written, count, parts);
	r->index = index;
	r->opcode = (u16)in->opcode;
	r->kind = info->kind == NEURON_INSN_SYNC ? NEURON_TRACE_SYNC :
		  info->kind == NEURON_INSN_NOP ? NEURON_TRACE_NOP : NEURON_TRACE_COMPUTE;
	r->pad = 0;
	r->part = first;
	r->part_count = count;
	r->parts = parts;
	r->pad2 = 0;
}

u64 neuron_engine_trace_extent(const struct neuron_engine_program *prog)
{
	u64 records = 0;
	u32 i;

	/* Every record runs at least one part of its instruction. */
	for (i = 0; i < prog->insn_count; i++)
		records += neuron_engine_insn_parts(prog, i);
	return sizeof(struct neuron_trace_header) + records * sizeof(struct neuron_trace_record);
}

void neuron_engine_trace_close(struct neuron_engine_trace *t, u32 core, u64 seq,
			       u32 insn_count, u32 status, u64 now_ns)
{
	struct neuron_trace_header *h = t->buf.base;

	if (!h || t->buf.size < sizeof(*h))
		return;
	h->magic = NEURON_TRACE_MAGIC;
	h->version = NEURON_TRACE_VERSION;
	h->header_size = sizeof(*h);
	h->record_size = sizeof(struct neuron_trace_record);
	h->capacity = (u32)(trace_capacity(t) < 0xffffffffu ? trace_capacity(t) : 0xffffffffu);
	h->count = t->count;
	h->dropped = t->dropped;
	h->core = core;
	h->status = status;
	h->seq = seq;
	h->submitted_ns = t->submitted_ns;
	h->dequeued_ns = t->dequeued_ns;
	h->started_ns = t->started_ns;
	h->finished_ns = now_ns;
	h->insn_count = insn_count;
	h->pad = 0;
	h->reserved[0] = 0;
	h->reserved[1] = 0;
}

/*
 * One section of at most @budget work from instruction *@i, part *@part:
 * whole instructions while they fit, else parts of one. An instruction
 * that would fit a whole section is left to the next one rather than cut.
 * Returns 0 or a fault, with *@at the instruction it ran last.
 */
static u32 run_section(const struct neuron_run_host *host, void *ctx,
		       const struct neuron_run_job *job, u64 budget, u32 *i, u32 *part, u32 *at)
{
	const struct neuron_engine_program *prog = job->prog;
	struct neuron_engine_trace *trace = job->trace;
	const u64 full = job->section_work;
	u64 start = 0;
	u32 fault = 0;

	while (*i < prog->insn_count && budget && !neuron_engine_insn_is_sync(&prog->insns[*i])) {
		u64 cost = neuron_engine_insn_cost(prog, *i), per_part, count;
		u32 parts;

		*at = *i;
		if (trace)
			start = host->now_ns(ctx);
		if (!*part && cost <= budget) {
			/* Whole: its parts are counted only for a trace. */
			fault = neuron_engine_step(prog, *i, job->slots, job->scratch);
			if (trace) {
				parts = neuron_engine_insn_parts(prog, *i);
				trace_insn(trace, prog, *i, 0, parts, parts, start, host->now_ns(ctx));
			}
			budget -= cost;
			(*i)++;
		} else {
			parts = neuron_engine_insn_parts(prog, *i);
			if (!*part && budget < full && cost <= full)
				break;	/* the next section runs it whole */
			per_part = cost / parts ? cost / parts : 1;
			count = budget / per_part;
			if (!count && budget < full)
				break;	/* too little left for a part */
			if (!count)
				count = 1;
			if (count > parts - *part)
				count = parts - *part;
			fault = neuron_engine_step_part(prog, *i, job->slots, job->scratch,
							*part, (u32)count);
			if (trace)
				trace_insn(trace, prog, *i, *part, (u32)count, parts, start,
					   host->now_ns(ctx));
			budget -= budget < count * per_part ? budget : count * per_part;
			*part += (u32)count;
			if (*part == parts) {
				*part = 0;
				(*i)++;
			}
		}
		if (fault)
			break;
	}
	return fault;
}

void neuron_engine_run(const struct neuron_run_host *host, void *ctx,
		       const struct neuron_run_job *job, struct neuron_run_result *res)
{
	const struct neuron_engine_program *prog = job->prog;
	u32 i = 0, part = 0, at = 0, st, fault;

	u64 start = 0;

	res->status = NEURON_JOB_OK;
	res->error = 0;
	res->error_index = 0;
	if (job->trace)
		job->trace->started_ns = host->now_ns(ctx);
	while (i < prog->insn_count) {
		if (neuron_engine_insn_is_sync(&prog->insns[i])) {
			if (job->trace)
				start = host->now_ns(ctx);
			st = run_sync(host, ctx, job, &prog->insns[i]);
			if (job->trace)
				trace_insn(job->trace, prog, i, 0, 1, 1, start, host->now_ns(ctx));
			if (st) {
				res->status = st;
				res->error = st == NEURON_JOB_INVALID ? NEURON_ISA_E_PARAM : 0;
				res->error_index = i;
				return;
			}
			i++;
			continue;
		}
		host->fpu_begin(ctx);
		fault = run_section(host, ctx, job, job->section_work, &i, &part, &at);
		host->fpu_end(ctx);
		if (fault) {
			res->status = NEURON_JOB_FAULT;
			res->error = fault;
			res->error_index = at;
			return;
		}
		if (i < prog->insn_count && host->aborting(ctx)) {
			res->status = NEURON_JOB_ABORTED;
			res->error_index = i;
			return;
		}
		/* After the last section too: a job that ran past its time did not end in it. */
		if (host->now_ns(ctx) > job->deadline_ns) {
			res->status = NEURON_JOB_TIMEOUT;
			res->error_index = i < prog->insn_count ? i : prog->insn_count - 1;
			return;
		}
		host->yield(ctx);
	}
}
