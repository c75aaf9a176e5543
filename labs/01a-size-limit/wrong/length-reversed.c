/* Bug: the length is computed as ctx->data - ctx->data_end (the wrong way round) on the u32 fields: it wraps to a huge number and every frame is dropped. */
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
	u32 len = ctx->data - ctx->data_end;

	if (len > MAX_LEN) {
		count_drop();
		return XDP_DROP;
	}
	return XDP_PASS;
}
