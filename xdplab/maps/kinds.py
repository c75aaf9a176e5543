"""What kind of map a map is, and the words xdplab reads names by: map types (MAP_TYPES, in the
kernel's enum bpf_map_type order), which ones are arrays, which have no entries to read or cannot
delete, the KINDS a key, value or field is typed as."""
import re
import sys

_INDEXED = {"array", "percpu_array", "devmap", "prog_array", "cpumap", "xskmap", "perf_event_array",
            "array_of_maps", "cgroup_array"}
KINDS = ("int", "be", "ipv4", "ipv4_host", "ipv6", "port", "proto", "ethertype", "action", "mac",
         "str", "bytes")
XDP_ACTIONS = ("XDP_ABORTED", "XDP_DROP", "XDP_PASS", "XDP_TX", "XDP_REDIRECT")
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

