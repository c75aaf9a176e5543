/* xdp_macswap_tx.c — send every frame straight back out of the interface it arrived on.
 *
 * Teaches: XDP_TX and rewriting a packet in place. The program may write to the packet (within
 * the bounds it has checked); XDP_TX then transmits the modified frame on the same interface,
 * from the driver, without the kernel stack ever seeing it. Swapping the MAC addresses makes the
 * frame go back to its sender; the IP header is untouched, so the sender's stack discards it
 * (it is addressed to someone else) — a "reflector" as used to measure a link's raw forwarding
 * rate.
 *
 * On veth: a frame sent with XDP_TX is queued for the peer, and the veth driver wakes the peer's
 * receive path for it only when the peer runs an XDP program in native mode. Attach one there
 * (xdp_pass.c will do) or the frames wait — or are lost — in the peer's queue.
 */
#include "parsing_helpers.h"

int xdp_macswap_tx(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;

	if (parse_ethhdr(&nh, data_end, &eth) < 0)
		return XDP_PASS;
	swap_src_dst_mac(eth);
	return XDP_TX;
}
