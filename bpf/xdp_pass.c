/* xdp_pass.c — the smallest XDP program.
 *
 * Teaches: the shape of every XDP program. The kernel calls the function once per received frame,
 * with a struct xdp_md describing it, before any socket buffer (skb) exists; the returned action
 * decides the frame's fate. XDP_PASS hands it on to the normal network stack, so attaching this
 * changes nothing — which is exactly what makes it the first program to attach and detach.
 */
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}
