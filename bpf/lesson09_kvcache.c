/* lesson09_kvcache.c — an in-kernel cache in front of a UDP key-value server (the idea of BMC,
 * Ghigoff et al., NSDI 2021: a cache in XDP in front of memcached).
 *
 * The protocol (xdplab/kvstore.py), UDP port KV_PORT, fixed sizes: keys KEY_LEN bytes, values
 * VAL_LEN bytes, so that every copy below has a size known at compile time (no loop at all):
 *     "GET <key>"            -> "VALUE <key> <value>"  |  "MISS <key>"
 *     "SET <key> <value>"    -> "STORED <key>"
 *
 * What the program does, IPv4 without VLAN tags only (everything else goes to the server untouched):
 *   GET, key in `cache`:  turns the request into the reply in place and sends it back with
 *                         XDP_TX — the server never sees the request;
 *   GET, key not cached:  XDP_PASS, the server answers (and fills the cache);
 *   SET:                  deletes the key from `cache` (invalidation), then XDP_PASS.
 *
 * Turning a GET into a VALUE reply:
 *   1. grow the frame by REPLY_LEN - GET_LEN bytes, at the front (bpf_xdp_adjust_head); every
 *      packet pointer is invalid afterwards, so the headers are found and bounds-checked again;
 *   2. write the request's headers there with MACs, IP addresses and UDP ports swapped;
 *   3. write the reply payload, set the new IP total length and UDP length;
 *   4. IPv4 header checksum: computed again over the 20-byte header (bpf_csum_diff);
 *      UDP checksum: computed over pseudo-header, UDP header and the new payload. (UDP over IPv4
 *      may also carry checksum 0, "none computed" — RFC 768 — which is cheaper; build with
 *      -DUDP_CSUM_ZERO to do that. Over IPv6 the checksum is mandatory.)
 *
 * A request is answered only if it is well formed and its checksums are right: the kernel would
 * drop a corrupted datagram before the server saw it, so the cache must not answer one either.
 *
 * Consistency. Userspace writes entries (the server, through the pinned map) while XDP reads
 * them on another CPU. Each entry carries a bpf_spin_lock: the server writes with BPF_F_LOCK, the
 * program copies the value out under the lock, so an update in place never shows it half an old
 * and half a new value. A deleted hash map element can be reused at once for another key, even
 * while a reader still holds a pointer to it; so the entry stores its key as well, and a reply is
 * sent only if that key is the one asked for. That leaves one narrow window: the kernel fills a
 * reused element for its new key without taking the element's lock, so a reader copying it at
 * that moment can get part of the old key and value and part of the new, with the old key still
 * the one asked for. So the server also stores `check`, a hash of key and value (entry_check(),
 * the same in xdplab/kvstore.py), and the program answers only if its copy hashes to the check it
 * copied: a torn copy does not (but with a chance of 2^-64), and goes to the server as a miss.
 *
 * `stats` counts, per CPU: hits (answered here), misses (GETs passed to the server), SETs seen
 * (their key invalidated), and other datagrams to KV_PORT passed on.
 */
#include "parsing_helpers.h"

#ifndef KV_PORT
#define KV_PORT 11211
#endif
#ifndef CACHE_ENTRIES
#define CACHE_ENTRIES 1024
#endif
#define KEY_LEN 8
#define VAL_LEN 32
#define GET_LEN (4 + KEY_LEN)                       /* "GET " key */
#define SET_LEN (4 + KEY_LEN + 1 + VAL_LEN)         /* "SET " key " " value */
#define REPLY_LEN (6 + KEY_LEN + 1 + VAL_LEN)       /* "VALUE " key " " value: 47 bytes */
#define REPLY_BUF 48                                /* rounded up to 4 for bpf_csum_diff */
#define IP_HDR_LEN 20                               /* requests with IP options go to the server */

struct kv_key {
	char name[KEY_LEN];
};

struct kv_entry {
	struct bpf_spin_lock lock;
	char key[KEY_LEN];
	char value[VAL_LEN];
	__u64 check;                /* entry_check() of key and value, written by the server */
};

struct kv_copy {                    /* an entry as copied out under its lock */
	__u64 key;
	__u64 value[VAL_LEN / 8];
	__u64 check;
};

struct kv_stats {
	u64 hits;
	u64 misses;
	u64 sets;
	u64 other;
};

BPF_HASH(cache, struct kv_key, struct kv_entry, CACHE_ENTRIES);
BPF_PERCPU_ARRAY(stats, struct kv_stats, 1);

/* Fold a 64-bit sum of 16-bit words into the 16-bit one's complement sum. */
static __always_inline __u16 csum_fold64(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	return csum_fold_helper((__u32)sum);
}

/* FNV-1a over the five 64-bit words of key and value (little-endian): a copy torn between two
 * entries hashes to neither's check. */
static __always_inline __u64 entry_check(const struct kv_copy *c)
{
	__u64 h = 0xcbf29ce484222325ULL;
	int i;

	h = (h ^ c->key) * 0x100000001b3ULL;
#pragma unroll
	for (i = 0; i < VAL_LEN / 8; i++)
		h = (h ^ c->value[i]) * 0x100000001b3ULL;
	return h;
}

static __always_inline struct kv_stats *get_stats(void)
{
	u32 zero = 0;

	return stats.lookup(&zero);
}

int lesson09_kvcache(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data };
	struct kv_stats *st = get_stats();
	struct ethhdr *eth;
	struct iphdr *iph;
	struct udphdr *udph;
	struct ethhdr oeth;
	struct iphdr oip;
	struct udphdr oudp;
	struct kv_key key;
	struct kv_entry *e;
	struct kv_copy copy;
	char reply[REPLY_BUF] = {};
	char *p;
	__u64 sum, asked;
	int len, extra;

	if (!st)
		return XDP_PASS;
	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP) || (eth->h_dest[0] & 1))
		return XDP_PASS;
	if (nh.pos != (void *)(eth + 1))	/* VLAN-tagged: the reply below is built untagged */
		return XDP_PASS;
	if (parse_iphdr(&nh, data_end, &iph) != IPPROTO_UDP || ip_is_fragment(iph))
		return XDP_PASS;
	len = parse_udphdr(&nh, data_end, &udph);
	if (len < 0 || udph->dest != bpf_htons(KV_PORT))
		return XDP_PASS;
	p = nh.pos;

	/* SET: invalidate, and let the server store the value (deleting is always safe, so even a
	 * SET with a bad checksum, which the kernel will drop, may do it) */
	if (len == SET_LEN && p + SET_LEN <= (char *)data_end && p[0] == 'S' && p[1] == 'E' &&
	    p[2] == 'T' && p[3] == ' ') {
		__builtin_memcpy(key.name, p + 4, KEY_LEN);
		cache.delete(&key);
		st->sets++;
		return XDP_PASS;
	}
	/* Only a well-formed GET is answered here: no IP options, lengths that agree, IPv4 header
	 * and UDP checksums right. The kernel would drop a corrupted request before the server
	 * saw it, so the cache must not answer one; anything unusual goes to the kernel. */
	if (len != GET_LEN || p + GET_LEN > (char *)data_end || p[0] != 'G' || p[1] != 'E' ||
	    p[2] != 'T' || p[3] != ' ' || iph->ihl * 4 != IP_HDR_LEN ||
	    iph->tot_len != bpf_htons(IP_HDR_LEN + sizeof(*udph) + GET_LEN) ||
	    csum_fold64(bpf_csum_diff(NULL, 0, (__be32 *)iph, IP_HDR_LEN, 0)) != 0xffff) {
		st->other++;
		return XDP_PASS;
	}
	if (udph->check) {            /* UDP header + "GET key": 20 bytes, a multiple of 4 as needed */
		sum = bpf_csum_diff(NULL, 0, (__be32 *)udph, sizeof(*udph) + GET_LEN, 0);
		sum += (__u64)iph->saddr + iph->daddr + bpf_htons(IPPROTO_UDP) + udph->len;
		if (csum_fold64(sum) != 0xffff) {
			st->other++;
			return XDP_PASS;
		}
	}

	/* GET: look the key up, copy the entry out under its lock, and answer only if the copy is
	 * of the key asked for and whole (its check matches) */
	__builtin_memcpy(key.name, p + 4, KEY_LEN);
	e = cache.lookup(&key);
	if (!e) {
		st->misses++;
		return XDP_PASS;
	}
	bpf_spin_lock(&e->lock);
	__builtin_memcpy(&copy.key, e->key, KEY_LEN);
	__builtin_memcpy(copy.value, e->value, VAL_LEN);
	copy.check = e->check;
	bpf_spin_unlock(&e->lock);
	__builtin_memcpy(&asked, key.name, KEY_LEN);
	if (copy.key != asked ||                  /* the element was reused for another key */
	    entry_check(&copy) != copy.check) {   /* or copied while being filled for another */
		st->misses++;
		return XDP_PASS;
	}
	__builtin_memcpy(reply + 6 + KEY_LEN + 1, copy.value, VAL_LEN);
	__builtin_memcpy(reply, "VALUE ", 6);
	__builtin_memcpy(reply + 6, key.name, KEY_LEN);
	reply[6 + KEY_LEN] = ' ';

	/* 1. make room for the reply: 35 more bytes. The frame grows at the front: native XDP
	 * guarantees XDP_PACKET_HEADROOM (256 bytes) before the packet, but not room after it (a
	 * veth copies a socket's skb into a buffer with that headroom, sized to fit). The headers
	 * are kept on the stack, and every packet pointer is found and checked again afterwards. */
	oeth = *eth;
	oip = *iph;
	oudp = *udph;
	if (bpf_xdp_adjust_head(ctx, -(REPLY_LEN - GET_LEN)))
		return XDP_PASS;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	iph = data + sizeof(*eth);
	udph = data + sizeof(*eth) + IP_HDR_LEN;
	p = (char *)(udph + 1);
	if (p + REPLY_LEN > (char *)data_end)
		return XDP_ABORTED;                 /* cannot happen: the frame just grew by that much */

	/* 2. the headers of the reply: the request's, with source and destination swapped */
	__builtin_memcpy(eth->h_dest, oeth.h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, oeth.h_dest, ETH_ALEN);
	eth->h_proto = oeth.h_proto;
	*iph = oip;
	iph->saddr = oip.daddr;
	iph->daddr = oip.saddr;
	iph->ttl = 64;
	udph->source = oudp.dest;
	udph->dest = oudp.source;

	/* 3. the payload and the new lengths */
	__builtin_memcpy(p, reply, REPLY_LEN);
	iph->tot_len = bpf_htons(IP_HDR_LEN + sizeof(*udph) + REPLY_LEN);
	udph->len = bpf_htons(sizeof(*udph) + REPLY_LEN);

	/* 4. checksums. The IPv4 header's, from scratch over its 20 bytes. */
	iph->check = 0;
	iph->check = ~csum_fold64(bpf_csum_diff(NULL, 0, (__be32 *)iph, IP_HDR_LEN, 0));
	udph->check = 0;
#ifndef UDP_CSUM_ZERO
	/* The UDP checksum: pseudo-header (addresses, protocol, UDP length), UDP header, payload.
	 * The payload is summed from the stack copy, zero-padded to 48 bytes: RFC 768 pads an odd
	 * length with a zero byte, so the padding leaves the sum as it is. */
	sum = bpf_csum_diff(NULL, 0, (__be32 *)reply, REPLY_BUF, 0);
	sum += (__u64)iph->saddr + iph->daddr + bpf_htons(IPPROTO_UDP) + udph->len;
	sum += (__u64)udph->source + udph->dest + udph->len;
	udph->check = ~csum_fold64(sum);
	if (!udph->check)
		udph->check = CSUM_MANGLED_0;       /* a computed 0 is sent as 0xffff */
#endif
	/* A frame padded to the Ethernet minimum (60 bytes) had padding after the request, which
	 * now trails the reply: cut it off. */
	extra = (long)data_end - (long)(p + REPLY_LEN);
	if (extra > 0)
		bpf_xdp_adjust_tail(ctx, -extra);
	st->hits++;
	return XDP_TX;
}
