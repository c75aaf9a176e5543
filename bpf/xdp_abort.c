/* xdp_abort.c — fail on purpose: return XDP_ABORTED for every frame.
 *
 * Teaches: XDP_ABORTED, the verdict for "my program hit an error". The frame is dropped exactly
 * as with XDP_DROP, and in addition the kernel fires the tracepoint xdp:xdp_exception (program
 * id, interface, action), which monitoring tools count: perf, xdp-monitor, xdplab.Tracepoints.
 * XDP_DROP fires nothing. So return XDP_DROP for the packets you mean to drop, and XDP_ABORTED
 * only on paths that should never run (a map lookup that failed, ...): then they show up.
 */
int xdp_abort(struct xdp_md *ctx)
{
	return XDP_ABORTED;
}
