// mistake: returning a variable that was never set
// expect: VerifierError
// explain: never set
// explain: returned before it got a value
// fix: return XDP_PASS;
int xdp_prog(struct xdp_md *ctx) {
    int verdict;
    return verdict;  // <-
}
