// mistake: array map lookup used without a NULL check
// expect: VerifierError
// explain: returns NULL
// explain: without checking it
// fix: if (!v)
BPF_ARRAY(counters, u64, 5);
int xdp_prog(struct xdp_md *ctx) {
    u32 key = XDP_PASS;
    u64 *n = counters.lookup(&key);
    __sync_fetch_and_add(n, 1);  // <-
    return XDP_PASS;
}
