// mistake: map.lookup(key) instead of map.lookup(&key)
// expect: CompileError
// explain: take pointers to the key
// explain: counters.lookup() wants its address
// fix: counters.lookup(&key)
BPF_ARRAY(counters, u64, 4);
int xdp_prog(struct xdp_md *ctx) {
    u32 key = 0;
    u64 *n = counters.lookup(key);  // <-
    if (n)
        *n += 1;
    return XDP_PASS;
}
