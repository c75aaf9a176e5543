// mistake: using a map that was never declared
// expect: CompileError
// explain: used as a map
// explain: no map of that name is declared
// fix: BPF_ARRAY(counters
int xdp_prog(struct xdp_md *ctx) {
    u32 key = 0;
    u64 *n = counters.lookup(&key);  // <-
    if (n)
        *n += 1;
    return XDP_PASS;
}
