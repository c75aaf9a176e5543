/* Lab 01a — drop oversized frames: a solution.
 *
 * A frame's length is the distance from its first byte (ctx->data) to the byte after its last
 * (ctx->data_end): the whole frame, Ethernet header included. Frames longer than MAX_LEN are
 * dropped with XDP_DROP (the normal, silent way to discard a frame) and counted; the others,
 * MAX_LEN bytes exactly included, pass.
 */
#include <linux/bpf.h>

#define MAX_LEN 400              /* the longest frame that may pass, in bytes */

BPF_ARRAY(dropped, u64, 1);      /* dropped[0]: how many frames were dropped */

static __always_inline void count_drop(void)
{
	u32 key = 0;
	u64 *n = dropped.lookup(&key);

	if (n)
		__sync_fetch_and_add(n, 1);
}

int lab01_size_limit(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (data_end - data > MAX_LEN) {
		count_drop();
		return XDP_DROP;
	}
	return XDP_PASS;
}
