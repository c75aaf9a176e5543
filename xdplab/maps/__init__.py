"""Maps: a program's BPF maps read as typed Python values.

    m = prog.maps["counters"]
    m.snapshot()                 # {'XDP_ABORTED': 0, 'XDP_DROP': 0, 'XDP_PASS': 5, ...}
    m.snapshot(per_cpu=True)     # per-CPU maps: a tuple per value, one item per possible CPU
    m.rates()                    # per-second rates of every counter since the previous call
    m.kinds                      # how keys and values are typed: {'key': 'action', 'value': 'int'}
    m.declare(key={"saddr": "ipv4_host"})   # override what xdplab inferred
    m.pin()                      # /sys/fs/bpf/xdplab/<lab>/<map>, for `bpftool map dump pinned ...`
    m.clear(); len(m); m.kind; m.max_entries; m.fd; m.id
    m["XDP_PASS"]                # one key now (MissingKey, a KeyError, when it is not there)
    m[key] = value; del m[key]; m.update({key: value}, XDP_DROP=0)   # written with the same types

Writing. Keys and values go in as snapshot() gives them out and are encoded by the same codecs
(Codec.encode): ints in the CPU's order, ports and `ipv4` addresses in network order as the
program copies them from the packet, "UDP"/"XDP_DROP"/"IPv4" names or their numbers, named
tuples, plain tuples or dicts of fields (left-out fields are zero) for structs; bcc's ctypes
Key/Leaf objects are written as they are. Per-CPU maps: one value is written to every CPU's copy
(a summed read then gives ncpus times it: write 0 to reset a counter), a list gives one value per
possible CPU. Arrays cannot delete (the kernel keeps every slot): set the value to zero instead.
Program arrays take program fds (prog.fd("fn")); devmaps take a lab Interface (or Host,
"host:ifname"), or an int ifindex when the program is attached in one host only: the kernel reads
an ifindex in the namespace of whoever writes it, so xdplab writes it inside that host.

Typing. Integers are ints, C structs become named tuples with the C field names (padding left
out), char arrays become str. A key, value or field is read as one of these KINDS:

    int        an integer in the CPU's byte order (what `u64 *v = ...; *v += 1` stores)
    be         an integer stored in network byte order (__be16/__be32/__be64), as a host int
    ipv4       4 bytes in network order, as read from the packet (iph->saddr) → IPv4Address
    ipv4_host  a u32 address already converted with bpf_ntohl() → IPv4Address
    ipv6       16 bytes (struct in6_addr, u8[16], u32[4]) → IPv6Address
    port       a port in network order (udph->dest), also when widened into a u32 → int
    proto      an IP protocol number → "TCP", "UDP", "ICMP", "ICMPv6", ... (other numbers: int)
    ethertype  an EtherType in network order (eth->h_proto) → "IPv4", "IPv6", "ARP", ... or int
    action     an XDP action number → "XDP_ABORTED" ... "XDP_REDIRECT" (other numbers: int)
    mac        6 bytes → "02:58:4c:00:00:01"
    str        a NUL-terminated char array → str
    bytes      raw bytes

The kind is chosen by the first rule that applies:
  1. `declare()`: prog.maps["m"].declare(key="ipv4") for a scalar key, or a dict of fields for a
     struct, e.g. declare(key={"dport": "int"}, value={"last": "ipv4"}).
  2. The map key is an XDP action when its type is `enum xdp_action`, when the map name has the
     word action(s) or verdict(s) or contains "xdp_stats", or when it is a 5-entry array
     (XDP_ACTION_MAX entries) whose name has count/counter(s)/cnt/stats.
  3. The C type: struct in6_addr is ipv6, char[] is str, u8[6] is mac, `enum xdp_action` is
     action (typedef and enum names come from the program's BTF, which bcc loads with it).
  4. The name — of the struct field, or of the map for a scalar key (split on "_"):
     proto/protocol → proto (a 2-byte or __be16 one, or h_proto/ethertype/eth_type → ethertype);
     a word with "port" (and 2-byte source/dest/src/dst, as in struct udphdr) → port;
     4 bytes named ip/addr/saddr/daddr/src/dst/source/dest/... → ipv4, 16 bytes → ipv6;
     action/verdict → action.
     Like the packet they come from, these are assumed to be in network order. If your program
     converted them (bpf_ntohs(udph->dest)), declare the field "int" (or "ipv4_host").
  5. Otherwise __be16/__be32/__be64 are be (a bare __be32 map key or value is ipv4), and
     everything else is int.

Per-CPU maps: each CPU has its own copy of every value; snapshot() adds them up (counters are
summed field by field, other fields are taken from the first CPU where the entry is not zero).

Reading: a snapshot reads hash and array maps with BPF_MAP_LOOKUP_BATCH, a few syscalls for the
whole map, falling back to one lookup per key when the kernel or the map type does not support it
(`snapshot(batch=False)` forces that; `m.read_method` tells which one ran). The map operations go
through libbpf (which bcc itself uses) rather than bcc's Table: bcc's batch loop passes one
variable as both the batch token and the count (it only works when one call returns everything),
its per-CPU tables refuse struct values whose size is not a multiple of 8, and its clear() of a
hash restarts the key walk after every delete.
"""
# The package in modules: kinds (map types, KINDS, the name rules), btf (BTF hints), codecs
# (bytes ⇄ typed values), counters (per-CPU sums, rates), map (Map, Maps). The names below are
# the ones the rest of xdplab, the tests and the benchmarks use as xdplab.maps.NAME; libbpf() and
# map_info() are xdplab.kernel.libbpf's, where every libbpf prototype is declared.
from xdplab.kernel.libbpf import libbpf, map_info
from xdplab.maps.btf import btf_hints
from xdplab.maps.codecs import Codec, make_codec
from xdplab.maps.counters import combine, rates
from xdplab.maps.kinds import ARRAYS, ETHERTYPES, IP_PROTOS, KINDS, MAP_TYPES, NATIVE, \
    NOT_READABLE, XDP_ACTIONS
from xdplab.maps.map import BATCH_CHUNK, Map, Maps, MissingKey, table_facts, table_names

__all__ = ["ARRAYS", "BATCH_CHUNK", "Codec", "ETHERTYPES", "IP_PROTOS", "KINDS", "MAP_TYPES",
           "NATIVE", "NOT_READABLE", "XDP_ACTIONS", "Map", "Maps", "MissingKey", "btf_hints",
           "combine", "libbpf", "make_codec", "map_info", "rates", "table_facts", "table_names"]
