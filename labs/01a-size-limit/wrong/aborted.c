/* Bug: oversized frames are discarded with XDP_ABORTED, the verdict for a program's own errors, instead of XDP_DROP. */
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
		return XDP_ABORTED;
	}
	return XDP_PASS;
}
