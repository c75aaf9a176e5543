// mistake: bpf_redirect with three arguments
// expect: CompileError
// explain: bpf_redirect takes 2 arguments
// explain: passes 3
// fix: pass exactly 2
int xdp_prog(struct xdp_md *ctx) {
    return bpf_redirect(ctx->ingress_ifindex, 0, 1);  // <-
}
