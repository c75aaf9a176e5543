// mistake: malloc
// expect: CompileError
// explain: 'malloc' is a C library function
// explain: no heap
// fix: BPF_PERCPU_ARRAY
int xdp_prog(struct xdp_md *ctx) {
    char *buf = malloc(64);  // <-
    buf[0] = 1;
    return XDP_PASS;
}
