/* Bug: the reply's checksum sum is cut to 16 bits: the end-around carries are dropped. */
#include "parsing_helpers.h"

#define KV_PORT 11211
#define CACHE_ENTRIES 1024
#define KEY_LEN 8
#define VAL_LEN 32
#define GET_LEN (4 + KEY_LEN)                       /* "GET " key */
#define SET_LEN (4 + KEY_LEN + 1 + VAL_LEN)         /* "SET " key " " value */
#define REPLY_LEN (6 + KEY_LEN + 1 + VAL_LEN)       /* "VALUE " key " " value: 47 bytes */
#define REPLY_BUF 48                                /* rounded up to 4 for bpf_csum_diff */
#define GROW (REPLY_LEN - GET_LEN)                  /* the reply is 35 bytes longer */
#define IP_HDR_LEN 20                               /* IPv4 requests with options go to the server */
#define HOP_LIMIT 64                                /* TTL / hop limit of a reply */

struct kv_key {
	char name[KEY_LEN];
};

struct kv_entry {
	struct bpf_spin_lock lock;
	char key[KEY_LEN];
	char value[VAL_LEN];
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

enum { KV_OTHER, KV_GET, KV_SET };

/* What the UDP payload at p asks (len: its length as the UDP header says): KV_GET or KV_SET,
 * with the key copied to *key, or KV_OTHER. */
static __always_inline int kv_request(char *p, void *data_end, int len, struct kv_key *key)
{
	if (len == SET_LEN && p + SET_LEN <= (char *)data_end && p[0] == 'S' && p[1] == 'E' &&
	    p[2] == 'T' && p[3] == ' ') {
		__builtin_memcpy(key->name, p + 4, KEY_LEN);
		return KV_SET;
	}
	if (len == GET_LEN && p + GET_LEN <= (char *)data_end && p[0] == 'G' && p[1] == 'E' &&
	    p[2] == 'T' && p[3] == ' ') {
		__builtin_memcpy(key->name, p + 4, KEY_LEN);
		return KV_GET;
	}
	return KV_OTHER;
}

/* Look `key` up. On a hit, write the reply payload "VALUE <key> <value>" into reply (REPLY_BUF
 * bytes, zero-padded) and return 0; return -1 when the key is not cached. The value is copied
 * under the entry's lock; the entry's own key tells whether the element was reused meanwhile. */
static __always_inline int kv_fetch(struct kv_key *key, char *reply)
{
	struct kv_entry *e = cache.lookup(key);
	__u64 seen, asked;

	if (!e)
		return -1;
	bpf_spin_lock(&e->lock);
	__builtin_memcpy(&seen, e->key, KEY_LEN);
	__builtin_memcpy(reply + 6 + KEY_LEN + 1, e->value, VAL_LEN);
	bpf_spin_unlock(&e->lock);
	__builtin_memcpy(&asked, key->name, KEY_LEN);
	if (seen != asked)
		return -1;
	__builtin_memcpy(reply, "VALUE ", 6);
	__builtin_memcpy(reply + 6, key->name, KEY_LEN);
	reply[6 + KEY_LEN] = ' ';
	return 0;
}

/* The reply ends at `end`: cut off what trailed the request (padding up to the Ethernet minimum
 * of 60 bytes), count the hit and send the frame back. */
static __always_inline int kv_send(struct xdp_md *ctx, struct kv_stats *st, char *end, void *data_end)
{
	int extra = (long)data_end - (long)end;

	if (extra > 0)
		bpf_xdp_adjust_tail(ctx, -extra);
	st->hits++;
	return XDP_TX;
}

/* The lesson's cache, for IPv4. */
static __always_inline int cache_ipv4(struct xdp_md *ctx, struct kv_stats *st)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data + sizeof(struct ethhdr) };
	struct ethhdr *eth = data;
	struct iphdr *iph;
	struct udphdr *udph;
	struct ethhdr oeth;
	struct iphdr oip;
	struct udphdr oudp;
	struct kv_key key;
	char reply[REPLY_BUF] = {};
	char *p;
	__u64 sum;
	int len, kind;

	if (parse_iphdr(&nh, data_end, &iph) != IPPROTO_UDP || ip_is_fragment(iph))
		return XDP_PASS;
	len = parse_udphdr(&nh, data_end, &udph);
	if (len < 0 || udph->dest != bpf_htons(KV_PORT))
		return XDP_PASS;
	kind = kv_request(nh.pos, data_end, len, &key);
	if (kind == KV_SET) {            /* invalidate; the server stores the new value */
		cache.delete(&key);
		st->sets++;
		return XDP_PASS;
	}
	/* Only a well-formed GET is answered: no IP options, lengths that agree, IPv4 header and
	 * UDP checksums right (0: none computed, allowed over IPv4). The rest goes to the kernel. */
	if (kind != KV_GET || iph->ihl * 4 != IP_HDR_LEN ||
	    iph->tot_len != bpf_htons(IP_HDR_LEN + sizeof(*udph) + GET_LEN) ||
	    csum_fold64(bpf_csum_diff(NULL, 0, (__be32 *)iph, IP_HDR_LEN, 0)) != 0xffff) {
		st->other++;
		return XDP_PASS;
	}
	if (udph->check) {
		sum = bpf_csum_diff(NULL, 0, (__be32 *)udph, sizeof(*udph) + GET_LEN, 0);
		sum += (__u64)iph->saddr + iph->daddr + bpf_htons(IPPROTO_UDP) + udph->len;
		if (csum_fold64(sum) != 0xffff) {
			st->other++;
			return XDP_PASS;
		}
	}
	if (kv_fetch(&key, reply)) {
		st->misses++;
		return XDP_PASS;
	}

	/* Grow the frame at the front; every packet pointer must be found and checked again. */
	oeth = *eth;
	oip = *iph;
	oudp = *udph;
	if (bpf_xdp_adjust_head(ctx, -GROW))
		return XDP_PASS;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	iph = data + sizeof(*eth);
	udph = data + sizeof(*eth) + IP_HDR_LEN;
	p = (char *)(udph + 1);
	if (p + REPLY_LEN > (char *)data_end)
		return XDP_ABORTED;            /* cannot happen: the frame just grew by that much */

	__builtin_memcpy(eth->h_dest, oeth.h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, oeth.h_dest, ETH_ALEN);
	eth->h_proto = oeth.h_proto;
	*iph = oip;
	iph->saddr = oip.daddr;
	iph->daddr = oip.saddr;
	iph->ttl = HOP_LIMIT;
	udph->source = oudp.dest;
	udph->dest = oudp.source;
	__builtin_memcpy(p, reply, REPLY_LEN);
	iph->tot_len = bpf_htons(IP_HDR_LEN + sizeof(*udph) + REPLY_LEN);
	udph->len = bpf_htons(sizeof(*udph) + REPLY_LEN);

	iph->check = 0;
	iph->check = ~csum_fold64(bpf_csum_diff(NULL, 0, (__be32 *)iph, IP_HDR_LEN, 0));
	udph->check = 0;
	sum = bpf_csum_diff(NULL, 0, (__be32 *)reply, REPLY_BUF, 0);
	sum += (__u64)iph->saddr + iph->daddr + bpf_htons(IPPROTO_UDP) + udph->len;
	sum += (__u64)udph->source + udph->dest + udph->len;
	udph->check = ~csum_fold64(sum);
	if (!udph->check)
		udph->check = CSUM_MANGLED_0;
	return kv_send(ctx, st, p + REPLY_LEN, data_end);
}

/* The same cache for IPv6 clients. */
static __always_inline int cache_ipv6(struct xdp_md *ctx, struct kv_stats *st)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data + sizeof(struct ethhdr) };
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6h;
	struct udphdr *udph;
	struct ethhdr oeth;
	struct ipv6hdr oip6;
	struct udphdr oudp;
	struct kv_key key;
	char reply[REPLY_BUF] = {};
	char *p;
	__u64 sum;
	int len, kind;

	/* UDP right after the IPv6 header; extension headers (fragments too) go to the server */
	if (parse_ip6hdr(&nh, data_end, &ip6h) != IPPROTO_UDP)
		return XDP_PASS;
	len = parse_udphdr(&nh, data_end, &udph);
	if (len < 0 || udph->dest != bpf_htons(KV_PORT))
		return XDP_PASS;
	kind = kv_request(nh.pos, data_end, len, &key);
	if (kind == KV_SET) {
		cache.delete(&key);
		st->sets++;
		return XDP_PASS;
	}
	/* A well-formed GET: payload length and UDP length agree, and the UDP checksum is there
	 * (0 is invalid over IPv6) and right: pseudo-header (addresses, UDP length, next header),
	 * UDP header and the 12 bytes of "GET <key>". */
	if (kind != KV_GET || ip6h->payload_len != udph->len || !udph->check) {
		st->other++;
		return XDP_PASS;
	}
	sum = bpf_csum_diff(NULL, 0, (__be32 *)udph, sizeof(*udph) + GET_LEN, 0);
	sum += bpf_csum_diff(NULL, 0, (__be32 *)&ip6h->saddr, 2 * sizeof(struct in6_addr), 0);
	sum += bpf_htons(IPPROTO_UDP) + udph->len;
	if (csum_fold64(sum) != 0xffff) {
		st->other++;
		return XDP_PASS;
	}
	if (kv_fetch(&key, reply)) {
		st->misses++;
		return XDP_PASS;
	}

	oeth = *eth;
	oip6 = *ip6h;
	oudp = *udph;
	if (bpf_xdp_adjust_head(ctx, -GROW))
		return XDP_PASS;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	ip6h = data + sizeof(*eth);
	udph = (void *)(ip6h + 1);
	p = (char *)(udph + 1);
	if (p + REPLY_LEN > (char *)data_end)
		return XDP_ABORTED;

	/* the headers: the request's, source and destination swapped */
	__builtin_memcpy(eth->h_dest, oeth.h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, oeth.h_dest, ETH_ALEN);
	eth->h_proto = oeth.h_proto;
	*ip6h = oip6;                    /* version, traffic class, flow label, next header */
	ip6h->saddr = oip6.daddr;        /* all 128 bits of each */
	ip6h->daddr = oip6.saddr;
	ip6h->hop_limit = HOP_LIMIT;     /* the request's says how far it had left to go, not us */
	udph->source = oudp.dest;
	udph->dest = oudp.source;
	__builtin_memcpy(p, reply, REPLY_LEN);
	ip6h->payload_len = bpf_htons(sizeof(*udph) + REPLY_LEN);
	udph->len = bpf_htons(sizeof(*udph) + REPLY_LEN);

	/* the UDP checksum, from scratch: payload, pseudo-header, UDP header */
	udph->check = 0;
	sum = bpf_csum_diff(NULL, 0, (__be32 *)reply, REPLY_BUF, 0);
	sum += bpf_csum_diff(NULL, 0, (__be32 *)&ip6h->saddr, 2 * sizeof(struct in6_addr), 0);
	sum += bpf_htons(IPPROTO_UDP) + udph->len;
	sum += (__u64)udph->source + udph->dest + udph->len;
	udph->check = ~(__u16)sum;
	if (!udph->check)
		udph->check = CSUM_MANGLED_0;
	return kv_send(ctx, st, p + REPLY_LEN, data_end);
}

int lab09a_cache(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	u32 zero = 0;
	struct kv_stats *st = stats.lookup(&zero);

	/* Untagged unicast frames only: a reply here is written for this exact layout. */
	if (!st || (void *)(eth + 1) > data_end || (eth->h_dest[0] & 1))
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		return cache_ipv4(ctx, st);
	if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		return cache_ipv6(ctx, st);
	return XDP_PASS;
}
