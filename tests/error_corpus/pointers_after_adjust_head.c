// mistake: using a header pointer made before bpf_xdp_adjust_head
// expect: VerifierError
// explain: before bpf_xdp_adjust_head
// explain: forgets every packet pointer
// fix: load data and data_end from ctx again
#include <uapi/linux/if_ether.h>
#include <uapi/linux/ip.h>
int xdp_prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > data_end)
        return XDP_PASS;
    if (bpf_xdp_adjust_head(ctx, -4))
        return XDP_PASS;
    eth->h_proto = htons(ETH_P_IP);  // <-
    return XDP_PASS;
}
