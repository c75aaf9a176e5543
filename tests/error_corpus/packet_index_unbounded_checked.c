// mistake: a 32-bit offset read from the packet, checked against data_end after adding it but never bounded
// expect: VerifierError
// explain: cannot bound that offset: it was read from the packet
// explain: no check of the pointer after the addition can make this access safe
// fix: bound the offset before adding it: if (off > 64) return XDP_DROP;
int xdp_prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    unsigned char *p = data;
    if (data + 64 > data_end)
        return XDP_PASS;
    u32 off = *(u32 *)(p + 60);           /* an offset the packet carries */
    unsigned char *field = p + off;
    if ((void *)(field + 1) > data_end)
        return XDP_PASS;
    return *field ? XDP_PASS : XDP_DROP;  // <-
}
