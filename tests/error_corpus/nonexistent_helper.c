// mistake: calling a helper that does not exist
// expect: CompileError
// explain: no BPF helper called 'bpf_get_time_ns'
// fix: bpf_ktime_get_ns()
int xdp_prog(struct xdp_md *ctx) {
    u64 now = bpf_get_time_ns();  // <-
    return now & 1 ? XDP_PASS : XDP_DROP;
}
