// mistake: index check 'i > 8' for an 8-element array in a map value
// expect: VerifierError
// explain: outside a map value
// explain: 8 bytes at offset 64 of a 64-byte value
// fix: if (i >= 8)
struct slots { u64 n[8]; };
BPF_ARRAY(table, struct slots, 1);
int xdp_prog(struct xdp_md *ctx) {
    u32 key = 0, i = ctx->rx_queue_index;
    struct slots *s = table.lookup(&key);
    if (!s || i > 8)
        return XDP_PASS;
    s->n[i] += 1;  // <-
    return XDP_PASS;
}
