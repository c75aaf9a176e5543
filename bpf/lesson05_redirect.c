/* lesson05_redirect.c — a two-port wire: what arrives on one router port leaves by the other.
 *
 * Teaches: XDP_REDIRECT with a devmap. bpf_redirect_map(&tx_port, key, flags) looks up slot `key`
 * of the devmap `tx_port`, which holds an interface index, and queues the frame for that
 * interface's driver: it leaves without the kernel's network stack ever seeing it — no routing, no
 * neighbour lookup, no qdisc. The frames queued during one NAPI poll go out in bulk at its end.
 * Slot = ifindex of the arriving port, value = ifindex of the port to leave by; user space fills
 * the slots (an empty slot makes bpf_redirect_map return the action in the low bits of `flags`,
 * here XDP_ABORTED).
 *
 * The frame leaves exactly as it arrived: redirecting is layer 2 forwarding, like a switch port,
 * so a frame is only accepted at the other end when it is addressed to that host's MAC.
 * `counters` counts frames per action, as in xdp_count.c.
 */
#include "parsing_helpers.h"

struct datarec {
	u64 packets;
	u64 bytes;
};

BPF_DEVMAP(tx_port, 64);
BPF_PERCPU_ARRAY(counters, struct datarec, XDP_ACTION_MAX);

int xdp_redirect(struct xdp_md *ctx)
{
	u32 action = tx_port.redirect_map(ctx->ingress_ifindex, 0);
	struct datarec *rec = counters.lookup(&action);

	if (rec) {
		rec->packets++;
		rec->bytes += ctx->data_end - ctx->data;
	}
	return action;
}
