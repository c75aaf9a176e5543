/* Lab 08a — a per-source rate limiter (token bucket).
 *
 * Task: give every IPv4 source address a bucket of tokens. A packet that finds a token in its
 * source's bucket takes it and passes; a packet that finds the bucket empty is dropped. Buckets
 * refill at RATE tokens per second, up to BURST tokens; a source seen for the first time starts
 * with a full bucket (so its first BURST packets pass at once). Pass every frame that is not IPv4.
 *
 * Keep the buckets in the LRU hash map `buckets`, keyed by the source address: the tokens left,
 * and the time (bpf_ktime_get_ns(), nanoseconds) up to which the bucket has been refilled. Senders
 * can make up source addresses: after more of them than the map holds, a new source must still be
 * limited.
 * Do not change RATE and BURST: the check counts on them.
 */
#include "parsing_helpers.h"

#define RATE  20                            /* tokens per second, per source */
#define BURST 10                            /* the most tokens a bucket holds */
#define NS_PER_TOKEN (1000000000ULL / RATE) /* one token every 50 ms */

struct bucket {
	u64 tokens;
	u64 last_ns;
};

/* IPv4 source address → its bucket. An LRU hash: when it is full, a new source takes the place
 * of the one seen least recently (a plain BPF_HASH would have no room for it, and let it pass). */
BPF_TABLE("lru_hash", u32, struct bucket, buckets, 1024);

int lab07_limit(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *iph;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (parse_iphdr(&nh, data_end, &iph) < 0)
		return XDP_PASS;

	/* TODO: find iph->saddr's bucket (or start a full one), refill it for the time that passed,
	 * then take a token and pass, or drop when there is none */
	return XDP_PASS;
}
