// mistake: an if condition without parentheses
// expect: CompileError
// explain: condition of 'if' must be in parentheses
// fix: if (ctx->rx_queue_index == 0)
int xdp_prog(struct xdp_md *ctx) {
    if ctx->rx_queue_index == 0  // <-
        return XDP_DROP;
    return XDP_PASS;
}
