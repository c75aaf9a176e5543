// mistake: libbpf's SEC("xdp") in bcc
// expect: CompileError
// explain: SEC("...") is libbpf's macro
// explain: finds XDP functions by their signature
// fix: remove the SEC(...) line
SEC("xdp")  // <-
int xdp_prog(struct xdp_md *ctx) {
    return XDP_PASS;
}
