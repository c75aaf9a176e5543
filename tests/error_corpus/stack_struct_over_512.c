// mistake: a 640-byte local struct
// expect: CompileError
// explain: 512 bytes of stack
// fix: BPF_PERCPU_ARRAY
struct flowbuf { u64 words[80]; };
int xdp_prog(struct xdp_md *ctx) {
    volatile struct flowbuf fb;  // <-
    fb.words[ctx->rx_queue_index % 80] = 1;
    return fb.words[1] ? XDP_PASS : XDP_DROP;
}
