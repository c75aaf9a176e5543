// mistake: an extra '}' that closes the function early
// expect: CompileError
// explain: closes the function early
// fix: remove the extra '}'
int xdp_prog(struct xdp_md *ctx) {
    if (ctx->rx_queue_index == 0)
        return XDP_DROP;
    }  // <-
    return XDP_PASS;
}
