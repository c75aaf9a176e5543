/* Lab 01a — drop oversized frames.
 *
 * Task: drop every frame longer than MAX_LEN bytes (the whole frame, from ctx->data to
 * ctx->data_end) and count it by calling count_drop(); pass every other frame, one of exactly
 * MAX_LEN bytes too. Dropping is not an error: no XDP_ABORTED. Keep MAX_LEN, the map and
 * count_drop() as they are.
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

	/* TODO: drop (and count) frames longer than MAX_LEN, pass the rest */
	return XDP_PASS;
}
