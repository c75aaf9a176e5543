// mistake: strlen
// expect: CompileError
// explain: 'strlen' is a C library function
// explain: no string functions
// fix: byte by byte
int xdp_prog(struct xdp_md *ctx) {
    char name[16] = "xdp";
    return strlen(name) > 3 ? XDP_DROP : XDP_PASS;  // <-
}
