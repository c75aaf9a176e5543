// mistake: perf_submit() without ctx as its first argument
// expect: CompileError
// explain: takes 3 arguments
// explain: the first is the program's ctx
// fix: events.perf_submit(ctx, &event, sizeof(event))
struct event { u32 queue; };
BPF_PERF_OUTPUT(events);
int xdp_prog(struct xdp_md *ctx) {
    struct event e = {.queue = ctx->rx_queue_index};
    events.perf_submit(&e, sizeof(e));  // <-
    return XDP_PASS;
}
