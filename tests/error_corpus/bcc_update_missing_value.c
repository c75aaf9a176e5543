// mistake: map.update(&key) without the value
// expect: CompileError
// explain: seen.update() takes 2 arguments
// explain: passes 1
// fix: seen.update(&key, &value)
BPF_HASH(seen, u32, u64);
int xdp_prog(struct xdp_md *ctx) {
    u32 key = ctx->rx_queue_index;
    seen.update(&key);  // <-
    return XDP_PASS;
}
