"""Panels: small ipywidgets front-ends to send traffic and to try a program on one packet.

    TrafficPanel(lab, program=prog)     # pick hosts, protocol, port, count; Send
    VerdictExplorer(prog)               # craft or pick a packet; Run: verdict, diff, hexdump

Each panel shows itself as the last line of a cell, and has a method doing what its button does
(`TrafficPanel.send()`, `VerdictExplorer.run()`) for scripts and check cells. Sending runs in a
background thread, so the notebook stays responsive while packets go out; running a program on
one packet takes microseconds and runs at once. A panel closes when its lab does.
"""
from __future__ import annotations

import ipaddress
import threading
from typing import TYPE_CHECKING, NamedTuple

import ipywidgets as W

from xdplab.errors import LabError
from xdplab.text import escape
from xdplab.lab.settle import settled
from xdplab.lab.measure import counted
from xdplab.ui.widgets import CSS, fmt_value

if TYPE_CHECKING:
    from scapy.packet import Packet

    from xdplab.lab.topology import Lab
    from xdplab.lab.traffic import SendReport
    from xdplab.maps.codecs import Decoded
    from xdplab.program.program import Program
    from xdplab.program.testrun import TestRunResult

PROTOCOLS = ("UDP", "TCP", "ICMP", "ICMPv6")
SPORT = 40000                   # source port of crafted UDP/TCP packets
MAX_COUNT = 10_000_000
SETTLE_QUIET, SETTLE_LIMIT = 0.2, 5.0   # seconds: maps unchanged this long count as settled

VERDICTS = {   # background, text colour, what it means. Fixed pairs (not theme variables): the
    # badge draws its own background, so it reads the same on light and dark pages; every pair has
    # a contrast ratio of at least 4.5 (tests/test_diagram_panels.py computes it).
    "XDP_PASS": ("#1b5e20", "#ffffff", "the packet goes on into the kernel's network stack"),
    "XDP_DROP": ("#b71c1c", "#ffffff",
                 "the packet is discarded here, before the network stack sees it"),
    "XDP_TX": ("#0d47a1", "#ffffff", "the packet is sent back out of the interface it arrived on"),
    "XDP_REDIRECT": ("#006064", "#ffffff",
                     "the packet is sent on to another interface, CPU or socket"),
    "XDP_ABORTED": ("#f57c00", "#111111",
                    "a program error: the packet is dropped and the xdp:xdp_exception "
                    "tracepoint fires"),
}


_e = escape


def _error(e):
    """HTML for an exception shown in a panel instead of raised from a button."""
    if isinstance(e, LabError):
        text = e.message + (f" → {e.hint}" if e.hint else "")
    else:
        text = f"{type(e).__name__}: {e}"
    return f'<div class="xdplab-w" style="color:var(--jp-error-color1,#d32f2f)">⚠ {_e(text)}</div>'


def verdict_badge(verdict: str) -> str:
    """HTML of a verdict ("XDP_PASS"...) as a coloured badge (an unknown one as XDP_ABORTED's)."""
    bg, fg, _ = VERDICTS.get(verdict, VERDICTS["XDP_ABORTED"])
    return (f'<span style="background:{bg};color:{fg};font-weight:600;padding:1px 9px;'
            f'border-radius:9px;font-family:var(--jp-code-font-family,monospace)">{_e(verdict)}</span>')


def _row(*children):
    return W.HBox(list(children), layout=W.Layout(flex_flow="row wrap", align_items="center"))


def _field(cls, description, width="170px", display=None, **kw):
    return cls(description=description, style={"description_width": "initial"},
               layout=W.Layout(width=width, display=display), **kw)


class _Panel:
    """Shows `self.widget`; closes with the lab."""

    def _repr_mimebundle_(self, **kw):
        return self.widget._repr_mimebundle_(**kw)

    def close(self) -> None:
        """Close the panel's widgets (the lab's closing does this too)."""
        self.closed = True

        def close_tree(w):
            for child in getattr(w, "children", ()):
                close_tree(child)
            w.close()
        close_tree(self.widget)


# -- traffic -----------------------------------------------------------------------------------------
class Sent(NamedTuple):
    """What TrafficPanel.send() did: the SendReport, and what the program's maps counted meanwhile
    ({map name: {key: change}}, only entries that changed; counters as differences)."""
    report: SendReport
    counted: dict[str, dict[Decoded, Decoded]]


class TrafficPanel(_Panel):
    """Send packets between lab hosts from a form; with `program`, show what its maps counted.

        panel = TrafficPanel(lab, program=prog)
        panel                                   # the form (last line of a cell)
        report, counted = panel.send()          # what the Send button does
    """

    def __init__(self, lab: Lab, program: Program | None = None, count: int = 50) -> None:
        lab.check_open()
        names = [h.name for h in lab.hosts.values() if h.interfaces]
        if len(names) < 2:
            raise LabError("a traffic panel needs a lab with at least two linked hosts",
                           "e.g. lab = xdplab.Lab.pair(), or lab.link(a, b) first")
        self.lab, self.program, self.closed = lab, program, False
        self.last = None                         # the last Sent
        self._lock = threading.Lock()
        self._thread = None
        src = "client" if "client" in names else names[0]
        dst = "server" if "server" in names and src != "server" else \
            next(n for n in reversed(names) if n != src)
        self.source = _field(W.Dropdown, "from", options=names, value=src)
        self.destination = _field(W.Dropdown, "to", options=names, value=dst)
        self.protocol = _field(W.Dropdown, "protocol", width="150px", options=PROTOCOLS, value="UDP")
        self.port = _field(W.BoundedIntText, "port", width="130px", value=53, min=1, max=65535)
        self.count = _field(W.BoundedIntText, "count", width="160px", value=count, min=1,
                            max=MAX_COUNT)
        self.button = W.Button(description="Send", button_style="primary", icon="paper-plane",
                               tooltip="send the packets from a background thread")
        self.output = W.HTML()
        self.protocol.observe(lambda _: self._sync_port(), names="value")
        self.button.on_click(self._clicked)
        self.widget = W.VBox([_row(self.source, self.destination, self.protocol),
                              _row(self.port, self.count, self.button), self.output])
        self._sync_port()
        lab.on_close(self.close)

    def _sync_port(self):
        self.port.disabled = self.protocol.value not in ("UDP", "TCP")

    def packet(self) -> Packet:
        """The scapy packet the form describes (addresses: the destination host as seen from the
        source host; the source address and MACs are filled in by Host.send)."""
        from scapy.layers.inet import ICMP, IP, TCP, UDP
        from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
        src, dst = self.lab[self.source.value], self.lab[self.destination.value]
        if src is dst:
            raise LabError(f"'from' and 'to' are both {src.name!r}: the packets would not leave it",
                           "pick another destination host")
        proto = self.protocol.value
        if proto == "ICMPv6":
            return IPv6(dst=src.address_of(dst, ipv6=True)) / ICMPv6EchoRequest()
        ip = IP(dst=src.address_of(dst))
        if proto == "ICMP":
            return ip / ICMP()
        if proto == "TCP":
            return ip / TCP(sport=SPORT, dport=self.port.value, flags="S")
        return ip / UDP(sport=SPORT, dport=self.port.value)

    def _maps(self):
        if self.program is None:
            return {}
        return {n: m for n, m in ((n, self.program.maps[n]) for n in self.program.maps)
                if m.key_codec is not None}

    @staticmethod
    def _snapshots(maps):
        return {n: m.snapshot() for n, m in maps.items()}

    def _settled(self, maps, last):
        """Snapshots once the maps stopped changing (frames may still be on their way, e.g.
        queued by a rate-limited link, when send returns)."""
        return settled(lambda: self._snapshots(maps), SETTLE_QUIET, SETTLE_LIMIT, poll=0.02,
                       last=last)

    def send(self) -> Sent:
        """Send what the form says, from the source host; returns Sent(report, counted)."""
        with self._lock:
            self.lab.check_open()
            pkt = self.packet()
            src = self.lab[self.source.value]
            maps = self._maps()
            before = self._snapshots(maps)
            report = src.send(pkt, count=self.count.value)
            after = self._settled(maps, before) if maps else {}
            self.last = Sent(report, counted(maps, before, after))
            self.output.value = self._html(self.last, pkt)
            return self.last

    def _clicked(self, _button=None):
        if self._thread is not None and self._thread.is_alive():
            return
        self.button.disabled, self.button.description = True, "Sending…"
        self.output.value = (f'<div class="xdplab-w"><span class="cap">sending {self.count.value:,} '
                             f'{_e(self.protocol.value)} packets from {_e(self.source.value)}…'
                             '</span></div>')
        self._thread = threading.Thread(target=self._background, name="xdplab-send", daemon=True)
        self._thread.start()

    def _background(self):
        try:
            self.send()
        except Exception as e:                     # shown in the panel: a thread cannot raise
            self.output.value = _error(e)
        finally:
            self.button.disabled, self.button.description = self.closed, "Send"

    def wait(self, timeout: float = 60) -> None:
        """Wait for a send started by the button to finish (for tests and scripts)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def close(self) -> None:
        super().close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)

    def _html(self, sent, pkt):
        r = sent.report
        proto = self.protocol.value
        tail = {"UDP": f" port {self.port.value}", "TCP": f" port {self.port.value} (SYN)"}
        what = f"{proto} to {pkt.dst}{tail.get(proto, ' (echo request)')}"
        how = {"af_packet": "AF_PACKET socket", "live_frames": "XDP live frames (fast injector)"}
        rate = fmt_value(float(r.rate_pps))
        took = f"{r.seconds * 1e3:.2f} ms" if r.seconds < 1 else f"{r.seconds:.2f} s"
        parts = [f'<div class="xdplab-w">{CSS}<b>sent {r.sent:,} packet{"s" * (r.sent != 1)}</b> '
                 f'from {_e(r.iface)}: {_e(what)}<br>'
                 f'<span class="cap">by {_e(how.get(r.method, r.method))} in {took} '
                 f'({_e(rate)} packets/s)</span>']
        parts += [f'<br><span class="cap">note: {_e(n)}</span>' for n in r.notes]
        if self.program is not None:
            parts.append(self._counted_html(sent.counted))
        return "".join(parts) + "</div>"

    def _counted_html(self, counts):
        name = _e(self.program.name)
        if not counts:
            where = ", ".join(f"{a.iface} ({a.mode})" for a in self.program.attachments)
            hint = (f"it is attached to {where}: did the packets pass there?" if where else
                    f"it is not attached: {name}.attach(lab.server)")
            return f'<div style="margin-top:4px">the maps of {name} did not change — {_e(hint)}</div>'
        out = [f'<div style="margin-top:4px">what <b>{name}</b> counted meanwhile:</div>']
        for map_name, changes in counts.items():
            first = next(iter(changes.values()))
            fields = list(first._fields) if hasattr(first, "_fields") else ["change"]
            head = "".join(f"<th>{_e(f)}</th>" for f in ["key", *fields])
            rows = "".join(
                f'<tr><td class="k">{_e(fmt_value(k))}</td>'
                + "".join(f'<td class="n">{_e(fmt_value(x, counter=True))}</td>'
                          for x in (v if hasattr(v, "_fields") else [v])) + "</tr>"
                for k, v in changes.items())
            out.append(f'<div><code>{_e(map_name)}</code><table><tr>{head}</tr>{rows}</table></div>')
        return "".join(out)


# -- one packet through a program ---------------------------------------------------------------------
_BASE = {"sport": SPORT, "dport": 53, "flags": "S", "vlan": 0, "payload": "", "cut": 0}
PRESETS = {
    "UDP 53": {"protocol": "UDP", "dport": 53},
    "TCP SYN 80": {"protocol": "TCP", "dport": 80, "flags": "S"},
    "ICMP echo": {"protocol": "ICMP"},
    "ICMPv6 echo": {"protocol": "ICMPv6"},
    "VLAN-tagged UDP": {"protocol": "UDP", "dport": 53, "vlan": 100},
    "truncated": {"protocol": "UDP", "dport": 53, "cut": 30},
}
CUSTOM = "custom"


class VerdictExplorer(_Panel):
    """Run a program on one crafted packet, in the kernel (BPF_PROG_TEST_RUN): verdict, what the
    program changed, and the bytes.

        ex = VerdictExplorer(prog)
        ex                                      # the form (last line of a cell)
        ex.preset.value = "ICMP echo"; ex.run().verdict
    """

    def __init__(self, program: Program, fn: str | None = None) -> None:
        program.check_open()
        self.program, self.closed = program, False
        self.result = None
        self._applying = False
        fn = program.fn_name(fn)
        self.addresses = self._default_addresses(program.lab)
        self.preset = _field(W.Dropdown, "packet", width="210px", options=[*PRESETS, CUSTOM],
                             value="UDP 53")
        self.function = _field(W.Dropdown, "function", width="240px", options=program.functions,
                               value=fn, display=None if len(program.functions) > 1 else "none")
        self.protocol = _field(W.Dropdown, "protocol", width="150px", options=PROTOCOLS, value="UDP")
        self.src = _field(W.Text, "src", width="230px")
        self.dst = _field(W.Text, "dst", width="230px")
        self.sport = _field(W.BoundedIntText, "sport", width="140px", min=0, max=65535)
        self.dport = _field(W.BoundedIntText, "dport", width="140px", min=0, max=65535)
        self.flags = _field(W.Text, "TCP flags", width="130px",
                            tooltip="scapy's flag letters: S SYN, A ACK, F FIN, R RST, P PSH")
        self.vlan = _field(W.BoundedIntText, "VLAN", width="130px", min=0, max=4094,
                           tooltip="802.1Q VLAN id; 0: no tag")
        self.payload = _field(W.Text, "payload", width="250px", placeholder="text after the header")
        self.cut = _field(W.BoundedIntText, "cut to bytes", width="160px", min=0, max=4096,
                          tooltip="keep only the first N bytes of the frame; 0: all of it")
        self.button = W.Button(description="Run", button_style="primary", icon="play",
                               tooltip="run the program on this packet (BPF_PROG_TEST_RUN)")
        self.output = W.HTML()
        self.widget = W.VBox([
            _row(self.preset, self.function, self.protocol),
            _row(self.src, self.dst),
            _row(self.sport, self.dport, self.flags, self.vlan),
            _row(self.payload, self.cut, self.button),
            self.output])
        self.preset.observe(lambda ch: self._applying or self.apply(ch["new"]), names="value")
        self.protocol.observe(self._protocol_changed, names="value")
        for w in (self.src, self.dst, self.sport, self.dport, self.flags, self.vlan, self.payload,
                  self.cut):
            w.observe(self._edited, names="value")
        self.button.on_click(self._clicked)
        self.apply("UDP 53")
        program.lab.on_close(self.close)

    @staticmethod
    def _default_addresses(lab):
        """{4: (src, dst), 6: (src, dst)}: client → server when the lab has them."""
        try:
            c, s = lab.hosts["client"], lab.hosts["server"]
            return {4: (c.ip, c.address_of(s)), 6: (c.ip6, c.address_of(s, ipv6=True))}
        except (KeyError, LabError):
            return {4: ("10.11.0.1", "10.11.0.2"), 6: ("fd00:11::1", "fd00:11::2")}

    # -- the form ------------------------------------------------------------------------------------
    def apply(self, preset: str) -> None:
        """Fill the form from a preset (one of PRESETS)."""
        if preset == CUSTOM:
            return
        if preset not in PRESETS:
            raise LabError(f"no preset {preset!r}", f"presets: {', '.join(PRESETS)}")
        values = {**_BASE, **PRESETS[preset]}
        self._applying = True
        try:
            self.protocol.value = values["protocol"]
            self._set_family(6 if values["protocol"] == "ICMPv6" else 4)
            for name in ("sport", "dport", "flags", "vlan", "payload", "cut"):
                getattr(self, name).value = values[name]
            self.preset.value = preset
        finally:
            self._applying = False
        self._sync()

    def _set_family(self, family):
        self.src.value, self.dst.value = self.addresses[family]

    def _family(self):
        try:
            return ipaddress.ip_address(self.dst.value.strip()).version
        except ValueError:
            return None

    def _protocol_changed(self, change):
        want = {"ICMP": 4, "ICMPv6": 6}.get(change["new"])
        if want is not None and self._family() != want and not self._applying:
            self._set_family(want)
        self._edited(change)

    def _edited(self, _change):
        self._sync()
        if not self._applying and self.preset.value != CUSTOM:
            self._applying = True
            try:
                self.preset.value = CUSTOM
            finally:
                self._applying = False

    def _sync(self):
        ports = self.protocol.value in ("UDP", "TCP")
        self.sport.disabled = self.dport.disabled = not ports
        self.flags.disabled = self.protocol.value != "TCP"

    def packet(self) -> Packet | bytes:
        """The frame the form describes: a scapy packet, or bytes when cut short."""
        from scapy.layers.inet import ICMP, IP, TCP, UDP
        from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
        from scapy.layers.l2 import Dot1Q, Ether
        from scapy.packet import Raw
        from xdplab.program import testrun
        addrs = []
        for name, w in (("src", self.src), ("dst", self.dst)):
            try:
                addrs.append(ipaddress.ip_address(w.value.strip()))
            except ValueError:
                raise LabError(f"{name} {w.value!r} is not an IP address",
                               f"e.g. {self.addresses[4][1]} or {self.addresses[6][1]}") from None
        src, dst = addrs
        if src.version != dst.version:
            raise LabError(f"src {src} and dst {dst} are not of one IP version",
                           "give two IPv4 or two IPv6 addresses")
        proto = self.protocol.value
        if (proto, src.version) in (("ICMP", 6), ("ICMPv6", 4)):
            raise LabError(f"{proto} needs IPv{4 if proto == 'ICMP' else 6} addresses",
                           f"use {'ICMPv6' if proto == 'ICMP' else 'ICMP'}, or other addresses")
        payload = self.payload.value.encode()
        ip = (IP if src.version == 4 else IPv6)(src=str(src), dst=str(dst))
        if proto == "UDP":
            l4 = UDP(sport=self.sport.value, dport=self.dport.value)
        elif proto == "TCP":
            l4 = TCP(sport=self.sport.value, dport=self.dport.value, flags=self.flags.value or 0)
        else:
            l4 = ICMP() if proto == "ICMP" else ICMPv6EchoRequest()
        frame = Ether(src=testrun.DEFAULT_SRC_MAC, dst=testrun.DEFAULT_DST_MAC)
        if self.vlan.value:
            frame = frame / Dot1Q(vlan=self.vlan.value)
        pkt = frame / ip / l4
        if payload:
            pkt = pkt / Raw(payload)
        try:
            data = bytes(pkt)
        except Exception as e:               # e.g. TCP flags scapy does not know
            raise LabError(f"cannot build the packet: {e}",
                           "check the fields (TCP flags are letters like S, SA, FA)") from None
        return data[:self.cut.value] if self.cut.value else pkt

    # -- running -------------------------------------------------------------------------------------
    def run(self) -> TestRunResult:
        """Run the program on the packet of the form; returns the TestRunResult (and shows it)."""
        result = self.program.test_run(self.packet(), fn=self.function.value)
        self.result = result
        self.output.value = self._html(result)
        return result

    def _clicked(self, _button=None):
        try:
            self.run()
        except Exception as e:                     # shown in the panel, like a failed send
            self.output.value = _error(e)

    def _html(self, res):
        _, _, meaning = VERDICTS.get(res.verdict, VERDICTS["XDP_ABORTED"])
        diff = res.diff._repr_html_()
        return (f'<div class="xdplab-w">{CSS}<div style="margin:4px 0">{verdict_badge(res.verdict)} '
                f'<span class="cap">{_e(meaning)} · return value {res.retval} · '
                f'{res.ns_per_packet} ns</span></div>'
                f'<div><code>in&nbsp;: {_e(res.input.summary())}</code><br>'
                f'<code>out: {_e(res.packet.summary())}</code></div>'
                f'<div style="margin-top:4px"><b>what the program changed</b><div>{diff}</div></div>'
                f'<div style="margin-top:4px"><b>the packet it left</b> '
                f'<span class="cap">(^^ marks bytes it changed)</span>'
                f'<pre style="margin:2px 0;font-size:var(--jp-code-font-size,12px);white-space:pre;'
                f'word-break:normal;overflow-wrap:normal;overflow-x:auto;'
                f'color:var(--jp-content-font-color1,inherit)">{_e(res.hexdump())}</pre></div></div>')
