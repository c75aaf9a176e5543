// mistake: ethhdr without the word struct
// expect: CompileError
// explain: 'ethhdr' is a struct
// explain: needs the word 'struct'
// fix: struct ethhdr *
#include <uapi/linux/if_ether.h>
#include <uapi/linux/ip.h>
int xdp_prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    ethhdr *eth = data;  // <-
    if ((void *)(eth + 1) > data_end)
        return XDP_PASS;
    return XDP_PASS;
}
