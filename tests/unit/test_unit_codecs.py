"""Map codecs without a map: xdplab.maps.make_codec turns bcc's ctypes key and value types into
typed values (addresses, ports, protocol and action names, structs), combine() sums per-CPU
copies, rates() turns two snapshots into per-second rates. The bytes below are what the kernel
stores (network order where a program copies a header field), written out by hand."""
import ctypes
import ipaddress
import sys

import pytest

from xdplab import LabError
from xdplab.maps import combine, make_codec, rates

little = pytest.mark.skipif(sys.byteorder != "little", reason="the bytes below are little-endian")


class Flow(ctypes.Structure):
    _fields_ = [("saddr", ctypes.c_uint32), ("daddr", ctypes.c_uint32),
                ("sport", ctypes.c_uint16), ("dport", ctypes.c_uint16),
                ("proto", ctypes.c_uint8), ("__pad", ctypes.c_uint8 * 3)]


class Stats(ctypes.Structure):
    _fields_ = [("packets", ctypes.c_uint64), ("bytes", ctypes.c_uint64)]


class Seen(ctypes.Structure):
    _fields_ = [("last_ip", ctypes.c_uint32), ("hits", ctypes.c_uint64)]


# 192.168.1.2:12345 → 192.168.1.1:53, UDP (17): fields as a program copies them from the headers
FLOW = bytes.fromhex("c0a80102" "c0a80101" "3039" "0035" "11" "000000")


def test_an_ipv6_address_of_sixteen_bytes():
    codec = make_codec(ctypes.c_uint8 * 16, "saddr")
    key = bytes.fromhex("20010db8000000000000000000000001")
    assert codec.kind == "ipv6"
    assert codec.decode(key, 0) == ipaddress.IPv6Address("2001:db8::1")


def test_an_ipv4_field_is_read_in_network_order():
    codec = make_codec(ctypes.c_uint32, "daddr")
    assert codec.kind == "ipv4"
    assert codec.decode(bytes([10, 0, 0, 1]), 0) == ipaddress.IPv4Address("10.0.0.1")


def test_a_map_named_for_nothing_keeps_plain_numbers_unless_btf_says_be32():
    assert make_codec(ctypes.c_uint32, "blocked", top=True).kind == "int"
    codec = make_codec(ctypes.c_uint32, "blocked", hints=("__be32",), top=True)
    assert codec.kind == "ipv4"
    assert str(codec.decode(bytes([192, 0, 2, 7]), 0)) == "192.0.2.7"


@little
def test_ipv4_host_is_an_address_held_as_a_native_number():
    codec = make_codec(ctypes.c_uint32, "x", declared="ipv4_host")
    assert str(codec.decode((0x0A000001).to_bytes(4, "little"), 0)) == "10.0.0.1"


def test_a_port_of_two_bytes_in_network_order():
    codec = make_codec(ctypes.c_uint16, "dport")
    assert codec.kind == "port"
    assert codec.decode(bytes([0x00, 0x35]), 0) == 53
    assert codec.decode(bytes([0x1f, 0x90]), 0) == 8080


@little
def test_a_port_loaded_from_the_header_and_kept_in_a_u32():
    # `u32 port = udp->dest;` loads bytes 00 35 as the u16 0x3500 and stores 00 35 00 00
    codec = make_codec(ctypes.c_uint32, "port", top=True)
    assert codec.kind == "port"
    assert codec.decode(bytes([0x00, 0x35, 0x00, 0x00]), 0) == 53


def test_ethertypes_and_protocols_are_named_and_unknown_ones_stay_numbers():
    eth = make_codec(ctypes.c_uint16, "h_proto")
    assert eth.decode(bytes([0x08, 0x00]), 0) == "IPv4"
    assert eth.decode(bytes([0x86, 0xdd]), 0) == "IPv6"
    assert eth.decode(bytes([0x12, 0x34]), 0) == 0x1234
    proto = make_codec(ctypes.c_uint8, "proto")
    assert proto.kind == "proto"
    assert [proto.decode(bytes([p]), 0) for p in (1, 6, 17, 58, 99)] == ["ICMP", "TCP", "UDP", "ICMPv6", 99]


def test_an_action_field_and_enum_xdp_action_name_the_verdict():
    assert make_codec(ctypes.c_uint32, "action").decode((1).to_bytes(4, sys.byteorder), 0) == "XDP_DROP"
    codec = make_codec(ctypes.c_uint32, "k", hints=("enum xdp_action",), top=True)
    assert [codec.decode(v.to_bytes(4, sys.byteorder), 0) for v in range(6)] == \
        ["XDP_ABORTED", "XDP_DROP", "XDP_PASS", "XDP_TX", "XDP_REDIRECT", 5]


def test_mac_addresses_and_strings():
    assert make_codec(ctypes.c_uint8 * 6, "mac").decode(bytes.fromhex("020000000001"), 0) == "02:00:00:00:00:01"
    name = make_codec(ctypes.c_char * 16, "ifname")
    assert name.kind == "str"
    assert name.decode(b"eth0\0garbage\0\0\0\0", 0) == "eth0"


def test_a_five_tuple_struct_is_a_named_tuple_of_typed_fields():
    codec = make_codec(Flow, "flow")
    assert codec.kinds() == {"saddr": "ipv4", "daddr": "ipv4", "sport": "port", "dport": "port",
                             "proto": "proto"}          # the padding is not a column
    flow = codec.decode(FLOW, 0)
    assert type(flow).__name__ == "Flow"
    assert flow == (ipaddress.IPv4Address("192.168.1.2"), ipaddress.IPv4Address("192.168.1.1"),
                    12345, 53, "UDP")
    assert flow.dport == 53 and flow.proto == "UDP"


def test_decoding_many_records_in_bulk_agrees_with_one_at_a_time():
    other = bytes.fromhex("0a000001" "0a000002" "0400" "01bb" "06" "000000")   # 10.0.0.1:1024 → :443 TCP
    buf = memoryview(FLOW + other + FLOW)
    codec = make_codec(Flow, "flow")
    bulk = list(codec.column(buf, 3, 16))
    assert bulk == [codec.decode(buf, i * 16) for i in range(3)]
    assert bulk[1].sport == 1024 and bulk[1].dport == 443 and bulk[1].proto == "TCP"
    ports = make_codec(ctypes.c_uint16, "dport")
    assert list(ports.column(buf, 3, 16, offset=10)) == [53, 443, 53]


def test_declared_kinds_override_the_guess_and_wrong_ones_are_plain_errors():
    assert make_codec(Flow, "flow", declared={"sport": "int"}).kinds()["sport"] == "int"
    with pytest.raises(LabError) as e:
        make_codec(ctypes.c_uint16, "x", declared="ipv4")
    assert "2 bytes" in str(e.value) and "needs 4 bytes" in e.value.hint
    with pytest.raises(LabError) as e:
        make_codec(Flow, "flow", declared={"dst_port": "port"})
    assert "no field 'dst_port'" in str(e.value) and "dport" in e.value.hint
    with pytest.raises(LabError) as e:
        make_codec(ctypes.c_uint32, "x", declared={"a": "int"})
    assert "not a struct" in str(e.value)
    with pytest.raises(LabError) as e:
        make_codec(ctypes.c_uint32, "x", declared="address")
    assert "unknown kind 'address'" in str(e.value) and "ipv4" in e.value.hint


def test_per_cpu_copies_sum_counters_and_keep_the_first_nonzero_of_the_rest():
    stats = make_codec(Stats, "stats")
    T = stats.tuple_type
    assert combine(stats, [T(1, 100), T(2, 200), T(0, 0)]) == T(3, 300)
    array = make_codec(ctypes.c_uint64 * 3, "counts")
    assert combine(array, [(1, 2, 3), (10, 20, 30)]) == (11, 22, 33)
    ports = make_codec(ctypes.c_uint16, "dport")
    assert combine(ports, [0, 53, 80]) == 53              # a port is not summed


def test_per_cpu_an_address_comes_from_the_first_cpu_that_saw_one():
    seen = make_codec(Seen, "seen")
    ip = ipaddress.IPv4Address
    cpus = [seen.tuple_type(ip("0.0.0.0"), 0), seen.tuple_type(ip("10.0.0.7"), 2),
            seen.tuple_type(ip("10.0.0.9"), 5)]
    assert combine(seen, cpus) == (ip("10.0.0.7"), 7)


def test_rates_per_second_from_two_snapshots():
    assert rates({"a": 100}, {"a": 350, "b": 20}, 2.5) == {"a": 100.0, "b": 8.0}
    assert rates({"a": 500}, {"a": 30}, 1.0) == {"a": 30.0}         # went down: the counter was reset
    stats = make_codec(Stats, "stats")
    T = stats.tuple_type
    assert rates({"k": T(10, 1000)}, {"k": T(30, 4000)}, 2.0, stats) == {"k": (10.0, 1500.0)}
    seen = make_codec(Seen, "seen")
    ip = ipaddress.IPv4Address("10.0.0.7")
    out = rates({"k": seen.tuple_type(ip, 4)}, {"k": seen.tuple_type(ip, 10)}, 2.0, seen)
    assert out["k"].last_ip == ip and out["k"].hits == 3.0        # an address is not a counter
    with pytest.raises(LabError):
        rates({}, {"a": 1}, 0)


def test_per_cpu_a_mac_or_an_action_name_is_zero_when_its_bytes_are():
    mac = make_codec(ctypes.c_uint8 * 6, "mac")
    assert combine(mac, ["00:00:00:00:00:00", "02:58:4c:00:00:01"]) == "02:58:4c:00:00:01"
    action = make_codec(ctypes.c_uint32, "action")
    assert combine(action, ["XDP_ABORTED", "XDP_DROP"]) == "XDP_DROP"
