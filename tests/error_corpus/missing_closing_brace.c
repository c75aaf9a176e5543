// mistake: a '{' that is never closed
// expect: CompileError
// explain: A '{' is never closed
// fix: add the missing '}'
int xdp_prog(struct xdp_md *ctx) {
    if (ctx->rx_queue_index == 0) {
        return XDP_DROP;
    return XDP_PASS;
}  // <-
