/* lesson10_dispatcher.c — several XDP programs on one interface, chained with tail calls.
 *
 * Teaches: how programs share an interface. An interface runs ONE XDP program (per mode);
 * attaching another replaces it. To run several, attach a dispatcher that runs the others in
 * turn: lesson10_dispatcher, the first function, is the one to attach. The chain is a
 * BPF_PROG_ARRAY that user space fills with program file descriptors; slot 0 runs first.
 * `chain.call(ctx, i)` is bcc's bpf_tail_call(ctx, &chain, i): it jumps into the program in slot
 * i and never comes back (the callee reuses the caller's stack frame), so the caller cannot look
 * at a verdict afterwards. If slot i is empty, the call falls through to the next statement.
 *
 * So every member ends with `return next(ctx);`: it tail-calls the next slot, and when there is
 * none, the frame goes on to the stack (XDP_PASS). A member that decides (XDP_DROP, XDP_TX, ...)
 * just returns, and the rest of the chain does not run. `position` remembers which slot the
 * current frame is at. A per-CPU array is safe for this because XDP runs one frame to the end of
 * its chain on one CPU before the next frame there (not so on a PREEMPT_RT kernel: carry the
 * position in the frame's metadata, bpf_xdp_adjust_meta(), instead). The kernel ends a chain
 * after 33 tail calls.
 *
 * libxdp's dispatcher does the same job without the members' help, with freplace: each member
 * replaces a stub function that the dispatcher calls, so it returns, and the dispatcher runs the
 * next one only for the verdicts that member was configured to pass on.
 *
 * The members here: count_all counts every frame it sees, drop_port_9 drops UDP to port 9 (the
 * "discard" service). seen[i] counts the frames member i ran on, dropped[0] what drop_port_9
 * dropped.
 */
#include "parsing_helpers.h"

#define CHAIN_SLOTS 8

BPF_PROG_ARRAY(chain, CHAIN_SLOTS);
BPF_PERCPU_ARRAY(position, u32, 1);
BPF_PERCPU_ARRAY(seen, u64, 2);         /* 0: count_all, 1: drop_port_9 */
BPF_PERCPU_ARRAY(dropped, u64, 1);

/* Continue with the next slot. (ctx is a void * here: xdplab loads every int function of a
 * file that takes a struct xdp_md pointer as an XDP program, and this one is only a helper.) */
static __always_inline int next(void *ctx)
{
	u32 zero = 0;
	u32 *pos = position.lookup(&zero);

	if (!pos)
		return XDP_PASS;
	*pos += 1;
	chain.call(ctx, *pos);  /* does not return if slot *pos holds a program */
	return XDP_PASS;        /* end of the chain */
}

static __always_inline void bump(u64 *n)
{
	if (n)
		*n += 1;    /* per-CPU slot: no other CPU writes it */
}

int lesson10_dispatcher(struct xdp_md *ctx)
{
	u32 zero = 0;
	u32 *pos = position.lookup(&zero);

	if (!pos)
		return XDP_PASS;
	*pos = 0;
	chain.call(ctx, 0);
	return XDP_PASS;        /* slot 0 is empty: nothing to run */
}

int count_all(struct xdp_md *ctx)
{
	u32 me = 0;

	bump(seen.lookup(&me));
	return next(ctx);
}

int drop_port_9(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *iph;
	struct udphdr *udph;
	u32 me = 1, zero = 0;

	bump(seen.lookup(&me));
	if (parse_ethhdr(&nh, data_end, &eth) == bpf_htons(ETH_P_IP) &&
	    parse_iphdr(&nh, data_end, &iph) == IPPROTO_UDP && !ip_is_later_fragment(iph) &&
	    parse_udphdr(&nh, data_end, &udph) >= 0 && udph->dest == bpf_htons(9)) {
		bump(dropped.lookup(&zero));
		return XDP_DROP;
	}
	return next(ctx);
}
