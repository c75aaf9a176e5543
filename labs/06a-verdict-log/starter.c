/* Lab 06a — report every decision.
 *
 * The filter: UDP over IPv4 to port 9 (discard) is dropped; an IPv4 header that cannot be
 * trusted is dropped too; everything else passes, also through VLAN tags (one, or QinQ). An
 * IPv4 header cannot be trusted when the frame ends before its first 20 bytes, its version is
 * not 4, its ihl is below 5, its ihl * 4 bytes do not fit in the frame (for these four
 * parse_iphdr() returns -1), or its total length is smaller than ihl * 4.
 *
 * Task: report every drop as one struct verdict_event in the ring buffer `verdicts`, with its
 * reason, and nothing else: a pass is not reported. Count an event that does not fit in the
 * ring in verdicts_lost[0]. Never return XDP_ABORTED for what a sender can send: it means "my
 * program went wrong" and fires the kernel's xdp:xdp_exception tracepoint. Keep the enum, the
 * struct and the two maps as they are declared.
 */
#include "parsing_helpers.h"

#define DROP_PORT 9

/* Why a frame was dropped. 0 is no reason: an event with reason 0 was never filled in. */
enum drop_reason {
	REASON_PORT = 1,          /* UDP over IPv4 to DROP_PORT */
	REASON_BAD_HEADER = 2,    /* an IPv4 header that cannot be trusted */
};

/* One event per dropped frame: 24 bytes, no padding. verdict, reason, frame_len and the ports
 * are numbers in host byte order; the addresses are as in the packet (network byte order). */
struct verdict_event {
	u32 verdict;     /* XDP_DROP: only drops are reported */
	u32 reason;      /* REASON_PORT or REASON_BAD_HEADER */
	u32 frame_len;   /* the whole frame, ctx->data_end - ctx->data: VLAN tags, padding and all */
	__be32 saddr;    /* IPv4 source as in the packet; 0 for a bad header */
	__be32 daddr;    /* IPv4 destination as in the packet; 0 for a bad header */
	u16 sport;       /* UDP source port (bpf_ntohs); 0 for a bad header */
	u16 dport;       /* UDP destination port (bpf_ntohs); 0 for a bad header */
};

BPF_RINGBUF_OUTPUT(verdicts, 8);          /* 8 pages, shared by all CPUs */
BPF_ARRAY(verdicts_lost, u64, 1);         /* events that found the ring full */

static __always_inline int report(struct xdp_md *ctx, int verdict, u32 reason,
				  struct iphdr *iph, struct udphdr *udph)
{
	struct verdict_event e = {};

	e.verdict = verdict;
	/* TODO: the other fields */
	verdicts.ringbuf_output(&e, sizeof(e), 0);
	/* TODO: count an event that did not fit */
	return verdict;
}

int lab06a_verdicts(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *iph;
	struct udphdr *udph;

	/* TODO: this reports every pass too: a log that floods */
	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return report(ctx, XDP_PASS, 0, NULL, NULL);
	if (parse_iphdr(&nh, data_end, &iph) < 0)
		return XDP_ABORTED;     /* TODO: a bad header is input, not a bug of this program:
					 * drop it and report it; and the total length rule */
	if (iph->protocol != IPPROTO_UDP || ip_is_later_fragment(iph))
		return report(ctx, XDP_PASS, 0, iph, NULL);
	if (parse_udphdr(&nh, data_end, &udph) < 0 || udph->dest != bpf_htons(DROP_PORT))
		return report(ctx, XDP_PASS, 0, iph, udph);
	return report(ctx, XDP_DROP, REASON_PORT, iph, udph);
}
