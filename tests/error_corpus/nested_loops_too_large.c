// mistake: nested loops of 1000 x 1000 iterations
// expect: VerifierError
// explain: 1,000,000 instructions
// fix: bpf_loop
// message: too large
// details: BPF program is too large
int xdp_prog(struct xdp_md *ctx) {
    unsigned char *p = (void *)(long)ctx->data;
    if (p + 1 > (unsigned char *)(long)ctx->data_end)
        return XDP_PASS;
    unsigned int sum = 0;
    for (int i = 0; i < 1000; i++)
        for (int j = 0; j < 1000; j++)  // <-
            sum = sum * 31 + (p[0] ^ i ^ j);
    return sum & 1 ? XDP_PASS : XDP_DROP;
}
