// mistake: bpf_redirect with one argument
// expect: CompileError
// explain: bpf_redirect takes 2 arguments
// explain: passes 1
// fix: pass exactly 2
int xdp_prog(struct xdp_md *ctx) {
    return bpf_redirect(ctx->ingress_ifindex);  // <-
}
