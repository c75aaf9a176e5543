// mistake: printf
// expect: CompileError
// explain: 'printf' is a C library function
// explain: no printf
// fix: bpf_trace_printk
int xdp_prog(struct xdp_md *ctx) {
    printf("packet on queue %d\n", ctx->rx_queue_index);  // <-
    return XDP_PASS;
}
