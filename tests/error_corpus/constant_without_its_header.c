// mistake: ETH_P_IP without linux/if_ether.h
// expect: CompileError
// explain: 'ETH_P_IP' is not declared
// explain: header is not included
// fix: #include <uapi/linux/if_ether.h>
int xdp_prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    if (data + 14 > data_end)
        return XDP_PASS;
    unsigned short proto = *(unsigned short *)(data + 12);
    return proto == htons(ETH_P_IP) ? XDP_PASS : XDP_DROP;  // <-
}
