// mistake: indexing the packet with a 32-bit offset read from it, never bounded
// expect: VerifierError
// explain: cannot bound that offset: it was read from the packet
// explain: anything up to 4,294,967,295
// fix: if (off > 64) return XDP_DROP;
// fix: then add it and check the pointer you access against data_end
// details: umax=0xffffffff
int xdp_prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    unsigned char *p = data;
    if (data + 64 > data_end)
        return XDP_PASS;
    u32 off = *(u32 *)(p + 60);           /* an offset the packet carries */
    return p[off] ? XDP_PASS : XDP_DROP;  // <-
}
