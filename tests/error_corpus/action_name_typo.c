// mistake: a misspelt XDP action
// expect: CompileError
// explain: 'XDP_PASSED' is not declared
// fix: did you mean 'XDP_PASS'
int xdp_prog(struct xdp_md *ctx) {
    return XDP_PASSED;  // <-
}
