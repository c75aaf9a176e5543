// mistake: a recursive function
// expect: VerifierError
// explain: walk() calls itself
// explain: cannot recurse
// fix: loop with a constant bound
static int walk(int n) {
    if (n <= 1)
        return n;
    return walk(n - 1) + walk(n - 2);  // <-
}
int xdp_prog(struct xdp_md *ctx) {
    return walk(ctx->rx_queue_index) > 3 ? XDP_DROP : XDP_PASS;
}
