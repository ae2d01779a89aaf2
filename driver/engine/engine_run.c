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

/*
 * One section of at most @budget work from instruction *@i, part *@part:
 * whole instructions while they fit, else parts of one. An instruction
 * that would fit a whole section is left to the next one rather than cut.
 * Returns 0 or a fault, with *@at the instruction it ran last.
 */
static u32 run_section(const struct neuron_run_job *job, u64 budget, u32 *i, u32 *part, u32 *at)
{
	const struct neuron_engine_program *prog = job->prog;
	const u64 full = job->section_work;
	u32 fault = 0;

	while (*i < prog->insn_count && budget && !neuron_engine_insn_is_sync(&prog->insns[*i])) {
		u64 cost = neuron_engine_insn_cost(prog, *i), per_part, count;
		u32 parts = neuron_engine_insn_parts(prog, *i);

		*at = *i;
		if (!*part && cost <= budget) {
			fault = neuron_engine_step(prog, *i, job->slots, job->scratch);
			budget -= cost;
			(*i)++;
		} else {
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

	res->status = NEURON_JOB_OK;
	res->error = 0;
	res->error_index = 0;
	while (i < prog->insn_count) {
		if (neuron_engine_insn_is_sync(&prog->insns[i])) {
			st = run_sync(host, ctx, job, &prog->insns[i]);
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
		fault = run_section(job, job->section_work, &i, &part, &at);
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
