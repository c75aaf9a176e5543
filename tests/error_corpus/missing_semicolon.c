// mistake: a missing ';'
// expect: CompileError
// explain: missing its ';'
// fix: add ';'
int xdp_prog(struct xdp_md *ctx) {
    int verdict = XDP_PASS  // <-
    return verdict;
}
