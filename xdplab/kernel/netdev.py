"""The "netdev" generic netlink family (Linux 6.3+), and the devices made inside lab hosts.

    from xdplab.kernel import netdev
    netdev.present(host.ns)                  # does this kernel have the family? (asked in a lab host)
    netdev.read(host.ns)                     # {ifindex: (name, message or None)} of every device
    netdev.read(host.ns, 2)                  # ... of one device
    with netns.enter(ns), netdev.Netdev() as nd:
        nd.bind(); nd.dev_get()              # the raw messages (NETDEV_A_DEV_* attributes)
    netdev.made_in(host)                     # Interfaces of devices made inside `host` (bridges...)

Since Linux 6.3 every driver declares its XDP features (include/uapi/linux/netdev.h), and the
kernel reports them through the "netdev" generic netlink family: command dev-get returns, per
device, the flags xdp-features, xdp-rx-metadata-features and xsk-features (`ynl --family netdev
--dump dev-get` prints the same). pyroute2 has no class for this family, so the query is built
here on pyroute2's generic netlink socket. The family answers for the network namespace of the
socket, so the socket is opened inside the lab host (run read() and present() off the notebook's
asyncio loop when one runs: netns.off_loop).

xdplab.features (lesson 10) names the flags and shows them; xdplab.probe() asks whether the
family exists; xdplab.Tracepoints names the devices made inside a host (MADE) where it reports
redirects. Nothing here imports another layer of xdplab.
"""
from __future__ import annotations

import errno
import weakref
from typing import Any

from pyroute2.netlink import NLM_F_DUMP, NLM_F_REQUEST, genlmsg
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.generic import AsyncGenericNetlinkSocket, GenericNetlinkSocket

from xdplab.errors import LabError
from xdplab.kernel import netns

FAMILY = "netdev"
CMD_DEV_GET = 1


class netdev_msg(genlmsg):
    prefix = "NETDEV_A_DEV_"
    nla_map = (("NETDEV_A_DEV_UNSPEC", "none"),
               ("NETDEV_A_DEV_IFINDEX", "uint32"),
               ("NETDEV_A_DEV_PAD", "none"),
               ("NETDEV_A_DEV_XDP_FEATURES", "uint64"),
               ("NETDEV_A_DEV_XDP_ZC_MAX_SEGS", "uint32"),
               ("NETDEV_A_DEV_XDP_RX_METADATA_FEATURES", "uint64"),
               ("NETDEV_A_DEV_XSK_FEATURES", "uint64"))


class AsyncNetdev(AsyncGenericNetlinkSocket):
    module_err_level = "debug"         # a kernel without the family is reported, not logged

    async def dev_get(self, ifindex: int | None = None) -> list[netdev_msg]:
        """The dev-get messages of device `ifindex`, or of every device when it is None."""
        msg = netdev_msg()
        msg["cmd"] = CMD_DEV_GET
        msg["version"] = 1
        flags = NLM_F_REQUEST | NLM_F_DUMP
        if ifindex is not None:
            msg["attrs"].append(("NETDEV_A_DEV_IFINDEX", ifindex))
            flags = NLM_F_REQUEST
        return await self.nlm_request(msg, msg_type=self.prid, msg_flags=flags)


class Netdev(GenericNetlinkSocket):
    """The netdev generic netlink family:  with Netdev() as nd: nd.bind(); nd.dev_get(ifindex)
    (every device when ifindex is None). bind() raises NetlinkError ENOENT without the family;
    `family` names another one (default: FAMILY, read when bind() runs)."""
    async_class = AsyncNetdev

    def bind(self, family: str | None = None) -> None:
        return super().bind(FAMILY if family is None else family, netdev_msg)

    def dev_get(self, ifindex: int | None = None) -> list[netdev_msg]:
        return self._run_sync_cleanup(self.asyncore.dev_get, ifindex)


def present(ns: str, family: str | None = None) -> bool:
    """Whether the netdev generic netlink family answers, asked inside namespace `ns` (blocking:
    call it through netns.off_loop under an asyncio loop)."""
    with netns.enter(ns), Netdev() as nd:
        try:
            nd.bind(family)
            return True
        except NetlinkError as e:
            if e.code != errno.ENOENT:
                raise
            return False


def read(ns: str, ifindex: int | None = None,
         family: str | None = None) -> dict[int, tuple[str | None, Any]]:
    """{ifindex: (name, dev-get message or None)} of device `ifindex` (every device when None) in
    namespace `ns`; the messages are None when the kernel has no netdev family. A LabError when
    no device has that index there."""
    from pyroute2 import IPRoute
    with netns.enter(ns), IPRoute() as ipr, Netdev() as nd:
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
        try:
            nd.bind(family)
        except NetlinkError as e:
            if e.code != errno.ENOENT:
                raise
            return {i: (n, None) for i, n in names.items() if ifindex in (None, i)}
        try:
            msgs = nd.dev_get(ifindex)
        except NetlinkError as e:
            if e.code != errno.ENODEV:
                raise
            raise LabError(f"there is no device with index {ifindex} in {ns}",
                           "it was removed, or the index belongs to another namespace") from None
    return {m.get_attr("NETDEV_A_DEV_IFINDEX"): (names.get(m.get_attr("NETDEV_A_DEV_IFINDEX")), m)
            for m in msgs}


# host → {device name: Interface}: the lab's Interface objects of devices made inside a host
# (xdplab.features.device() makes them), one per device, so that a program attached to one is
# found again by identity; they go away with the host.
MADE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def made_in(host: Any) -> list:
    """The Interfaces of devices made inside lab host `host` that xdplab knows of (oldest first)."""
    return list(MADE.get(host, {}).values())
