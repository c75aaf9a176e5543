// mistake: reading past the end of struct xdp_md
// expect: VerifierError
// explain: at offset 32 of struct xdp_md
// explain: six 32-bit fields
// fix: read the fields by name
int xdp_prog(struct xdp_md *ctx) {
    u32 *fields = (u32 *)ctx;
    return fields[8] ? XDP_PASS : XDP_DROP;  // <-
}
