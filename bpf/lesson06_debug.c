/* lesson06_debug.c — a small filter that reports what it does, in every way XDP can.
 *
 * The filter: UDP to port DROP_PORT (9, "discard") is dropped; so is an IPv4 packet whose header
 * is cut short or malformed; everything else passes. A malformed header is input, which any sender
 * can craft, not an error of this program: it gets XDP_DROP like any unwanted frame, and the
 * reports below say why (REASON_BAD_HEADER). XDP_ABORTED would fire the kernel's xdp:xdp_exception
 * tracepoint, which means "this program went wrong": it is for paths that should never run, and
 * this program has none.
 *
 * Teaches: four ways to see inside a running XDP program.
 *   1. bpf_trace_printk() — printf into the kernel's trace buffer (/sys/kernel/tracing/trace_pipe).
 *      Easy, slow (it formats text for every call), and shared by the whole machine: for debugging
 *      only. At most three arguments; %pI4 prints an IPv4 address given a pointer to it.
 *   2. A ring buffer of events — one small struct per decision, read by user space in order.
 *      The struct's field names tell xdplab how to show them (saddr → address, dport → port in
 *      network order, verdict → XDP action); reason tells which rule decided, so that a log can
 *      tell one drop from another.
 *   3. CAPTURE() from xdplab_capture.h — the packet bytes themselves, with the verdict.
 *   4. Nothing in the program at all: the kernel's xdp tracepoints and bpftool see every program.
 */
#include "parsing_helpers.h"
#include "xdplab_capture.h"

#ifndef DROP_PORT
#define DROP_PORT 9
#endif

enum reason {                   /* which rule decided */
	REASON_NONE = 0,        /* none: the frame passes */
	REASON_PORT = 1,        /* UDP to DROP_PORT */
	REASON_BAD_HEADER = 2,  /* an IPv4 header that parse_iphdr() rejects */
};

struct verdict_event {
	u64 ts;                  /* bpf_ktime_get_ns() */
	__be32 saddr;            /* 0 when the IPv4 header was not read */
	__be32 daddr;
	u32 verdict;
	u32 reason;              /* enum reason */
	__be16 sport;            /* network byte order, as in the packet */
	__be16 dport;
	u8 proto;
};

BPF_RINGBUF_OUTPUT(verdicts, 8);          /* 8 pages shared by all CPUs */
BPF_ARRAY(verdicts_lost, u64, 1);         /* events that found the ring full */

static __always_inline int decide(struct xdp_md *ctx, struct iphdr *iph, struct udphdr *udph,
				  int verdict, u32 reason)
{
	struct verdict_event e = {};
	u32 zero = 0;

	e.ts = bpf_ktime_get_ns();
	e.verdict = verdict;
	e.reason = reason;
	if (iph) {
		e.saddr = iph->saddr;
		e.daddr = iph->daddr;
		e.proto = iph->protocol;
	}
	if (udph) {
		e.sport = udph->source;
		e.dport = udph->dest;
	}
	if (verdicts.ringbuf_output(&e, sizeof(e), 0))
		verdicts_lost.atomic_increment(zero);
	return CAPTURE(ctx, verdict);
}

int xdp_debug(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *iph;
	struct udphdr *udph;
	int proto;

	proto = parse_ethhdr(&nh, data_end, &eth);
	if (proto != bpf_htons(ETH_P_IP))
		return decide(ctx, NULL, NULL, XDP_PASS, REASON_NONE);      /* ARP, IPv6, ... */
	if (parse_iphdr(&nh, data_end, &iph) < 0) {
		/* Input, not a bug: drop it and say why. Never XDP_ABORTED for what a sender can send. */
		bpf_trace_printk("debug: bad IPv4 header, %d bytes\n", (int)(data_end - data));
		return decide(ctx, NULL, NULL, XDP_DROP, REASON_BAD_HEADER);
	}
	if (iph->protocol == IPPROTO_UDP && !ip_is_later_fragment(iph) &&
	    parse_udphdr(&nh, data_end, &udph) >= 0 && udph->dest == bpf_htons(DROP_PORT)) {
		bpf_trace_printk("debug: drop UDP from %pI4 port %d\n", &iph->saddr,
				 bpf_ntohs(udph->source));
		return decide(ctx, iph, udph, XDP_DROP, REASON_PORT);
	}
	return decide(ctx, iph, NULL, XDP_PASS, REASON_NONE);
}
