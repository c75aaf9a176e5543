// mistake: declaring the same variable twice
// expect: CompileError
// explain: defined twice
// fix: rename or remove
int xdp_prog(struct xdp_md *ctx) {
    int verdict = XDP_PASS;
    int verdict = XDP_DROP;  // <-
    return verdict;
}
