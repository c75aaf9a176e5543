// mistake: struct iphdr *ip = eth + 1 without a cast
// expect: CompileError
// explain: 'eth + 1' is a 'struct ethhdr *'
// fix: (void *)(eth + 1)
#include <uapi/linux/if_ether.h>
#include <uapi/linux/ip.h>
int xdp_prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    struct iphdr *ip = eth + 1;  // <-
    if ((void *)(ip + 1) > data_end)
        return XDP_PASS;
    return ip->ttl == 1 ? XDP_DROP : XDP_PASS;
}
