// mistake: #pragma unroll on a loop of 100,000 iterations
// expect: CompileError
// explain: #pragma unroll makes clang copy the loop's body
// explain: 100,000 copies
// fix: remove the #pragma unroll
int xdp_prog(struct xdp_md *ctx) {
    unsigned char *p = (void *)(long)ctx->data;
    if (p + 1 > (unsigned char *)(long)ctx->data_end)
        return XDP_PASS;
    u32 sum = 0;
#pragma unroll
    for (int i = 0; i < 100000; i++)  // <-
        sum = sum * 31 + (p[0] ^ i);
    return sum & 1 ? XDP_PASS : XDP_DROP;
}
