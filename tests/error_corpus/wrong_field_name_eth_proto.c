// mistake: eth->proto instead of eth->h_proto
// expect: CompileError
// explain: struct ethhdr has no field called 'proto'
// fix: did you mean 'h_proto'
#include <uapi/linux/if_ether.h>
#include <uapi/linux/ip.h>
int xdp_prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > data_end)
        return XDP_PASS;
    return eth->proto == htons(ETH_P_ARP) ? XDP_DROP : XDP_PASS;  // <-
}
