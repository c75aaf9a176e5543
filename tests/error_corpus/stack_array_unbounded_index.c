// mistake: unchecked index into a local array
// expect: VerifierError
// explain: local (stack) array
// explain: cannot bound
// fix: if (i >= 8)
int xdp_prog(struct xdp_md *ctx) {
    volatile u64 hist[8] = {};
    hist[ctx->rx_queue_index] = 1;  // <-
    return hist[0] ? XDP_PASS : XDP_DROP;
}
