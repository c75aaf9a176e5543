#include <linux/if_ether.h>

BPF_ARRAY(counters, u64, 4);

int xdp_prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if (eth->h_proto == htons(ETH_P_IP))
        return XDP_DROP;
    return XDP_PASS;
}
