// mistake: a bcc map macro with an extra argument
// expect: CompileError
// explain: BPF_ARRAY(name, value_type, entries)
// fix: BPF_ARRAY(name, value_type, entries)
BPF_ARRAY(counters, u64, 4, 5);  // <-
int xdp_prog(struct xdp_md *ctx) {
    return XDP_PASS;
}
