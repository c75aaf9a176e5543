// mistake: float arithmetic
// expect: CompileError
// explain: no floating point
// fix: integers
int xdp_prog(struct xdp_md *ctx) {
    float share = ctx->rx_queue_index * 0.5f;  // <-
    return share > 1.0f ? XDP_DROP : XDP_PASS;
}
