// mistake: bpf_skb_load_bytes in an XDP program
// expect: VerifierError
// explain: bpf_skb_load_bytes belongs to another kind of program
// fix: ctx->data
int xdp_prog(struct xdp_md *ctx) {
    u16 proto = 0;
    bpf_skb_load_bytes(ctx, 12, &proto, sizeof(proto));  // <-
    return proto == htons(0x0806) ? XDP_DROP : XDP_PASS;
}
