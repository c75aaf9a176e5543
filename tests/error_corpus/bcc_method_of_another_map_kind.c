// mistake: redirect_map() on a hash map
// expect: CompileError
// explain: only for BPF_DEVMAP
// explain: declared with BPF_HASH
// fix: BPF_DEVMAP
BPF_HASH(ports, u32, u32);
int xdp_prog(struct xdp_md *ctx) {
    return ports.redirect_map(0, 0);  // <-
}
