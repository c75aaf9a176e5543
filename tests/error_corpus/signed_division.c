// mistake: dividing signed ints
// expect: CompileError
// explain: no signed division
// fix: unsigned
int xdp_prog(struct xdp_md *ctx) {
    int len = ctx->data_end - ctx->data;
    int parts = ctx->rx_queue_index - 4;
    return len / parts > 100 ? XDP_DROP : XDP_PASS;  // <-
}
