// mistake: a 128-bit integer type (__u128)
// expect: CompileError
// explain: '__u128' is not a type
// explain: no 128-bit integer type
// fix: struct in6_addr
int xdp_prog(struct xdp_md *ctx) {
    __u128 addr = 0;  // <-
    return addr ? XDP_DROP : XDP_PASS;
}
