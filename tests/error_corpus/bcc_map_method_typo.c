// mistake: a map method that bcc does not have (find for lookup)
// expect: CompileError
// explain: bcc maps have no method 'find'
// fix: seen.lookup(&key)
BPF_HASH(seen, u32, u64);
int xdp_prog(struct xdp_md *ctx) {
    u32 key = 0;
    u64 *n = seen.find(&key);  // <-
    return n ? XDP_DROP : XDP_PASS;
}
