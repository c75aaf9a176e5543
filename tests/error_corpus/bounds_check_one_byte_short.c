// mistake: bounds check one byte short of the field read
// expect: VerifierError
// explain: 1 byte at offset 13
// explain: cover only 13 bytes
// fix: data_end
#include <uapi/linux/if_ether.h>
#include <uapi/linux/ip.h>
int xdp_prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if (data + 13 > data_end)
        return XDP_PASS;
    if (eth->h_proto == htons(ETH_P_ARP))  // <-
        return XDP_DROP;
    return XDP_PASS;
}
