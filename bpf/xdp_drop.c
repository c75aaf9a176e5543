/* xdp_drop.c — drop every frame.
 *
 * Teaches: XDP_DROP. The frame is discarded in the driver, before the kernel allocates anything
 * for it: this is why XDP is the cheapest place to drop traffic (DDoS mitigation does exactly
 * this, with a smarter test first). Attached to a lab host, it cuts the host off: ping stops,
 * even ARP/neighbour discovery, because XDP sees every frame that arrives on the interface.
 * Outgoing traffic is not affected: XDP runs on receive only.
 */
int xdp_drop(struct xdp_md *ctx)
{
	return XDP_DROP;
}
