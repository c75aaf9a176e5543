// mistake: libbpf style bpf_map_lookup_elem(&map, ...) on a bcc map
// expect: VerifierError
// explain: used through its methods
// fix: counters.lookup(&key)
BPF_ARRAY(counters, u64, 4);
int xdp_prog(struct xdp_md *ctx) {
    u32 key = 0;
    u64 *n = bpf_map_lookup_elem(&counters, &key);  // <-
    if (n)
        *n += 1;
    return XDP_PASS;
}
