// mistake: __builtin_memcpy with a run-time size
// expect: CompileError
// explain: size known at compile time
// fix: constant size
int xdp_prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    unsigned char buf[64];
    unsigned int n = ctx->rx_queue_index & 63;
    if (data + 64 > data_end)
        return XDP_PASS;
    __builtin_memcpy(buf, data, n);  // <-
    return buf[0] ? XDP_PASS : XDP_DROP;
}
