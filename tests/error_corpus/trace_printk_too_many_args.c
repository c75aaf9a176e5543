// mistake: bpf_trace_printk with four values
// expect: CompileError
// explain: at most 3 values
// fix: split it into two bpf_trace_printk calls
int xdp_prog(struct xdp_md *ctx) {
    u32 a = ctx->rx_queue_index, b = ctx->ingress_ifindex;
    bpf_trace_printk("%d %d %d %d\n", a, b, a, b);  // <-
    return XDP_PASS;
}
