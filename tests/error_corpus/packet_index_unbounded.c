// mistake: indexing the packet with a value read from it
// expect: VerifierError
// explain: reads packet bytes it has not proven to exist
// fix: data_end
int xdp_prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    unsigned char *p = data;
    if (data + 64 > data_end)
        return XDP_PASS;
    u32 off = p[0];
    return p[off] ? XDP_PASS : XDP_DROP;  // <-
}
