// mistake: struct iphdr without linux/ip.h
// expect: CompileError
// explain: 'struct iphdr' is only known by name
// fix: #include <uapi/linux/ip.h>
int xdp_prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct iphdr *ip = data + 14;
    if ((void *)(ip + 1) > data_end)  // <-
        return XDP_PASS;
    return XDP_PASS;
}
