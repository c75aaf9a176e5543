// mistake: strcmp
// expect: CompileError
// explain: 'strcmp' is a C library function
// explain: no string functions
// fix: byte by byte
int xdp_prog(struct xdp_md *ctx) {
    char name[16] = "xdp";
    return strcmp(name, "bpf") == 0 ? XDP_DROP : XDP_PASS;  // <-
}
