// mistake: map.update(&key, value) instead of &value
// expect: CompileError
// explain: take pointers to the key and the value
// fix: seen.update(&key, &value)
BPF_HASH(seen, u32, u64);
int xdp_prog(struct xdp_md *ctx) {
    u32 key = ctx->rx_queue_index;
    u64 one = 1;
    seen.update(&key, one);  // <-
    return XDP_PASS;
}
