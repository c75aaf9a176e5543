// mistake: a 600-byte local array
// expect: CompileError
// explain: 512 bytes of stack
// fix: BPF_PERCPU_ARRAY
int xdp_prog(struct xdp_md *ctx) {
    volatile unsigned char seen[600];  // <-
    seen[ctx->rx_queue_index % 600] = 1;
    return seen[0] ? XDP_PASS : XDP_DROP;
}
