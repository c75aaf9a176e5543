int xdp_prog(struct xdp_md *ctx) {
    int count = 0;
    return cout + XDP_PASS;
}
