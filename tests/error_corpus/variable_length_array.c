// mistake: a local array sized at run time
// expect: CompileError
// explain: only known at run time
// fix: constant size
int xdp_prog(struct xdp_md *ctx) {
    unsigned int n = ctx->rx_queue_index + 1;
    volatile char buf[n];  // <-
    buf[0] = 1;
    return buf[0] ? XDP_PASS : XDP_DROP;
}
