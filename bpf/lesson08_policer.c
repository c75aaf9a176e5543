/* lesson08_policer.c — a token-bucket policer per IPv4 source address, at XDP.
 *
 * Teaches: keeping state per flow in an LRU hash map, time in XDP (bpf_ktime_get_ns), a spin
 * lock around a read-modify-write, and settings written from user space into an array map.
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
 * SOURCES THE TABLE DOES NOT HOLD. The table has room for 1024 sources, and a sender can make up
 * as many source addresses as it likes. In a plain hash, once 1024 made-up sources have filled
 * it, a new source finds no room and nothing polices it: the policer fails open under the very
 * attack it is there for. `buckets` is an LRU hash instead: the policy is that a new source
 * starts with a full bucket and takes the place of the source seen least recently. A source
 * that keeps sending keeps its bucket (it is always recently seen) and is policed; a flood of
 * spoofed sources, each address new, gets one bucket's worth through per address, because a
 * per-source policer cannot tell them apart. The alternative is one shared bucket for the
 * sources the table does not hold: it caps such a flood at one rate, but during the flood every
 * newcomer, spoofed or real, shares that one rate.
 *
 * WHY A SPIN LOCK. The same program runs on every CPU at once; two frames of one source may be
 * handled at the same time on two CPUs (one NAPI poll per receive queue, or a veth's sender moving
 * between CPUs). Refill-then-take is a read-modify-write of two fields, which no single atomic
 * instruction covers; bpf_spin_lock() makes it one step. The verifier allows one lock held at a
 * time, no helper calls while it is held, and requires the unlock on every path. The kernel
 * refuses a bpf_spin_lock in an LRU hash's values (map creation fails with EOPNOTSUPP), so the
 * locks live in an array of 64, and a source's address picks its lock: two sources that share
 * one only wait for each other now and then. (An LRU element can be evicted and reused while
 * another CPU still works on it: that frame is then charged to the newcomer. It takes 1024 new
 * sources within a frame's time, and costs one frame's tokens.)
 *
 * `policy` (slot 0) holds the rate and the burst; a rate of 0 switches policing off (everything
 * passes, and is still counted). `stats` counts frames and bytes passed and dropped per source,
 * an LRU too, so a flood of made-up sources cannot stop it counting the real ones. Frames that
 * are not IPv4 pass, uncounted.
 */
#include "parsing_helpers.h"

#define NSEC_PER_SEC 1000000000ULL

struct policy {
	u64 rate;        /* bytes per second; 0: no policing */
	u64 burst;       /* bytes: the bucket's depth, at most `rate` (one second of tokens) */
};

struct bucket {
	u64 tokens;      /* what may pass now, in billionths of a byte */
	u64 last_ns;     /* when tokens was last refilled */
};

struct bucket_lock {
	struct bpf_spin_lock lock;
};

struct verdicts {
	u64 passed;
	u64 passed_bytes;
	u64 dropped;
	u64 dropped_bytes;
};

BPF_ARRAY(policy, struct policy, 1);
BPF_TABLE("lru_hash", __be32, struct bucket, buckets, 1024);
BPF_ARRAY(locks, struct bucket_lock, 64);
BPF_TABLE("lru_percpu_hash", __be32, struct verdicts, stats, 1024);

/* The lock of a source: the top 6 bits of its address times Knuth's multiplicative constant, so
 * that neighbouring addresses (10.0.0.1, 10.0.0.2) get different locks. */
static __always_inline u32 lock_of(__be32 source)
{
	return ((u32)source * 2654435761U) >> 26;
}

/* Refill `b` for the time since its previous frame, then take `len` bytes if it holds them.
 * Tokens are kept in billionths of a byte: a refill is then exactly elapsed_ns * rate, with no
 * division and nothing rounded away, however often frames come. */
static __always_inline int take(struct bucket *b, struct bpf_spin_lock *lock, struct policy *p,
				 u64 now, u64 len)
{
	u64 cap = p->burst * NSEC_PER_SEC, need = len * NSEC_PER_SEC, elapsed = 0, tokens;
	int ok = 0;

	bpf_spin_lock(lock);
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
	bpf_spin_unlock(lock);
	return ok;
}

int xdp_policer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data };
	struct verdicts zero_counts = {}, *counts;
	struct bucket fresh = {}, *b;
	struct bucket_lock *lock;
	struct ethhdr *eth;
	struct iphdr *iph;
	struct policy *p;
	u64 len = data_end - data, now;
	__be32 source;
	u32 slot = 0, stripe;
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
			/* A new source starts with a full bucket; when the table is full, the insert
			 * evicts the source seen least recently. If another CPU inserted it meanwhile,
			 * BPF_NOEXIST keeps theirs, and the lookup below finds it. */
			fresh.tokens = p->burst * NSEC_PER_SEC;
			fresh.last_ns = now;
			buckets.insert(&source, &fresh);
			b = buckets.lookup(&source);
		}
		stripe = lock_of(source);
		lock = locks.lookup(&stripe);
		if (b && lock)                    /* b is NULL only if evicted at once: let it pass */
			pass = take(b, &lock->lock, p, now, len);
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
