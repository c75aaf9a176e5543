/* Lab 10a — several programs, one interface.
 *
 * Task: the dispatcher lab10a_dispatch is given; keep it the first function, it is the one that
 * gets attached. It runs the programs in the slots of `chain` in slot order, through tail calls.
 * Write the rest:
 *   next(ctx)     run the program in the next slot. A member that lets a frame go on ends with
 *                 `return next(ctx);`. An empty slot, or the end of `chain`, ends the chain and
 *                 the frame is passed.
 *   count_proto   count every frame it runs on in `frames`, under the ethertype behind its VLAN
 *                 tags (0: IPv4, 1: IPv6, 2: anything else), and pass it on.
 *   drop_discard  drop UDP to port 9 (discard) over IPv4 and IPv6, counted in dropped[0], and pass
 *                 everything else on. A later fragment has no UDP header: pass it on.
 * The members must work in any slots and any order, and several CPUs run the chain at once.
 */
#include "parsing_helpers.h"

#define CHAIN_SLOTS 4

BPF_PROG_ARRAY(chain, CHAIN_SLOTS);
BPF_PERCPU_ARRAY(position, u32, 1);     /* the slot the current frame is at */
BPF_ARRAY(frames, u64, 3);              /* count_proto: 0 IPv4, 1 IPv6, 2 anything else */
BPF_ARRAY(dropped, u64, 1);             /* drop_discard: the frames it dropped */

int lab10a_dispatch(struct xdp_md *ctx)
{
	u32 zero = 0;
	u32 *pos = position.lookup(&zero);

	if (!pos)
		return XDP_PASS;
	*pos = 0;
	chain.call(ctx, 0);     /* does not return if slot 0 holds a program */
	return XDP_PASS;        /* slot 0 is empty: nothing to run */
}

/* The end of every member that lets a frame go on: run the program in the next slot. */
static __always_inline int next(void *ctx)
{
	/* TODO: move the frame's position on, tail-call that slot */
	return XDP_PASS;
}

int count_proto(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;

	/* TODO: count the frame under its ethertype */
	return XDP_PASS;
}

int drop_discard(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *iph;
	struct ipv6hdr *ip6h;
	struct udphdr *udph;

	/* TODO: drop UDP to port 9 over IPv4 and IPv6 */
	return XDP_PASS;
}
