/* xdp_pass.c — the smallest XDP program.
 *
 * Teaches: the shape of every XDP program. The kernel calls the function once per received frame,
 * with a struct xdp_md describing it — in native mode from the driver's receive path, before the
 * stack builds its socket buffer (skb) (a veth, a software device, runs it on the frame's data in
 * its NAPI poll); in generic mode from the stack, on the skb. The returned action decides the
 * frame's fate. XDP_PASS hands it on to the normal network stack, so attaching this
 * changes nothing — which is exactly what makes it the first program to attach and detach.
 */
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}
