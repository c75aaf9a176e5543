"""What kind of map a map is, and the words xdplab reads names by: map types (MAP_TYPES, in the
kernel's enum bpf_map_type order), which ones are arrays, which have no entries to read or cannot
delete, the KINDS a key, value or field is typed as, and the kind a map's or a field's name and C
type suggest (key_is_action, infer_kind: rules 2 to 5 of xdplab.maps)."""
from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING

from xdplab.kernel.constants import XDP_ACTIONS     # noqa: F401 — xdplab.maps.XDP_ACTIONS

if TYPE_CHECKING:
    from xdplab.maps.btf import Hints

# keys are slot numbers from 0 to max_entries - 1, whatever the map's name
INDEXED = {"array", "percpu_array", "devmap", "prog_array", "cpumap", "xskmap", "perf_event_array",
           "array_of_maps", "cgroup_array"}
KINDS = ("int", "be", "ipv4", "ipv4_host", "ipv6", "port", "proto", "ethertype", "action", "mac",
         "str", "bytes")
IP_PROTOS = {1: "ICMP", 2: "IGMP", 4: "IPIP", 6: "TCP", 17: "UDP", 41: "IPv6", 47: "GRE",
             50: "ESP", 51: "AH", 58: "ICMPv6", 132: "SCTP"}
ETHERTYPES = {0x0800: "IPv4", 0x0806: "ARP", 0x86DD: "IPv6", 0x8100: "802.1Q", 0x88A8: "802.1ad",
              0x8847: "MPLS", 0x88CC: "LLDP"}
MAP_TYPES = ("unspec", "hash", "array", "prog_array", "perf_event_array", "percpu_hash",
             "percpu_array", "stack_trace", "cgroup_array", "lru_hash", "lru_percpu_hash",
             "lpm_trie", "array_of_maps", "hash_of_maps", "devmap", "sockmap", "cpumap", "xskmap",
             "sockhash", "cgroup_storage", "reuseport_sockarray", "percpu_cgroup_storage", "queue",
             "stack", "sk_storage", "devmap_hash", "struct_ops", "ringbuf", "inode_storage",
             "task_storage", "bloom_filter", "user_ringbuf", "cgrp_storage", "arena")
ARRAYS = {"array", "percpu_array", "devmap", "cpumap", "xskmap", "cgroup_array"}
ZEROED = {"array", "percpu_array"}     # every slot always holds a value: none can be deleted
WRITE_ONLY = {"prog_array"}            # written (program fds) and emptied, never snapshot
NETNS_VALUES = {"devmap", "devmap_hash"}   # values are ifindexes of the writer's namespace
NOT_READABLE = {"prog_array", "perf_event_array", "ringbuf", "user_ringbuf", "queue", "stack",
                "bloom_filter", "stack_trace", "array_of_maps", "hash_of_maps", "sockmap",
                "sockhash", "reuseport_sockarray", "struct_ops", "arena"}
NATIVE = sys.byteorder

_ADDR_WORDS = {"ip", "ips", "ipv4", "ip4", "ipv6", "ip6", "addr", "addrs", "address", "addresses",
               "saddr", "daddr", "src", "srcs", "dst", "dsts", "sip", "dip", "srcip", "dstip",
               "source", "sources", "dest", "dests", "destination", "nexthop", "gateway", "gw"}
_PROTO_WORDS = {"proto", "protocol", "protos", "protocols", "ipproto", "l4proto", "nexthdr"}
_ETHERTYPE_NAMES = {"h_proto", "ethertype", "eth_type", "ether_type", "eth_proto", "ethproto",
                    "l3_proto", "l3proto", "ethertypes"}
_ACTION_WORDS = {"action", "actions", "verdict", "verdicts"}
_COUNT_WORDS = {"count", "counts", "counter", "counters", "cnt", "stats", "stat"}
_SHORT_PORT_WORDS = {"source", "dest", "src", "dst"}     # struct udphdr/tcphdr name ports so


def _words(name):
    return set(w for w in re.split(r"[^a-z0-9]+", (name or "").lower()) if w)


def key_is_action(name: str, map_kind: str, max_entries: int) -> bool:
    """Whether the integer keys of map `name` (a `map_kind` map) are XDP actions by its name:
    rule 2 of xdplab.maps (the enum xdp_action type is rule 3, in infer_kind)."""
    words = _words(name)
    return bool(words & _ACTION_WORDS or "xdp_stats" in name.lower()
                or (map_kind in ("array", "percpu_array") and max_entries == 5
                    and words & _COUNT_WORDS))


def infer_kind(name: str | None, size: int, hints: Hints, integer: bool, top: bool,
               byte_array: bool = False) -> str | None:
    """The kind of a scalar of `size` bytes named `name` (rules 3-5 of xdplab.maps), from its BTF
    `hints` (the typedef and enum names of btf_hints). `integer`: a C integer rather than an
    array (of bytes when `byte_array`); `top`: the map's own key or value rather than a field.
    None for an array that is neither an address nor a MAC."""
    hints = hints if isinstance(hints, tuple) else ()
    words, lname = _words(name), (name or "").lower()
    be = any(h.startswith("__be") for h in hints)
    if "enum xdp_action" in hints:
        return "action"
    if not integer:                      # an array: of bytes (u8[16], u8[6]) or of u32[4]
        if size == 16 and words & _ADDR_WORDS:
            return "ipv6"
        return "mac" if size == 6 and byte_array else None
    if lname in _ETHERTYPE_NAMES or (words & _PROTO_WORDS and (size == 2 or be)):
        return "ethertype" if size in (2, 4) else "be"
    if words & _PROTO_WORDS:
        return "proto"
    if size in (2, 4) and (any("port" in w for w in words)
                           or (size == 2 and words & _SHORT_PORT_WORDS and not top)):
        return "port"
    if size == 4 and words & _ADDR_WORDS:
        return "ipv4"
    if words & _ACTION_WORDS and not top:
        return "action"
    if be:
        return "ipv4" if size == 4 and top else "be"
    return "int"
