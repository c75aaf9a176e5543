"""A small UDP key-value service, and an XDP cache in front of it (lesson 09, the idea of BMC).

    server = Server(lab.server, cache=prog.maps["cache"])   # a process inside the server host
    client = Client(lab.client, lab.server)                 # a socket inside the client host
    client.set("key00001", value("hello"))   # values are padded to 32 bytes: "hello......"
    client.get("key00001")                    # → "hello..........................."
    expected = fill(client, [key(i) for i in range(64)])   # SET 64 keys, {key: value}
    result = measure(client, expected)        # latency of each GET, throughput, replies checked
    plot({"server": before, "XDP cache": after})

The protocol, one request per UDP datagram on port 11211. Keys are exactly KEY_LEN (8) bytes
and values exactly VAL_LEN (32) bytes, without spaces, so that the XDP program
(bpf/lesson09_kvcache.c) copies fixed sizes and needs no loop:

    "GET <key>"              →  "VALUE <key> <value>"   or  "MISS <key>"
    "SET <key> <value>"      →  "STORED <key>"
    "STATS"                  →  "STATS gets=.. misses=.. sets=.. fills=.. deletes=.."  (the server's own)
    anything else            →  "ERROR"

Every reply names its key, so a client with several requests in flight can match the replies:
a GET answered by the cache comes back before an earlier miss that the server answers.

Keeping the cache right. Only the server writes values into the cache, always the value it holds
at that moment: when it answers a GET that reached it (a miss) it fills the entry, and after
storing a SET it deletes the entry, before it replies STORED. It handles one request at a time,
so once a client has its STORED, no cached entry holds an older value. The XDP program also
deletes the key when a SET passes by (as BMC does): that is not needed for the guarantee; it only
shortens the time the cache may answer with the old value while the SET waits in the server's
queue.
Invalidating only in XDP is not enough — see race(), which shows what goes wrong.
The server writes entries with BPF_F_LOCK, taking the entry's bpf_spin_lock, which the XDP program
takes while it copies the value out.

`python -m xdplab.lessons.kvstore serve --netns NS --cache /sys/fs/bpf/...` runs the server; Server() starts
it for you. It is a separate process so that it shares no lock (the GIL) with the client, and it
does not use `ip netns exec`: that gives a process a new /sys without the BPF filesystem, where
the pinned cache map lives. It enters the namespace itself.
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import errno
import os
import select
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import (TYPE_CHECKING, Callable, Collection, Iterable, Iterator, Mapping, NoReturn,
                    Optional, Sequence, Union)

from xdplab.kernel import netns
from xdplab.errors import LabError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from xdplab.lab.topology import Host
    from xdplab.maps.map import Map

PORT = 11211
KEY_LEN, VAL_LEN = 8, 32
BPF_F_LOCK = 4                 # update: copy the value in under the entry's bpf_spin_lock
LOCK_LEN = 4                   # struct bpf_spin_lock, the first field of struct kv_entry
CHECKED_ENTRY = LOCK_LEN + KEY_LEN + VAL_LEN + 4 + 8   # ... and lesson 09's `check` (after padding)
FNV_OFFSET, FNV_PRIME = 0xcbf29ce484222325, 0x100000001b3
# a parsed reply: (kind, key, value), see parse_reply
Reply = tuple[str, Optional[str], Union[str, dict[str, int], None]]


def entry_check(k: bytes, v: bytes) -> int:
    """The `check` of an entry with key k and value v (bytes), as lesson09_kvcache.c computes it
    over its copy: FNV-1a over the five little-endian 64-bit words of key and value."""
    h = FNV_OFFSET
    data = bytes(k) + bytes(v)
    for i in range(0, len(data), 8):
        h = ((h ^ int.from_bytes(data[i:i + 8], "little")) * FNV_PRIME) & (1 << 64) - 1
    return h


# -- the protocol -------------------------------------------------------------------------------
def key(i: int) -> str:
    """The i-th key of a lesson: "key00042"."""
    return f"key{i:05d}"


def value(text: object) -> str:
    """`text` as a value: padded with '.' to VAL_LEN bytes (at most VAL_LEN, no spaces)."""
    text = str(text)
    if len(text) > VAL_LEN or " " in text:
        raise LabError(f"value {text!r} cannot be stored",
                       f"values are at most {VAL_LEN} characters, without spaces")
    return text.ljust(VAL_LEN, ".")


def _check(k, v=None):
    if not isinstance(k, str) or len(k.encode()) != KEY_LEN or " " in k:
        raise LabError(f"key {k!r} is not valid", f"keys are exactly {KEY_LEN} characters without "
                       "spaces, e.g. kvstore.key(42) → 'key00042'")
    if v is not None and (not isinstance(v, str) or len(v.encode()) != VAL_LEN or " " in v):
        raise LabError(f"value {v!r} is not valid", f"values are exactly {VAL_LEN} characters "
                       "without spaces: kvstore.value('hello') pads one")


def get_request(k: str) -> bytes:
    """The datagram of GET k."""
    _check(k)
    return f"GET {k}".encode()


def set_request(k: str, v: str) -> bytes:
    """The datagram of SET k v."""
    _check(k, v)
    return f"SET {k} {v}".encode()


def parse_reply(data: bytes) -> Reply:
    """A reply → (kind, key, value): ("VALUE", k, v), ("MISS", k, None), ("STORED", k, None),
    ("STATS", None, {name: n}), ("ERROR", None, None)."""
    words = data.decode(errors="replace").split(" ")
    kind = words[0]
    if kind == "VALUE" and len(words) == 3:
        return kind, words[1], words[2]
    if kind in ("MISS", "STORED") and len(words) == 2:
        return kind, words[1], None
    if kind == "STATS":
        return kind, None, {n: int(v) for n, v in (w.split("=") for w in words[1:])}
    return "ERROR", None, None


@dataclasses.dataclass
class Store:
    """The server's data and what it did. `cache` (a CacheMap) is written as described above;
    invalidate=False leaves out the delete after a SET (the racy design race() shows)."""
    cache: CacheMap | None = None
    invalidate: bool = True
    data: dict[bytes, bytes] = dataclasses.field(default_factory=dict)
    counts: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(
        ("gets", "misses", "sets", "fills", "deletes"), 0))

    def handle(self, request: bytes) -> bytes:
        """One request (bytes) → its reply (bytes)."""
        words = request.split(b" ")
        if len(words) == 2 and words[0] == b"GET" and len(words[1]) == KEY_LEN:
            self.counts["gets"] += 1
            v = self.data.get(words[1])
            if v is None:
                self.counts["misses"] += 1
                return b"MISS " + words[1]
            if self.cache is not None and self.cache.fill(words[1], v):
                self.counts["fills"] += 1
            return b"VALUE " + words[1] + b" " + v
        if len(words) == 3 and words[0] == b"SET" and len(words[1]) == KEY_LEN \
                and len(words[2]) == VAL_LEN:
            self.counts["sets"] += 1
            self.data[words[1]] = words[2]
            if self.cache is not None and self.invalidate and self.cache.delete(words[1]):
                self.counts["deletes"] += 1
            return b"STORED " + words[1]
        if request.strip() == b"STATS":
            return ("STATS " + " ".join(f"{n}={c}" for n, c in self.counts.items())).encode()
        return b"ERROR"


class CacheMap:
    """The XDP program's `cache` map, opened from its pin in the BPF filesystem."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        from xdplab.kernel.libbpf import libbpf, map_info
        self.lib = libbpf()
        self.fd = self.lib.bpf_obj_get(str(path).encode())
        if self.fd < 0:
            raise LabError(f"cannot open the pinned cache map {path}: {os.strerror(ctypes.get_errno())}",
                           "pin it first: prog.maps['cache'].pin()")
        info = map_info(self.fd)
        self.checked = info.value_size == CHECKED_ENTRY     # lesson 09's entries carry a check
        if info.key_size != KEY_LEN or info.value_size not in (LOCK_LEN + KEY_LEN + VAL_LEN, CHECKED_ENTRY):
            raise LabError(f"{path} is not a cache map of lesson09_kvcache.c "
                           f"(key {info.key_size} bytes, value {info.value_size} bytes)")

    def fill(self, k: bytes, v: bytes) -> bool:
        """Put key k (bytes) with value v (bytes) into the cache; False when it is full."""
        entry = bytes(LOCK_LEN) + k + v
        if self.checked:
            entry += bytes(4) + entry_check(k, v).to_bytes(8, "little")
        return self.lib.bpf_map_update_elem(self.fd, k, entry, BPF_F_LOCK) == 0

    def delete(self, k: bytes) -> bool:
        """Remove key k from the cache; False if it was not there."""
        return self.lib.bpf_map_delete_elem(self.fd, k) == 0


def serve(port: int = PORT, ns: str | None = None, cache: str | os.PathLike[str] | None = None,
          invalidate: bool = True, ready: Callable[[], object] | None = None) -> NoReturn:
    """The server loop (runs until killed). ns: namespace to serve in; cache: pin path."""
    if ns and not netns.exists(ns):
        raise LabError(f"there is no network namespace {ns!r}", "is the lab still open?")
    with netns.enter(ns) if ns else contextlib.nullcontext():
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)   # IPv4 too
    try:
        sock.bind(("::", port))
    except OSError as e:
        raise LabError(f"cannot listen on UDP port {port}: {e.strerror}",
                       "another server has it: stop that one (server.stop())"
                       if e.errno == errno.EADDRINUSE else None) from None
    store = Store(CacheMap(cache) if cache else None, invalidate)
    if ready:
        ready()
    handle, recvfrom, sendto = store.handle, sock.recvfrom, sock.sendto
    while True:
        request, addr = recvfrom(2048)
        sendto(handle(request), addr)


# -- running it in a lab ------------------------------------------------------------------------
class Server:
    """The key-value server as a process inside lab host `host`, stopped with the lab.
    `cache`: the XDP program's cache map (a Map, pinned for you) or None for no cache."""

    def __init__(self, host: Host, cache: Map | str | os.PathLike[str] | None = None,
                 port: int = PORT, invalidate: bool = True) -> None:
        host.lab.check_open()
        self.host, self.port = host, port
        argv = [sys.executable, "-m", "xdplab.lessons.kvstore", "serve", "--netns", host.ns, "--port", str(port)]
        if hasattr(cache, "pin"):      # a Map: pinned under its id, so two programs' never clash
            cache = cache.pin(f"kvstore_cache_{cache.id}")
        if cache is not None:
            argv += ["--cache", str(cache)]
        if not invalidate:
            argv.append("--no-invalidate")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            filter(None, [str(Path(__file__).resolve().parents[2]),
                          os.environ.get("PYTHONPATH")])))
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                     text=True)
        host.lab.on_close(self.stop)
        started = select.select([self.proc.stdout], [], [], 30)[0]
        line = self.proc.stdout.readline() if started else ""     # "ready", or "" when it failed
        if line.strip() != "ready":
            if self.proc.poll() is None:
                self.proc.kill()
            said = dict(ln.split(": ", 1) for ln in self.proc.stderr.read().splitlines() if ": " in ln)
            self.stop()
            raise LabError(f"the key-value server did not start on {host.name}: "
                           f"{said.get('error', 'it exited without a message')}",
                           said.get("hint", "is another server on that port? close it (server.stop())"))

    def pause(self) -> None:
        """Freeze the server process (SIGSTOP): requests wait in its socket; the cache still answers."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused server run again (SIGCONT)."""
        self.proc.send_signal(signal.SIGCONT)

    @contextlib.contextmanager
    def paused(self) -> Iterator[Server]:
        """`with server.paused():` the server is frozen inside the block (pause, then resume)."""
        self.pause()
        try:
            yield self
        finally:
            self.resume()

    def stop(self) -> None:
        """Kill the server (a frozen one too)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=5)
        self.proc.stdout.close()
        self.proc.stderr.close()

    def __repr__(self):
        state = "running" if self.proc.poll() is None else "stopped"
        return f"<kvstore Server on {self.host.name} UDP port {self.port}, pid {self.proc.pid}, {state}>"


class Client:
    """A UDP socket inside lab host `host`, talking to the server on host `server` (over IPv6
    with ipv6=True: the XDP program leaves IPv6 to the server)."""

    def __init__(self, host: Host, server: Host | str, port: int = PORT, timeout: float = 1.0,
                 ipv6: bool = False) -> None:
        host.lab.check_open()
        self.host, self.timeout = host, timeout
        self.addr = (host.address_of(server, ipv6), port)
        with netns.enter(host.ns):
            self.sock = socket.socket(socket.AF_INET6 if ipv6 else socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect(self.addr)
        self.sock.settimeout(timeout)
        host.lab.on_close(self.close)

    def send(self, request: bytes) -> None:
        """Send one request datagram (get_request(), set_request(), b"STATS")."""
        self.sock.send(request)

    def receive(self, count: int | None = None, timeout: float | None = None) -> list[Reply]:
        """Up to `count` replies (all that come when None), parsed; stops after `timeout` quiet."""
        got = []
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        try:
            while count is None or len(got) < count:
                got.append(parse_reply(self.sock.recv(2048)))
        except socket.timeout:
            pass
        finally:
            self.sock.settimeout(self.timeout)
        return got

    def drain(self) -> list[Reply]:
        """Throw away replies nobody waited for (late answers of timed-out requests)."""
        return self.receive(timeout=0.0001)

    def _ask(self, request, kind_key, timeout=None):
        self.send(request)
        deadline = time.monotonic() + (timeout or self.timeout)
        while (left := deadline - time.monotonic()) > 0:
            for reply in self.receive(1, timeout=left):
                if reply[:2] in kind_key:
                    return reply
        return None

    def try_get(self, k: str, timeout: float | None = None) -> Reply | None:
        """GET key k: the parsed reply, ("VALUE", k, value) or ("MISS", k, None), or None when
        no reply came within the timeout."""
        return self._ask(get_request(k), {("VALUE", k), ("MISS", k)}, timeout)

    def get(self, k: str, timeout: float | None = None) -> str | None:
        """The value of key k; None for MISS; raises when no reply comes within the timeout."""
        reply = self.try_get(k, timeout)
        if reply is None:
            raise LabError(f"no reply to GET {k} within {timeout or self.timeout}s",
                           "is the server running? (server.proc.poll() is None)")
        return reply[2]

    def set(self, k: str, v: str) -> None:
        """SET key k to value v; raises when STORED does not come within the timeout."""
        if self._ask(set_request(k, v), {("STORED", k)}) is None:
            raise LabError(f"no reply to SET {k} within {self.timeout}s",
                           "is the server running? (server.proc.poll() is None)")

    def stats(self) -> dict[str, int]:
        """The server's own counters (requests that reached it)."""
        reply = self._ask(b"STATS", {("STATS", None)})
        if reply is None:
            raise LabError("no reply to STATS", "is the server running?")
        return reply[2]

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


# -- measuring ----------------------------------------------------------------------------------
@dataclasses.dataclass
class Measurement:
    """What measure() saw: one latency per request of the closed loop (microseconds), the rate of
    the windowed run (requests per second), and the verdict on every reply."""
    latencies_us: list[float]
    rate: float
    window: int = 1
    requests: int = 0         # requests sent in both runs
    correct: int = 0          # replies equal to the expected value
    wrong: list[tuple[str | None, str | None, str | dict[str, int] | None]] = dataclasses.field(
        default_factory=list)  # (key, expected, got)
    lost: int = 0             # requests never answered

    @property
    def median_us(self) -> float:
        """The median latency, in µs."""
        return statistics.median(self.latencies_us)

    def percentile_us(self, p: float) -> float:
        """The `p`-th percentile of the latencies (0 to 100), in µs."""
        lat = sorted(self.latencies_us)
        return lat[min(len(lat) - 1, int(p / 100 * len(lat)))]

    def __repr__(self):
        return (f"<Measurement median {self.median_us:.1f} µs, p99 {self.percentile_us(99):.1f} µs, "
                f"{self.rate:,.0f} requests/s; {self.correct}/{self.requests} replies correct, "
                f"{len(self.wrong)} wrong, {self.lost} lost>")


def fill(client: Client, keys: Iterable[str], tag: str = "v1") -> dict[str, str]:
    """SET every key to a value derived from it; returns the {key: value} the server now holds."""
    expected = {k: value(f"{tag}-{k}") for k in keys}
    for k, v in expected.items():
        client.set(k, v)
    return expected


def measure(client: Client, expected: Mapping[str, str], requests: int = 2000,
            seconds: float = 1.0, window: int = 16) -> Measurement:
    """GET the keys of `expected` ({key: value}) round-robin: `requests` one at a time (latency),
    then for `seconds` with `window` requests in flight (throughput). Every reply is checked
    against `expected`. The first GET of each key comes before the timing (it fills the cache).
    The loops compare raw bytes with replies prepared beforehand, to keep the client's own cost low."""
    keys = list(expected)
    if not 1 <= window <= len(keys):
        raise LabError(f"window {window} must be from 1 to the number of keys ({len(keys)})",
                       "use more keys, or a smaller window")
    m = Measurement([], 0.0, window)
    request = {k: get_request(k) for k in keys}
    reply_of = {k: f"VALUE {k} {v}".encode() for k, v in expected.items()}
    key_at = slice(6, 6 + KEY_LEN)                    # where "VALUE <key> ..." has its key

    def check(k, reply):
        if reply == reply_of[k]:
            m.correct += 1
        else:
            m.wrong.append((k, expected[k], parse_reply(reply)[2] if reply.startswith(b"VALUE ")
                            else reply.decode(errors="replace")))

    client.drain()
    for k in keys:                                    # warm-up: the cache fills here
        client.get(k)
    sock, clock, lat = client.sock, time.perf_counter_ns, m.latencies_us
    for i in range(requests):                         # closed loop: one request in flight
        k = keys[i % len(keys)]
        t0 = clock()
        sock.send(request[k])
        try:
            reply = sock.recv(2048)
        except socket.timeout:
            m.lost += 1
            continue
        lat.append((clock() - t0) / 1000)
        check(k, reply)

    pending = dict.fromkeys(keys, 0)                  # window: `window` requests in flight
    for i in range(window):
        sock.send(request[keys[i]])
        pending[keys[i]] += 1
    sent, answered, in_flight, stopping = window, 0, window, False
    t0 = time.perf_counter()
    end = t0 + seconds
    while in_flight:
        try:
            reply = sock.recv(2048)
        except socket.timeout:
            m.lost += in_flight
            break
        k = reply[key_at].decode() if reply.startswith(b"VALUE ") else parse_reply(reply)[1]
        if pending.get(k, 0) == 0:
            m.wrong.append((k, None, reply.decode(errors="replace")))
            continue
        pending[k] -= 1
        in_flight -= 1
        answered += 1
        check(k, reply)
        if not answered % 64:                         # look at the clock now and then
            stopping = time.perf_counter() >= end
        if not stopping:
            k = keys[sent % len(keys)]
            sock.send(request[k])
            pending[k] += 1
            sent += 1
            in_flight += 1
    m.rate = answered / (time.perf_counter() - t0)
    m.requests = requests + sent
    return m


def coherence(client: Client, keys: Collection[str],
              rounds: int = 3) -> list[tuple[str, str, str | None, str | None]]:
    """SET each key to a new value and GET it straight after, twice (the second GET is the one
    the cache can answer). Returns [(key, value set, first GET, second GET)] for every GET that
    did not return the value just set — empty when the cache is coherent."""
    stale = []
    for r in range(rounds):
        for k in keys:
            v = value(f"r{r}-{k}")
            client.set(k, v)
            first, second = client.get(k), client.get(k)
            if first != v or second != v:
                stale.append((k, v, first, second))
    return stale


def race(client: Client, server: Server, k: str) -> tuple[str, str, str | None]:
    """The race of invalidating only in the packet path. With the server frozen, a GET (a miss:
    the key is not cached) and then a SET of a new value queue up in its socket; the XDP program
    sees the SET pass and deletes the key — there is nothing to delete yet. Then the server runs:
    it answers the GET with the old value and fills the cache with it, then stores the new value.
    Returns (old, new, what a GET returns afterwards): the old value means the cache is stale."""
    old, new = value(f"old-{k}"), value(f"new-{k}")
    client.set(k, old)
    with server.paused():
        client.send(get_request(k))
        client.send(set_request(k, new))
        time.sleep(0.05)                 # both are in the server's socket before it runs again
    replies = client.receive(2)
    if sorted(r[0] for r in replies) != ["STORED", "VALUE"]:
        raise LabError(f"unexpected replies in the race: {replies}")
    return old, new, client.get(k)


def plot(results: Mapping[str, Measurement]) -> Figure:
    """A figure (xdplab.charts): latency distribution (left) and throughput (right) of each
    {label: Measurement}, one colour each, the legend below."""
    import textwrap
    from xdplab.ui import charts
    from xdplab.ui.widgets import fmt_per_second
    fig, (lat, thr) = charts.figure(10, 4.2, cols=2, width_ratios=[3, 2])
    colors = ["#888888", "#e67e22", "#2a7ab0", "#27ae60"]
    lines = []
    for (label, m), color in zip(results.items(), colors):
        xs = sorted(m.latencies_us)
        ys = [i / len(xs) for i in range(1, len(xs) + 1)]
        lines += lat.step(xs, ys, where="post", color=color,
                          label=f"{label}: median {m.median_us:.0f} µs")
    lat.set_xscale("log")
    lat.set_xlabel("request latency, µs (log scale)")
    lat.set_ylabel("fraction of requests")
    lat.set_title("GET latency, one request in flight")
    charts.log(lat.xaxis)
    charts.values(lat.yaxis)
    lat.grid(alpha=0.3)
    labels = list(results)
    bars = thr.bar(range(len(labels)), [results[n].rate for n in labels],
                   color=colors[:len(labels)])
    wrap = max(8, 40 // max(1, len(labels)))         # names side by side under the bars
    thr.set_xticks(range(len(labels)), [textwrap.fill(n, wrap) for n in labels])
    thr.bar_label(bars, labels=[fmt_per_second(results[n].rate) for n in labels], padding=2)
    thr.set_ylabel("GETs per second")
    charts.values(thr.yaxis)
    windows = sorted({m.window for m in results.values()})
    thr.set_title(f"Throughput, {'/'.join(map(str, windows))} requests in flight")
    charts.legend(fig, lines, columns=2)
    return charts.finish(fig)


# -- command line -------------------------------------------------------------------------------
def _die_with_parent():
    """Be killed when the process that started us dies, also while stopped with SIGSTOP. (The
    kernel watches the *thread* that started us: Server() is called from the notebook's main one.)"""
    PR_SET_PDEATHSIG = 1
    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        sys.exit(0)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m xdplab.lessons.kvstore serve ...`: run the server until killed; 1 when it
    cannot start (the reason on stderr)."""
    ap = argparse.ArgumentParser(prog="python -m xdplab.lessons.kvstore",
                                 description="the lesson 09 UDP key-value server")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="run the server (until killed)")
    s.add_argument("--port", type=int, default=PORT)
    s.add_argument("--netns", help="network namespace to serve in (a name under /run/netns)")
    s.add_argument("--cache", help="pinned cache map of lesson09_kvcache.c to keep coherent")
    s.add_argument("--no-invalidate", action="store_true",
                   help="do not delete a key from the cache after a SET (racy: for the lesson)")
    args = ap.parse_args(argv)
    _die_with_parent()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        serve(args.port, args.netns, args.cache, not args.no_invalidate,
              ready=lambda: print("ready", flush=True))
    except LabError as e:
        print(f"error: {e.message}" + (f"\nhint: {e.hint}" if e.hint else ""), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
