// mistake: 'return;' in an XDP function
// expect: CompileError
// explain: 'return;' without a value
// fix: return XDP_PASS;
int xdp_prog(struct xdp_md *ctx) {
    if (ctx->rx_queue_index)
        return;  // <-
    return XDP_PASS;
}
