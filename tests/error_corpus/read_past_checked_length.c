// mistake: checks the IP header, then reads the UDP header
// expect: VerifierError
// explain: 2 bytes at offset 36
// explain: cover only 34 bytes
// fix: data_end
#include <uapi/linux/if_ether.h>
#include <uapi/linux/ip.h>
#include <uapi/linux/udp.h>
int xdp_prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct iphdr *ip = data + sizeof(struct ethhdr);
    if ((void *)(ip + 1) > data_end)
        return XDP_PASS;
    struct udphdr *udp = (void *)(ip + 1);
    if (udp->dest == htons(53))  // <-
        return XDP_DROP;
    return XDP_PASS;
}
