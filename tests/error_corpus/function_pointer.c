// mistake: calling through a function pointer
// expect: VerifierError
// explain: function pointer
// explain: no indirect calls
// fix: call the functions directly
static int drop(void) { return XDP_DROP; }
static int pass(void) { return XDP_PASS; }
int xdp_prog(struct xdp_md *ctx) {
    int (*verdict)(void) = ctx->rx_queue_index ? drop : pass;
    return verdict();  // <-
}
