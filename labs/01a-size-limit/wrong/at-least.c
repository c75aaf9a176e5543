/* Bug: frames of MAX_LEN bytes or more are dropped (>= instead of >): a frame of exactly MAX_LEN bytes, which may pass, is dropped. */
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

	if (data_end - data >= MAX_LEN) {
		count_drop();
		return XDP_DROP;
	}
	return XDP_PASS;
}
