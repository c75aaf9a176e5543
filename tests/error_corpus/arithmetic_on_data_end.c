// mistake: subtracting from data_end for the bounds check
// expect: VerifierError
// explain: computes with data_end
// explain: only in comparisons
// fix: data + sizeof(*eth) > data_end
#include <uapi/linux/if_ether.h>
#include <uapi/linux/ip.h>
int xdp_prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if (data > data_end - sizeof(*eth))  // <-
        return XDP_PASS;
    return eth->h_proto == htons(ETH_P_ARP) ? XDP_DROP : XDP_PASS;
}
