// mistake: a loop bounded only by the packet length
// expect: VerifierError
// explain: cannot bound
// fix: constant
// message: jumps is too complex
int xdp_prog(struct xdp_md *ctx) {
    unsigned char *p = (void *)(long)ctx->data;
    unsigned char *end = (void *)(long)ctx->data_end;
    unsigned int sum = 0;
    for (unsigned int i = 0; i < ctx->data_end - ctx->data; i++) {  // <-
        if (p + i + 1 > end)
            break;
        sum += p[i];
    }
    return sum & 1 ? XDP_PASS : XDP_DROP;
}
