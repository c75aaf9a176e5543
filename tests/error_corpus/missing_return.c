// mistake: a path without a return
// expect: CompileError
// explain: can end without returning a value
// fix: return XDP_PASS;
#include <uapi/linux/if_ether.h>
#include <uapi/linux/ip.h>
int xdp_prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > data_end)
        return XDP_PASS;
    if (eth->h_proto == htons(ETH_P_ARP))
        return XDP_DROP;
}  // <-
