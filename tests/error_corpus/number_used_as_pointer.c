// mistake: a number cast to a pointer and read
// expect: VerifierError
// explain: plain number as if it were a pointer
// fix: checked pointers
int xdp_prog(struct xdp_md *ctx) {
    u64 addr = ctx->rx_queue_index;
    return *(u32 *)addr;  // <-
}
