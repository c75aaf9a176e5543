// mistake: ctx->end instead of ctx->data_end
// expect: CompileError
// explain: struct xdp_md has no field called 'end'
// fix: did you mean 'data_end'
int xdp_prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->end;  // <-
    return data + 14 > data_end ? XDP_DROP : XDP_PASS;
}
