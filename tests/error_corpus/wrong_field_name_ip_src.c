// mistake: ip->src instead of ip->saddr
// expect: CompileError
// explain: struct iphdr has no field called 'src'
// fix: did you mean 'saddr'
#include <uapi/linux/if_ether.h>
#include <uapi/linux/ip.h>
int xdp_prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct iphdr *ip = data + sizeof(struct ethhdr);
    if ((void *)(ip + 1) > data_end)
        return XDP_PASS;
    return ip->src == 0 ? XDP_DROP : XDP_PASS;  // <-
}
