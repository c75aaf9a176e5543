/* lesson08_policer.c — a token-bucket policer per IPv4 source address, at XDP.
 *
 * Teaches: keeping state per flow in a hash map, time in XDP (bpf_ktime_get_ns), a spin lock
 * around a read-modify-write, and settings written from user space into an array map.
 *
 * THE TOKEN BUCKET. Each source has a bucket holding up to `burst` bytes of tokens. Tokens flow in
 * at `rate` bytes per second; a frame may pass when the bucket holds at least its length, and
 * takes that many tokens out. So a source gets `rate` bytes/s on average, and at most `burst`
 * bytes at once after a pause. A frame that finds too few tokens is dropped here, before the
 * router has spent anything on it (in native mode: no skb, no routing, no queue). The bucket is
 * refilled lazily: no timer runs; each frame adds the tokens earned since the bucket's previous
 * frame.
 *
 * Lengths are whole frames including the 14-byte Ethernet header, as tbf counts them on a veth,
 * so a rate here means the same as the same rate given to tbf.
 *
 * WHY A SPIN LOCK. The same program runs on every CPU at once; two frames of one source may be
 * handled at the same time on two CPUs (one NAPI poll per receive queue, or a veth's sender moving
 * between CPUs). Refill-then-take is a read-modify-write of two fields, which no single atomic
 * instruction covers; bpf_spin_lock() makes it one step. The verifier allows one lock held at a
 * time, no helper calls while it is held, and requires the unlock on every path.
 *
 * `policy` (slot 0) holds the rate and the burst; a rate of 0 switches policing off (everything
 * passes, and is still counted). `stats` counts frames and bytes passed and dropped per source.
 * Frames that are not IPv4 pass, uncounted.
 */
#include "parsing_helpers.h"

#define NSEC_PER_SEC 1000000000ULL

struct policy {
	u64 rate;        /* bytes per second; 0: no policing */
	u64 burst;       /* bytes: the bucket's depth, at most `rate` (one second of tokens) */
};

struct bucket {
	struct bpf_spin_lock lock;
	u64 tokens;      /* what may pass now, in billionths of a byte */
	u64 last_ns;     /* when tokens was last refilled */
};

struct verdicts {
	u64 passed;
	u64 passed_bytes;
	u64 dropped;
	u64 dropped_bytes;
};

BPF_ARRAY(policy, struct policy, 1);
BPF_HASH(buckets, __be32, struct bucket, 1024);
BPF_PERCPU_HASH(stats, __be32, struct verdicts, 1024);

/* Refill `b` for the time since its previous frame, then take `len` bytes if it holds them.
 * Tokens are kept in billionths of a byte: a refill is then exactly elapsed_ns * rate, with no
 * division and nothing rounded away, however often frames come. */
static __always_inline int take(struct bucket *b, struct policy *p, u64 now, u64 len)
{
	u64 cap = p->burst * NSEC_PER_SEC, need = len * NSEC_PER_SEC, elapsed = 0, tokens;
	int ok = 0;

	bpf_spin_lock(&b->lock);
	if (now > b->last_ns) {               /* another CPU may have refilled at a later `now` */
		elapsed = now - b->last_ns;
		b->last_ns = now;
	}
	if (elapsed > NSEC_PER_SEC)           /* a bucket fills within a second (burst <= rate), */
		elapsed = NSEC_PER_SEC;       /* and elapsed * rate cannot overflow */
	tokens = b->tokens + elapsed * p->rate;
	if (tokens > cap)
		tokens = cap;
	if (tokens >= need) {
		tokens -= need;
		ok = 1;
	}
	b->tokens = tokens;
	bpf_spin_unlock(&b->lock);
	return ok;
}

int xdp_policer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data };
	struct verdicts zero_counts = {}, *counts;
	struct bucket fresh = {}, *b;
	struct ethhdr *eth;
	struct iphdr *iph;
	struct policy *p;
	u64 len = data_end - data, now;
	__be32 source;
	u32 slot = 0;
	int pass = 1;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (parse_iphdr(&nh, data_end, &iph) < 0)
		return XDP_PASS;
	source = iph->saddr;

	p = policy.lookup(&slot);
	if (p && p->rate) {
		now = bpf_ktime_get_ns();
		b = buckets.lookup(&source);
		if (!b) {
			/* A new source starts with a full bucket. If another CPU inserted it meanwhile,
			 * BPF_NOEXIST keeps theirs, and the lookup below finds it. */
			fresh.tokens = p->burst * NSEC_PER_SEC;
			fresh.last_ns = now;
			buckets.insert(&source, &fresh);
			b = buckets.lookup(&source);
		}
		if (b)                            /* NULL only when the map is full: let it pass */
			pass = take(b, p, now, len);
	}

	counts = stats.lookup_or_try_init(&source, &zero_counts);
	if (counts) {
		if (pass) {
			counts->passed++;
			counts->passed_bytes += len;
		} else {
			counts->dropped++;
			counts->dropped_bytes += len;
		}
	}
	return pass ? XDP_PASS : XDP_DROP;
}
