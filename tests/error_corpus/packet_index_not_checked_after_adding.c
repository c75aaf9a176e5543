// mistake: indexing the packet with a byte read from it, checked against data_end only before adding it
// expect: VerifierError
// explain: offset known only at run time
// explain: from 0 to 255
// explain: needs a comparison of its own
// fix: after adding the offset
// fix: if ((void *)(p + off + 1) > data_end)
int xdp_prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    unsigned char *p = data;
    if (data + 64 > data_end)
        return XDP_PASS;
    u32 off = p[0];
    return p[off] ? XDP_PASS : XDP_DROP;  // <-
}
