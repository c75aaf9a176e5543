// mistake: modulo of signed ints
// expect: CompileError
// explain: no signed division or modulo
// fix: unsigned
int xdp_prog(struct xdp_md *ctx) {
    int len = ctx->data_end - ctx->data;
    int buckets = ctx->rx_queue_index - 4;
    return len % buckets == 0 ? XDP_DROP : XDP_PASS;  // <-
}
