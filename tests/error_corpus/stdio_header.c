// mistake: #include <stdio.h>
// expect: CompileError
// explain: <stdio.h> is a header of the C library
// fix: remove the #include
#include <stdio.h>  // <-
int xdp_prog(struct xdp_md *ctx) {
    return XDP_PASS;
}
