// mistake: reading a header field before the data_end check
// expect: VerifierError
// explain: reads packet bytes it has not proven to exist
// explain: cover only 0 bytes
// fix: before this line
// fix: data_end
#include <uapi/linux/if_ether.h>
int xdp_prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    unsigned short proto = eth->h_proto;  // <-
    if (data + sizeof(*eth) > data_end)
        return proto ? XDP_PASS : XDP_DROP;
    return proto == htons(ETH_P_ARP) ? XDP_DROP : XDP_PASS;
}
