/* lesson05_redirect.c — a two-port wire: what arrives on one router port leaves by the other.
 *
 * Teaches: XDP_REDIRECT with a devmap. bpf_redirect_map(&tx_port, slot, flags) looks up slot
 * `slot` of the devmap `tx_port`, which holds an interface index, and queues the frame for that
 * interface's driver: it leaves without the kernel's network stack ever seeing it — no routing, no
 * neighbour lookup, no qdisc. The frames queued during one NAPI poll go out in bulk at its end.
 * A plain devmap is an array, so its key is a slot (0 and 1 here), not an interface index, which
 * would size it by the largest index of the host (BPF_MAP_TYPE_DEVMAP_HASH, Linux 5.4, is the
 * devmap keyed by ifindex; bcc cannot declare one). `out_slot` says which slot a frame arriving
 * on a port leaves by: key = ifindex of the arriving port, value = slot. User space fills both;
 * an empty slot makes bpf_redirect_map return the action in the low bits of `flags`, here
 * XDP_ABORTED, and a port not in `out_slot` passes its frames to the stack.
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

BPF_DEVMAP(tx_port, 2);                  /* slot → the interface to leave by */
BPF_HASH(out_slot, u32, u32, 2);         /* ifindex of the arriving port → its slot in tx_port */
BPF_PERCPU_ARRAY(counters, struct datarec, XDP_ACTION_MAX);

int xdp_redirect(struct xdp_md *ctx)
{
	u32 ifindex = ctx->ingress_ifindex;
	u32 *slot = out_slot.lookup(&ifindex);
	u32 action = slot ? tx_port.redirect_map(*slot, 0) : XDP_PASS;
	struct datarec *rec = counters.lookup(&action);

	if (rec) {
		rec->packets++;
		rec->bytes += ctx->data_end - ctx->data;
	}
	return action;
}
