// mistake: a variable used outside the block that declares it
// expect: CompileError
// explain: 'verdict' is not declared
// explain: declared in another block
// fix: declare it before this line
int xdp_prog(struct xdp_md *ctx) {
    if (ctx->rx_queue_index == 0) {
        int verdict = XDP_DROP;
    }
    return verdict;  // <-
}
