// mistake: checks the Ethernet header, then reads the IP header
// expect: VerifierError
// explain: offset 22
// explain: cover only 14 bytes
// fix: data_end
#include <uapi/linux/if_ether.h>
#include <uapi/linux/ip.h>
int xdp_prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(eth + 1) > data_end)
        return XDP_PASS;
    if (ip->ttl <= 1)  // <-
        return XDP_DROP;
    return XDP_PASS;
}
