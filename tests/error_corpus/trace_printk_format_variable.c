// mistake: bpf_trace_printk with its format in a variable
// expect: CompileError
// explain: string literal written in the call
// fix: bpf_trace_printk("queue %d
int xdp_prog(struct xdp_md *ctx) {
    char fmt[] = "queue %d\n";
    bpf_trace_printk(fmt, ctx->rx_queue_index);  // <-
    return XDP_PASS;
}
