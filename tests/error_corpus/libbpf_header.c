// mistake: libbpf's bpf/bpf_helpers.h in bcc
// expect: CompileError
// explain: <bpf/bpf_helpers.h> is libbpf's header
// fix: remove the #include
#include <bpf/bpf_helpers.h>  // <-
int xdp_prog(struct xdp_md *ctx) {
    return XDP_PASS;
}
