// mistake: libbpf's bpf_printk in bcc
// expect: CompileError
// explain: bpf_printk is libbpf's macro
// explain: bpf_trace_printk
// fix: bpf_trace_printk(
int xdp_prog(struct xdp_md *ctx) {
    bpf_printk("queue %d\n", ctx->rx_queue_index);  // <-
    return XDP_PASS;
}
