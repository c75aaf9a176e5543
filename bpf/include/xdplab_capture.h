/* xdplab_capture.h — show xdplab the packets your program decides on, each with its verdict.
 *
 *     #include "xdplab_capture.h"
 *     ...
 *         return CAPTURE(ctx, XDP_DROP);          // instead of: return XDP_DROP;
 *
 * and in Python:  cap = Capture(prog)   (xdplab.capture) → cap.packets, cap.save("drops.pcap").
 *
 * CAPTURE(ctx, action) sends a small header (time, interface, frame length, verdict) followed by
 * the first XDPLAB_SNAPLEN bytes of the frame to user space through the perf buffer
 * `xdplab_capture`, then evaluates to `action`. The bytes are the frame as it is at that moment:
 * after any rewrite the program made, so a router's capture shows the decremented TTL.
 * bpf_perf_event_output() does the copy (bcc spells it perf_submit_skb): for an XDP context the
 * upper 32 bits of its flags ask the kernel to append that many bytes of the packet after the
 * header, copied straight from the packet buffer; the program reads none of them itself. The
 * count must not exceed the frame's length, hence the clamp.
 *
 * The verdict is what the program returned. The kernel may still fail it (a redirect to an
 * interface that cannot take the frame): xdplab.Tracepoints counts those failures. A full perf
 * buffer loses events (Capture.lost counts them). Compile with cflags=["-DXDPLAB_SNAPLEN=256"]
 * to keep more of each frame.
 */
#ifndef XDPLAB_CAPTURE_H
#define XDPLAB_CAPTURE_H

#ifndef XDPLAB_SNAPLEN
#define XDPLAB_SNAPLEN 128
#endif

struct xdplab_capture_meta {
	u64 ts;                 /* bpf_ktime_get_ns(): CLOCK_MONOTONIC, nanoseconds */
	u32 ifindex;            /* interface the frame arrived on (an index in its namespace) */
	u32 rx_queue;
	u32 len;                /* frame length */
	u32 caplen;             /* bytes of it that follow this header */
	u32 verdict;            /* the XDP action returned */
	u32 pad;
};

BPF_PERF_OUTPUT(xdplab_capture);

static __always_inline int xdplab_capture_frame(struct xdp_md *ctx, int verdict);

#define CAPTURE(ctx, verdict) xdplab_capture_frame(ctx, verdict)

/* The definition. bcc turns map method calls such as xdplab_capture.perf_submit_skb() into
 * helper calls only in the program's own file, never in a header, so xdplab (when it compiles a
 * program that includes this header) appends the lines between the markers to the end of the
 * program. Line numbers in your file do not change. */
#if 0
/* xdplab-capture-definition-begin */
static __always_inline int xdplab_capture_frame(struct xdp_md *ctx, int verdict)
{
	struct xdplab_capture_meta meta = {};
	u32 len = ctx->data_end - ctx->data;

	meta.ts = bpf_ktime_get_ns();
	meta.ifindex = ctx->ingress_ifindex;
	meta.rx_queue = ctx->rx_queue_index;
	meta.len = len;
	meta.caplen = len < XDPLAB_SNAPLEN ? len : XDPLAB_SNAPLEN;
	meta.verdict = verdict;
	xdplab_capture.perf_submit_skb(ctx, meta.caplen, &meta, sizeof(meta));
	return verdict;
}
/* xdplab-capture-definition-end */
#endif

#endif /* XDPLAB_CAPTURE_H */
