/* xdp_count.c — count packets and bytes per XDP action.
 *
 * Teaches: BPF maps, the way an XDP program talks to user space, and per-CPU maps.
 * `counters` has one slot per XDP action (XDP_ABORTED=0 ... XDP_REDIRECT=4). In a
 * BPF_PERCPU_ARRAY every CPU has its own copy of each slot, so two CPUs receiving packets at once
 * never write the same memory: no atomic instructions, no lost updates. The price is paid by the
 * reader, who adds the per-CPU values up (prog.maps["counters"] does that for you).
 *
 * The program returns ACTION (XDP_PASS unless compiled with cflags=["-DACTION=XDP_DROP"]) and
 * counts each packet under the action it returns; frames too short for an Ethernet header are
 * counted under XDP_DROP and dropped.
 */
#include "parsing_helpers.h"

#ifndef ACTION
#define ACTION XDP_PASS
#endif

struct datarec {
	u64 packets;
	u64 bytes;
};

BPF_PERCPU_ARRAY(counters, struct datarec, XDP_ACTION_MAX);

static __always_inline int record(struct xdp_md *ctx, u32 action)
{
	struct datarec *rec = counters.lookup(&action);

	/* The verifier insists on this NULL check even though `action` is always < XDP_ACTION_MAX:
	 * a lookup may fail, and the program must show it handles that. */
	if (!rec)
		return XDP_ABORTED;
	/* Per-CPU slot: plain additions are safe (no other CPU touches this copy). */
	rec->packets++;
	rec->bytes += ctx->data_end - ctx->data;
	return action;
}

int xdp_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (data + sizeof(struct ethhdr) > data_end)
		return record(ctx, XDP_DROP);
	return record(ctx, ACTION);
}
