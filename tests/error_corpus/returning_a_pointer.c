// mistake: returning a pointer instead of an action
// expect: CompileError
// explain: returns a pointer
// explain: returns an action
// fix: return XDP_PASS;
int xdp_prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    if (data + 14 > data_end)
        return XDP_PASS;
    return data;  // <-
}
