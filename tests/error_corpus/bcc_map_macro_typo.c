// mistake: a misspelt bcc map macro
// expect: CompileError
// explain: 'BPF_HASHH' is not one of bcc's map macros
// fix: did you mean BPF_HASH(
BPF_HASHH(seen, u32, u64);  // <-
int xdp_prog(struct xdp_md *ctx) {
    return XDP_PASS;
}
