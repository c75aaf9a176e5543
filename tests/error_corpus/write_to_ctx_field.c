// mistake: ctx->data += 14 to skip the Ethernet header
// expect: VerifierError
// explain: writes to struct xdp_md
// explain: may not change it
// fix: bpf_xdp_adjust_head(ctx, delta)
int xdp_prog(struct xdp_md *ctx) {
    ctx->data += 14;  // <-
    return XDP_PASS;
}
