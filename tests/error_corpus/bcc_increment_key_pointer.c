// mistake: map.increment(&key) where bcc wants the key itself
// expect: CompileError
// explain: takes the key itself, not its address
// fix: seen.increment(key)
BPF_HASH(seen, u32, u64);
int xdp_prog(struct xdp_md *ctx) {
    u32 key = ctx->rx_queue_index;
    seen.increment(&key);  // <-
    return XDP_PASS;
}
