int xdp_prog(struct xdp_md *ctx) {
    int n = 0;
    return cout + XDP_PASS;
}
