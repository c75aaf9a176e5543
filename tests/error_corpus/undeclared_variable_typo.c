// mistake: a misspelt variable (data_edn)
// expect: CompileError
// explain: 'data_edn' is not declared
// fix: did you mean 'data_end'
#include <uapi/linux/if_ether.h>
#include <uapi/linux/ip.h>
int xdp_prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > data_edn)  // <-
        return XDP_PASS;
    return XDP_PASS;
}
