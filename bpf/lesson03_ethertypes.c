/* lesson03_ethertypes.c — count frames per EtherType, with and without the bounds check.
 *
 * Teaches: the check every parser starts with. Before reading the Ethernet header, prove that all
 * of it is inside the packet: `eth + 1` points just past the header (C pointer arithmetic moves
 * by sizeof(struct ethhdr) = 14 bytes); if that is beyond data_end, the frame is too short and the
 * program leaves without reading it. After this comparison the verifier knows that bytes 0-13
 * exist on the path that goes on, and accepts the read of eth->h_proto (bytes 12-13).
 *
 * Built with cflags=["-DSKIP_BOUNDS_CHECK"] the check is left out, and the verifier rejects the
 * program at load time: lesson 03 shows that error.
 *
 * `ethertypes` maps the EtherType (network byte order, as in the frame) to a frame count. Only
 * the first EtherType is looked at: a VLAN-tagged frame counts as 802.1Q.
 */
#include "parsing_helpers.h"

BPF_HASH(ethertypes, __be16, u64, 64);

int lesson03_ethertypes(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

#ifndef SKIP_BOUNDS_CHECK
	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
#endif
	ethertypes.increment(eth->h_proto);
	return XDP_PASS;
}
