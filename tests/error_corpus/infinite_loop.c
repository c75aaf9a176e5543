// mistake: a loop that never ends
// expect: VerifierError
// explain: never ends
// fix: i++
// message: infinite loop detected
int xdp_prog(struct xdp_md *ctx) {
    unsigned char *p = (void *)(long)ctx->data;
    unsigned char *end = (void *)(long)ctx->data_end;
    for (;;) {  // <-
        if (p + 1 > end)
            break;
        if (*p == 0)
            break;
    }
    return XDP_PASS;
}
