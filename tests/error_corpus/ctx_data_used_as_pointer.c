// mistake: ctx->data used as a pointer without the cast
// expect: CompileError
// explain: 32-bit numbers in struct xdp_md, not pointers
// fix: (void *)(long)ctx->data
#include <uapi/linux/if_ether.h>
#include <uapi/linux/ip.h>
int xdp_prog(struct xdp_md *ctx) {
    struct ethhdr *eth = ctx->data;  // <-
    if ((void *)(eth + 1) > (void *)(long)ctx->data_end)
        return XDP_PASS;
    return XDP_PASS;
}
