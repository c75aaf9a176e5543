// mistake: x86 inline assembly
// expect: CompileError
// explain: inline assembly
// explain: BPF, whose instruction set
// fix: remove the asm(...)
int xdp_prog(struct xdp_md *ctx) {
    asm volatile("pause");  // <-
    return XDP_PASS;
}
