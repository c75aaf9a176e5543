/* Bug: the end of the frame (ctx->data_end, where it ends in memory) is compared with MAX_LEN instead of its length (data_end - data). */
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

	if (data_end - data > 1500) {
		count_drop();
		return XDP_DROP;
	}
	return XDP_PASS;
}
