// mistake: bounds check with sizeof(eth), the pointer's size
// expect: VerifierError
// explain: sizeof(eth) is the size of the pointer
// fix: sizeof(*eth)
#include <uapi/linux/if_ether.h>
#include <uapi/linux/ip.h>
int xdp_prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if (data + sizeof(eth) > data_end)
        return XDP_PASS;
    if (eth->h_proto == htons(ETH_P_ARP))  // <-
        return XDP_DROP;
    return XDP_PASS;
}
