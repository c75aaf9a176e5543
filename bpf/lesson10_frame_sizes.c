/* lesson10_frame_sizes.c — how long are the frames the program is handed?
 *
 * Teaches: generic mode runs on the kernel's skb, after GRO. On a NIC, or a veth in NAPI mode,
 * the receive path may coalesce the segments of a TCP flow into one "super-packet" before the
 * core stack sees it (GRO); native XDP runs before that, on each frame as it arrived, while
 * generic XDP runs in __netif_receive_skb_core, after it, and is handed the whole coalesced skb
 * (linearised, copied into one buffer, since this program does not declare multi-buffer support).
 * `frames[0]` counts the frames that fit the link (at most FRAME_LIMIT bytes: the MTU plus the
 * 14-byte Ethernet header), `frames[1]` the longer ones; `longest[0]` is the longest frame seen,
 * per CPU (no CPU writes another's copy, so no update is lost). Every frame is passed.
 */
#include "parsing_helpers.h"

#ifndef FRAME_LIMIT
#define FRAME_LIMIT 1514
#endif

BPF_PERCPU_ARRAY(frames, u64, 2);
BPF_PERCPU_ARRAY(longest, u64, 1);

int lesson10_frame_sizes(struct xdp_md *ctx)
{
	u64 len = ctx->data_end - ctx->data;
	u32 zero = 0, longer = len > FRAME_LIMIT;
	u64 *count = frames.lookup(&longer);
	u64 *max = longest.lookup(&zero);

	if (count)
		(*count)++;
	if (max && len > *max)
		*max = len;
	return XDP_PASS;
}
