// mistake: indexing a u32 map value as if it were an array
// expect: VerifierError
// explain: outside a map value
// explain: 4 bytes at offset 4 of a 4-byte value
// fix: declare the value type as large
BPF_ARRAY(counters, u32, 4);
int xdp_prog(struct xdp_md *ctx) {
    u32 key = 0;
    u32 *n = counters.lookup(&key);
    if (!n)
        return XDP_PASS;
    n[1] += 1;  // <-
    return XDP_PASS;
}
