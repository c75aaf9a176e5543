// mistake: unchecked index into an array in a map value
// expect: VerifierError
// explain: could be negative or arbitrarily large
// fix: if (i >= 8)
// message: unbounded memory access
struct slots { u64 n[8]; };
BPF_ARRAY(table, struct slots, 1);
int xdp_prog(struct xdp_md *ctx) {
    u32 key = 0;
    struct slots *s = table.lookup(&key);
    if (!s)
        return XDP_PASS;
    s->n[ctx->rx_queue_index] += 1;  // <-
    return XDP_PASS;
}
