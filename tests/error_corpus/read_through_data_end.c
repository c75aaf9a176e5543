// mistake: reading the byte at data_end
// expect: VerifierError
// explain: reads through data_end
// explain: just past the last byte
// fix: start at ctx->data
int xdp_prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    if (data + 1 > data_end)
        return XDP_PASS;
    unsigned char last = *(unsigned char *)data_end;  // <-
    return last ? XDP_PASS : XDP_DROP;
}
