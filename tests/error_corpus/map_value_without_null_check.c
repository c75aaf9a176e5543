// mistake: hash map lookup used without a NULL check
// expect: VerifierError
// explain: returns NULL
// explain: without checking it
// fix: if (!v)
BPF_HASH(seen, u32, u64);
int xdp_prog(struct xdp_md *ctx) {
    u32 key = ctx->ingress_ifindex;
    u64 *n = seen.lookup(&key);
    *n += 1;  // <-
    return XDP_PASS;
}
