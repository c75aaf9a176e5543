/* xdp_count.bpf.c — xdp_count.c written for libbpf: count packets and bytes per XDP action, and
 * packets per IPv4 source address.
 *
 * Built by clang (-O2 -g -target bpf) and loaded by libbpf, as production XDP programs are:
 * lab.load("xdp_count.bpf.c"). What bcc did for you is written out here: the headers, the
 * SEC("xdp") section that tells libbpf this function is an XDP program, the maps declared as
 * BTF-defined structs in the .maps section (their key and value types travel in the object's BTF,
 * which is how prog.maps["counters"] knows them), and the helper calls that bcc's
 * counters.lookup(&key) was rewritten into.
 *
 * The program returns ACTION (XDP_PASS unless compiled with cflags=["-DACTION=XDP_DROP"]);
 * frames too short for an Ethernet header are counted under XDP_DROP and dropped.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef ACTION
#define ACTION XDP_PASS
#endif

struct datarec {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct datarec);
	__uint(max_entries, 5);			/* one slot per XDP action, XDP_ABORTED ... XDP_REDIRECT */
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __be32);			/* iph->saddr as it is in the packet */
	__type(value, __u64);
	__uint(max_entries, 1024);
} sources SEC(".maps");

static __always_inline int record(struct xdp_md *ctx, __u32 action)
{
	struct datarec *rec = bpf_map_lookup_elem(&counters, &action);

	if (!rec)
		return XDP_ABORTED;
	rec->packets++;
	rec->bytes += ctx->data_end - ctx->data;
	return action;
}

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph = (void *)(eth + 1);

	if ((void *)(eth + 1) > data_end)
		return record(ctx, XDP_DROP);
	if (eth->h_proto == bpf_htons(ETH_P_IP) && (void *)(iph + 1) <= data_end) {
		__u64 one = 1, *n = bpf_map_lookup_elem(&sources, &iph->saddr);

		if (n)
			__sync_fetch_and_add(n, 1);
		else
			bpf_map_update_elem(&sources, &iph->saddr, &one, BPF_NOEXIST);
	}
	return record(ctx, ACTION);
}

char LICENSE[] SEC("license") = "GPL";
