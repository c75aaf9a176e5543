/* lesson02_array.c — count packets and bytes per XDP action in one shared array, atomically.
 *
 * Teaches: the plain BPF_ARRAY, and why its counters need atomic additions. An array map holds one
 * value per index, and every CPU sees the same one. Frames that arrive on different receive
 * queues are handled on different CPUs at the same time, so two CPUs can update the same slot at
 * once: `rec->packets++` is a load, an add and a store, and two of them interleaved lose one
 * increment. __sync_fetch_and_add() makes each addition atomic (a BPF atomic add; on x86 a
 * lock-prefixed add). That is correct, but to add, a CPU must own the slot's cache line
 * exclusively, so under load the line moves from CPU to CPU with every packet. xdp_count.c
 * counts the same things in a per-CPU array, with plain additions.
 *
 * Returns ACTION (XDP_PASS unless compiled with cflags=["-DACTION=XDP_DROP"]) and counts each
 * frame under it; `bytes` adds up the frame lengths as XDP sees them (Ethernet header included).
 */
#ifndef ACTION
#define ACTION XDP_PASS
#endif
#define XDP_ACTION_MAX (XDP_REDIRECT + 1)   /* XDP_ABORTED .. XDP_REDIRECT: 5 actions */

struct datarec {
	u64 packets;
	u64 bytes;
};

BPF_ARRAY(counters, struct datarec, XDP_ACTION_MAX);

int lesson02_array(struct xdp_md *ctx)
{
	u32 action = ACTION;
	struct datarec *rec = counters.lookup(&action);

	if (!rec)                       /* the verifier insists: a lookup may return NULL */
		return XDP_ABORTED;
	__sync_fetch_and_add(&rec->packets, 1);
	__sync_fetch_and_add(&rec->bytes, ctx->data_end - ctx->data);
	return action;
}
