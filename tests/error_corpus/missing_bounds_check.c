// mistake: reading the Ethernet header with no data_end check
// expect: VerifierError
// explain: reads packet bytes it has not proven to exist
// explain: cover only 0 bytes
// fix: data_end
#include <uapi/linux/if_ether.h>
#include <uapi/linux/ip.h>
int xdp_prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if (eth->h_proto == htons(ETH_P_ARP))  // <-
        return XDP_DROP;
    return XDP_PASS;
}
