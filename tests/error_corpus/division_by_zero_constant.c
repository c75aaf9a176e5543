// mistake: dividing by a constant 0
// expect: CompileError
// explain: divides by zero
// explain: undefined
// fix: test the divisor first
int xdp_prog(struct xdp_md *ctx) {
    u32 n = ctx->rx_queue_index;
    return (n / 0) ? XDP_DROP : XDP_PASS;  // <-
}
