/* lesson10_redirect.c — redirect every frame to one interface, chosen by user space.
 *
 * Teaches: what a redirect target must support. bpf_redirect(ifindex, 0) returns XDP_REDIRECT
 * and asks the kernel to send the frame out of interface `ifindex` — an index of the network
 * namespace the frame arrived in. Whether the frame leaves depends on the target and the mode:
 *   native mode:  the frame is still a raw XDP frame; the kernel hands it to the target driver's
 *                 ndo_xdp_xmit(). A device without it (lo, a bridge), or a veth whose peer could
 *                 not receive it, refuses: the frame is dropped and xdp:xdp_redirect_err fires.
 *   generic mode: the frame is already an skb; the kernel transmits it with the target's ordinary
 *                 transmit function, which every device has.
 * `target[0]` holds the ifindex (0: pass every frame to the stack); `counters` counts frames per
 * action as in xdp_count.c.
 */
#include "parsing_helpers.h"

struct datarec {
	u64 packets;
	u64 bytes;
};

BPF_ARRAY(target, u32, 1);
BPF_PERCPU_ARRAY(counters, struct datarec, XDP_ACTION_MAX);

int lesson10_redirect(struct xdp_md *ctx)
{
	u32 zero = 0;
	u32 *ifindex = target.lookup(&zero);
	u32 action = XDP_PASS;
	struct datarec *rec;

	if (ifindex && *ifindex)
		action = bpf_redirect(*ifindex, 0);
	rec = counters.lookup(&action);
	if (rec) {
		rec->packets++;
		rec->bytes += ctx->data_end - ctx->data;
	}
	return action;
}
