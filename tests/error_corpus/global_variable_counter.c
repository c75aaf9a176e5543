// mistake: a global variable as a packet counter
// expect: VerifierError
// explain: 'packets' is a global variable
// explain: bcc does not give a program global variables
// fix: BPF_ARRAY(packets_map
static u64 packets = 0;
int xdp_prog(struct xdp_md *ctx) {
    packets++;  // <-
    return XDP_PASS;
}
