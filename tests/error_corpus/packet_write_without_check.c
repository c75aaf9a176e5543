// mistake: writing the packet with no data_end check
// expect: VerifierError
// explain: writes packet bytes it has not proven to exist
// fix: data_end
#include <uapi/linux/if_ether.h>
#include <uapi/linux/ip.h>
int xdp_prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    eth->h_dest[0] = 0xff;  // <-
    return XDP_TX;
}
