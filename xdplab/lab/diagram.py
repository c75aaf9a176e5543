"""A picture of a lab, as SVG: hosts, links, addresses, shaping, and where XDP programs run.

    lab.diagram()                  # last line of a cell: shows inline in the notebook
    d = lab.diagram(); d.svg       # the SVG text
    d.save("lab.svg")

Each host is a box (its name and namespace) listing its interfaces: name, IPv4 and IPv6 address
with prefix, MAC, and a badge for the XDP program attached there, e.g. "xdp_count · native".
Badges come from the kernel (Interface.xdp()), so the picture shows what *is* attached. A program
the lab attached by itself (the native XDP_PASS program of the veth rule) shows under its kernel
name, xdplab_pass. A link is a line from interface to interface, labelled with its subnet and, when
shaped, its rate ("10mbit tbf").

Layout: hosts go left to right along the longest shortest path of the lab, read from the
earlier-made end (client — router — server); every other host goes into the column of its distance
from that end, below the host of the path. Links between neighbouring columns on that path are
straight; the others are curves.

Colours and fonts are JupyterLab's CSS variables, with fallbacks (which follow the browser's light
or dark preference) for where they are not defined: a notebook shows the diagram as inline HTML, so
it follows the JupyterLab theme; the bare SVG (JupyterLab puts that in an <img>, which sees no page
variables) and saved files carry their own background. The picture keeps its own size, so no
text renders below MIN_FONT px: wider than the notebook, it scrolls sideways.
"""
from __future__ import annotations

import ctypes
import dataclasses
import os
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

from xdplab.errors import LabError
from xdplab.kernel.libbpf import libbpf
from xdplab.text import escape

if TYPE_CHECKING:
    from xdplab.lab.topology import Host, Interface, Lab, Link

# geometry, in px
PAD = 10                       # inside a box
HEADER = 42                    # host name and namespace
LINE1, LINE2, LINE3 = 16, 29, 41   # baselines in an interface section: name+IPv4, IPv6, MAC
BADGE_TOP, BADGE_H = 47, 17
SECTION = 50                   # an interface section without badges; SECTION + 22 with
PORT = 12                      # port height inside a section (middle of line 1)
MIN_GAP, VGAP, MARGIN = 120, 36, 16
MONO, SANS, SANS_BOLD = 0.61, 0.56, 0.66   # width of a character, in em (an estimate)
MIN_FONT = 10                  # px: no text is smaller, and the picture is never scaled down
# JupyterLab scales every <svg> of an output to the output's width (max-width:100%): a wide lab
# then shrinks its 10 px text to 6 px on a small screen. Shown at its own size, a diagram wider
# than the output scrolls sideways (_repr_html_'s wrapper) instead.
SIZE_STYLE = "max-width:none;height:auto"

CSS = """
.xdplab-diagram{--xl-bg:#ffffff;--xl-fg:#212121;--xl-fg2:#616161;--xl-box:#f3f3f3;--xl-border:#bdbdbd;
  --xl-line:#757575;--xl-brand:#0d47a1;--xl-warn:#f57c00;--xl-muted:#e0e0e0}
@media (prefers-color-scheme:dark){.xdplab-diagram{--xl-bg:#111111;--xl-fg:#e6e6e6;--xl-fg2:#a8a8a8;
  --xl-box:#262626;--xl-border:#5c5c5c;--xl-line:#9e9e9e;--xl-brand:#1976d2;--xl-warn:#ff9800;
  --xl-muted:#424242}}
.xdplab-diagram text{font-family:var(--jp-ui-font-family,system-ui,-apple-system,"Segoe UI",Roboto,
  "DejaVu Sans",sans-serif);font-size:12px;fill:var(--jp-ui-font-color1,var(--xl-fg))}
.xdplab-diagram .m{font-family:var(--jp-code-font-family,"DejaVu Sans Mono",Menlo,Consolas,monospace)}
.xdplab-diagram .s{font-size:10px;fill:var(--jp-content-font-color1,var(--xl-fg2))}
.xdplab-diagram .b{font-weight:600}
.xdplab-diagram .h{font-size:14px;font-weight:600}
.xdplab-diagram .bg{fill:var(--jp-layout-color0,var(--xl-bg))}
.xdplab-diagram .box{fill:var(--jp-layout-color2,var(--xl-box));
  stroke:var(--jp-border-color1,var(--xl-border))}
.xdplab-diagram .sep{stroke:var(--jp-border-color1,var(--xl-border));stroke-dasharray:2 3}
.xdplab-diagram .link{fill:none;stroke:var(--jp-ui-font-color2,var(--xl-line));stroke-width:2}
.xdplab-diagram .port{fill:var(--jp-ui-font-color2,var(--xl-line))}
.xdplab-diagram .cut{fill:var(--jp-layout-color0,var(--xl-bg))}
.xdplab-diagram .rate{fill:var(--jp-layout-color0,var(--xl-bg));
  stroke:var(--jp-ui-font-color2,var(--xl-line))}
.xdplab-diagram .native{fill:var(--jp-brand-color0,var(--xl-brand))}
.xdplab-diagram .generic,.xdplab-diagram .offload,.xdplab-diagram .multi{
  fill:var(--jp-warn-color1,var(--xl-warn))}
.xdplab-diagram text.on{fill:#ffffff;font-size:10.5px;font-weight:600}
.xdplab-diagram text.on-warn{fill:#111111;font-size:10.5px;font-weight:600}
.xdplab-diagram .helper{fill:var(--jp-layout-color3,var(--xl-muted));
  stroke:var(--jp-border-color1,var(--xl-border));stroke-dasharray:3 2}
.xdplab-diagram text.off{font-size:10.5px}
"""


_e = escape


def _text_class(mode):
    return "on" if mode == "native" else "on-warn"


def _width(text, size, em=SANS):
    return len(str(text)) * size * em


# -- what is attached where --------------------------------------------------------------------------
@dataclasses.dataclass
class Badge:
    """The XDP program on one interface, as the diagram shows it."""
    name: str                  # program name (and function), or the kernel's name of the program
    mode: str                  # "native", "generic", ...
    prog_id: int
    lab_program: bool          # a Program of this lab (False: attached by the lab itself, or others)

    @property
    def text(self) -> str:
        """The badge's text: "name · mode"."""
        return f"{self.name} · {self.mode}"


class _ProgInfo(ctypes.Structure):
    """The leading fields of struct bpf_prog_info, up to the program's name."""
    _fields_ = [("type", ctypes.c_uint32), ("id", ctypes.c_uint32), ("tag", ctypes.c_uint8 * 8),
                ("jited_prog_len", ctypes.c_uint32), ("xlated_prog_len", ctypes.c_uint32),
                ("jited_prog_insns", ctypes.c_uint64), ("xlated_prog_insns", ctypes.c_uint64),
                ("load_time", ctypes.c_uint64), ("created_by_uid", ctypes.c_uint32),
                ("nr_map_ids", ctypes.c_uint32), ("map_ids", ctypes.c_uint64),
                ("name", ctypes.c_char * 16)]


def kernel_name(prog_id: int) -> str | None:
    """The name the kernel knows program `prog_id` by (what bpftool prints), or None."""
    lib = libbpf()
    fd = lib.bpf_prog_get_fd_by_id(prog_id)
    if fd < 0:
        return None
    try:
        info = _ProgInfo()
        size = ctypes.c_uint32(ctypes.sizeof(info))
        if lib.bpf_obj_get_info_by_fd(fd, ctypes.byref(info), ctypes.byref(size)) != 0:
            return None
        return info.name.decode(errors="replace") or None
    finally:
        os.close(fd)


def badges(lab: Lab) -> dict[Interface, Badge]:
    """{Interface: Badge} for every lab interface with an XDP program attached, read live."""
    known = {}                                   # prog id → [(Interface, Program, fn)]
    for prog in lab.programs:
        for a in prog.attachments:
            known.setdefault(a.prog_id, []).append((a.iface, prog, a.fn))
    out = {}
    for host in lab.hosts.values():
        for iface in host.interfaces:
            mode, prog_id = iface.xdp()
            if not mode:
                continue
            candidates = sorted(known.get(prog_id, ()), key=lambda c: c[0] is not iface)
            if candidates:
                _, prog, fn = candidates[0]
                name = fn if fn == prog.name or prog.name == "program" else f"{prog.name}:{fn}"
                out[iface] = Badge(name, mode, prog_id, True)
            else:
                out[iface] = Badge(kernel_name(prog_id) or f"prog {prog_id}", mode, prog_id, False)
    return out


# -- layout --------------------------------------------------------------------------------------------
def _bfs(start, adj):
    dist, parent, queue = {start: 0}, {start: None}, deque([start])
    while queue:
        cur = queue.popleft()
        for n in adj[cur]:
            if n not in dist:
                dist[n], parent[n] = dist[cur] + 1, cur
                queue.append(n)
    return dist, parent


def columns(hosts: Sequence[Host],
            links: Iterable[Link]) -> list[tuple[list[Host], list[Host], dict[Host, int]]]:
    """[(component hosts, spine, {host: column})]: per connected component, the path that runs
    left to right (a longest shortest path, from its earlier-made end) and each host's column
    (its distance from the left end)."""
    order = {h: k for k, h in enumerate(hosts)}
    adj = {h: [] for h in hosts}
    for link in links:
        a, b = link.a.host, link.b.host
        if b not in adj[a]:
            adj[a].append(b)
            adj[b].append(a)
    for h in adj:
        adj[h].sort(key=order.get)
    out, seen = [], set()
    for first in hosts:
        if first in seen:
            continue
        reach = _bfs(first, adj)[0]
        comp = sorted(reach, key=order.get)
        seen.update(comp)
        far = lambda dist: max(dist, key=lambda h: (dist[h], -order[h]))
        u = far(reach)
        v = far(_bfs(u, adj)[0])
        if order[v] < order[u]:
            u, v = v, u
        dist, _ = _bfs(u, adj)
        _, parent = _bfs(v, adj)                  # walk from u towards v
        spine, cur = [], u
        while cur is not None:
            spine.append(cur)
            cur = parent[cur]
        out.append((comp, spine, dist))
    return out


@dataclasses.dataclass
class _Box:
    host: object
    col: int
    x: float = 0
    y: float = 0
    h: float = 0


class _Picture:
    def __init__(self, lab, show_badges=True):
        self.lab = lab
        self.hosts = list(lab.hosts.values())
        self.links = list(lab.links)
        self.badges = badges(lab) if show_badges else {}
        self.section = SECTION + (22 if self.badges else 0)
        self.width = self._box_width()
        self.gap = max([MIN_GAP] + [self._mid_width(l) + 40 for l in self.links])
        self.boxes = {}
        self._place()

    # -- sizes -------------------------------------------------------------------------------------
    def _box_width(self):
        widths = [160]
        for h in self.hosts:
            widths += [_width(h.name, 14, SANS_BOLD), _width(h.ns, 10, MONO)]
            for i in h.interfaces:
                widths += [_width(i.name, 12, SANS_BOLD) + 8 + _width(self._ip(i), 12, MONO),
                           _width(self._ip6(i), 10, MONO), _width(i.mac, 10, MONO)]
                if i in self.badges:
                    widths.append(_width(self.badges[i].text, 10.5, SANS_BOLD) + 14)
        return round(max(widths) + 2 * PAD)

    @staticmethod
    def _ip(i):
        return f"{i.ip}/{i.prefixlen}"

    @staticmethod
    def _ip6(i):
        return f"{i.ip6}/{i.prefixlen6}"

    @staticmethod
    def _rate(link):
        return f"{link.rate} tbf" if link.rate else None

    def _mid_width(self, link):
        rate = self._rate(link)
        return max(_width(link.subnet, 10, MONO), _width(rate, 11, SANS) + 14 if rate else 0)

    def _height(self, host):
        return HEADER + self.section * len(host.interfaces) + (0 if host.interfaces else 4)

    def _port_offset(self, iface):
        return HEADER + self.section * iface.host.interfaces.index(iface) + PORT

    # -- placing boxes -------------------------------------------------------------------------------
    def _place(self):
        top = MARGIN + 22                        # below the title
        for comp, spine, col in columns(self.hosts, self.links):
            boxes = {h: _Box(h, col[h], h=self._height(h)) for h in comp}
            # the path: tops chosen so that each link between neighbours on it is a straight line
            boxes[spine[0]].y = 0
            for prev, cur in zip(spine, spine[1:]):
                link = next(l for l in self.links if {l.a.host, l.b.host} == {prev, cur})
                out, into = (link.a, link.b) if link.a.host is prev else (link.b, link.a)
                boxes[cur].y = boxes[prev].y + self._port_offset(out) - self._port_offset(into)
            lowest = {boxes[h].col: boxes[h].y + boxes[h].h for h in spine}
            # everyone else: below the path's host of the same column, in the order they were made
            for h in comp:
                if h in spine:
                    continue
                b = boxes[h]
                b.y = lowest.get(b.col, max(lowest.values())) + VGAP
                lowest[b.col] = b.y + b.h
            shift = top - min(b.y for b in boxes.values())
            for b in boxes.values():
                b.y += shift
                b.x = MARGIN + b.col * (self.width + self.gap)
            self.boxes.update(boxes)
            top = max(b.y + b.h for b in boxes.values()) + VGAP * 1.5

    # -- drawing -------------------------------------------------------------------------------------------
    def _side(self, iface):
        """'right' or 'left': where iface's port is on its box."""
        mine, theirs = self.boxes[iface.host], self.boxes[iface.peer.host]
        return "left" if theirs.col < mine.col else "right"

    def _port(self, iface):
        b = self.boxes[iface.host]
        x = b.x + (0 if self._side(iface) == "left" else self.width)
        return x, b.y + self._port_offset(iface)

    def _path(self, link):
        """SVG path data of a link and the point in its middle."""
        (x1, y1), (x2, y2) = self._port(link.a), self._port(link.b)
        sa, sb = self._side(link.a), self._side(link.b)
        if y1 == y2 and sa != sb and not self._blocked(x1, x2, y1, link):
            return f"M{x1:.1f},{y1:.1f} H{x2:.1f}", ((x1 + x2) / 2, y1)
        pull = lambda side: 1 if side == "right" else -1
        reach = max(60, abs(x2 - x1) / 2)
        c1 = (x1 + pull(sa) * reach, y1)
        c2 = (x2 + pull(sb) * reach, y2)
        if y1 == y2 and sa != sb:                 # a straight line would cross boxes: arch over
            over = min(b.y for b in self.boxes.values()
                       if min(x1, x2) < b.x + self.width / 2 < max(x1, x2)) - 28
            c1, c2 = (c1[0], over), (c2[0], over)
        mid = ((x1 + 3 * c1[0] + 3 * c2[0] + x2) / 8, (y1 + 3 * c1[1] + 3 * c2[1] + y2) / 8)
        return (f"M{x1:.1f},{y1:.1f} C{c1[0]:.1f},{c1[1]:.1f} {c2[0]:.1f},{c2[1]:.1f} "
                f"{x2:.1f},{y2:.1f}"), mid

    def _blocked(self, x1, x2, y, link):
        lo, hi = min(x1, x2), max(x1, x2)
        return any(lo < b.x + self.width / 2 < hi and b.y <= y <= b.y + b.h
                   for h, b in self.boxes.items() if h not in (link.a.host, link.b.host))

    def _link(self, link):
        d, (mx, my) = self._path(link)
        out = [f'<path class="link" d="{d}"><title>{_e(link.a)} — {_e(link.b)}</title></path>']
        subnet = str(link.subnet)
        w = _width(subnet, 10, MONO)
        out.append(f'<rect class="cut" x="{mx - w / 2 - 3:.1f}" y="{my - 17:.1f}" width="{w + 6:.1f}" '
                   f'height="13"/><text class="m s" x="{mx:.1f}" y="{my - 7:.1f}" '
                   f'text-anchor="middle">{_e(subnet)}</text>')
        rate = self._rate(link)
        if rate:
            w = _width(rate, 11, SANS) + 14
            out.append(f'<rect class="rate" x="{mx - w / 2:.1f}" y="{my - 0.5:.1f}" width="{w:.1f}" '
                       f'height="17" rx="8.5"/><text x="{mx:.1f}" y="{my + 12:.1f}" '
                       f'text-anchor="middle" style="font-size:11px">{_e(rate)}</text>')
        return out

    def _host(self, host):
        b = self.boxes[host]
        x, y, w = b.x, b.y, self.width
        out = [f'<g><title>{_e(host.name)}: network namespace {_e(host.ns)}</title>'
               f'<rect class="box" x="{x:.1f}" y="{y:.1f}" width="{w}" height="{b.h:.1f}" rx="6"/>'
               f'<text class="h" x="{x + PAD:.1f}" y="{y + 19:.1f}">{_e(host.name)}</text>'
               f'<text class="m s" x="{x + PAD:.1f}" y="{y + 34:.1f}">{_e(host.ns)}</text>']
        for k, i in enumerate(host.interfaces):
            top = y + HEADER + k * self.section
            tx = x + PAD
            out.append(f'<line class="sep" x1="{x + 1:.1f}" x2="{x + w - 1:.1f}" y1="{top:.1f}" '
                       f'y2="{top:.1f}"/>'
                       f'<text x="{tx:.1f}" y="{top + LINE1:.1f}"><tspan class="b">{_e(i.name)}</tspan>'
                       f'<tspan class="m" dx="8">{_e(self._ip(i))}</tspan></text>'
                       f'<text class="m s" x="{tx:.1f}" y="{top + LINE2:.1f}">{_e(self._ip6(i))}</text>'
                       f'<text class="m s" x="{tx:.1f}" y="{top + LINE3:.1f}">{_e(i.mac)}</text>')
            badge = self.badges.get(i)
            if badge:
                bw = _width(badge.text, 10.5, SANS_BOLD) + 14
                cls, tcls = (badge.mode, _text_class(badge.mode)) if badge.lab_program \
                    else ("helper", "off")
                what = ("attached by the lab itself (see the veth rule in xdplab.program)"
                        if badge.name == "xdplab_pass" else "")
                out.append(f'<g><title>XDP program {_e(badge.name)} (id {badge.prog_id}) in '
                           f'{_e(badge.mode)} mode on {_e(i)} {_e(what)}</title>'
                           f'<rect class="{cls}" x="{tx:.1f}" y="{top + BADGE_TOP:.1f}" '
                           f'width="{bw:.1f}" height="{BADGE_H}" rx="{BADGE_H / 2}"/>'
                           f'<text class="{tcls}" x="{tx + 7:.1f}" y="{top + BADGE_TOP + 12.5:.1f}">'
                           f'{_e(badge.text)}</text></g>')
            if i.peer is not None:
                px, py = self._port(i)
                out.append(f'<circle class="port" cx="{px:.1f}" cy="{py:.1f}" r="3.5"/>')
        out.append("</g>")
        return out

    def _legend(self, y, right):
        """Lines explaining the badges shown, wrapped before `right`: (svg, bottom y)."""
        shown = {b.mode for b in self.badges.values() if b.lab_program}
        parts = []
        if "native" in shown:
            parts.append(("native", "on", "native", "run by the driver, before the stack's own processing"))
        if shown - {"native"}:
            parts.append(("generic", "on-warn", "generic", "run by the stack on an skb, after the driver"))
        if any(b.name == "xdplab_pass" for b in self.badges.values()):
            parts.append(("helper", "off", "xdplab_pass",
                          "attached by the lab, so that this veth end receives XDP_TX frames"))
        out, x, bottom = [], MARGIN, y - 6 if not parts else y + BADGE_H
        for cls, tcls, label, text in parts:
            bw = _width(label, 10.5, SANS_BOLD) + 14
            need = bw + 5 + _width(text, 10, SANS)
            if x > MARGIN and x + need > right:
                x, y = MARGIN, y + BADGE_H + 6
                bottom = y + BADGE_H
            out.append(f'<rect class="{cls}" x="{x:.1f}" y="{y:.1f}" width="{bw:.1f}" height="{BADGE_H}" '
                       f'rx="{BADGE_H / 2}"/><text class="{tcls}" x="{x + 7:.1f}" y="{y + 12.5:.1f}">'
                       f'{_e(label)}</text><text class="s" x="{x + bw + 5:.1f}" y="{y + 12.5:.1f}">'
                       f'{_e(text)}</text>')
            x += need + 18
        return out, bottom

    def svg(self):
        right = max([b.x + self.width for b in self.boxes.values()], default=MARGIN + 200)
        bottom = max([b.y + b.h for b in self.boxes.values()], default=MARGIN + 40)
        # curves bowing out of the columns (links within one column) need room on the right
        if any(self.boxes[l.a.host].col == self.boxes[l.b.host].col for l in self.links):
            right += 70
        title = (f"lab {self.lab.id}: {len(self.hosts)} host{'s' * (len(self.hosts) != 1)}, "
                 f"{len(self.links)} link{'s' * (len(self.links) != 1)}")
        right = max(right, MARGIN + 360)             # room for a legend entry or two
        legend, bottom = self._legend(bottom + 16, right)
        width = round(right + MARGIN)
        height = round(bottom + MARGIN)
        body = [f'<text class="s" x="{MARGIN}" y="{MARGIN + 8}" style="font-size:11px">{_e(title)}</text>']
        for link in self.links:
            body += self._link(link)
        for h in self.hosts:
            body += self._host(h)
        body += legend
        return (f'<svg xmlns="http://www.w3.org/2000/svg" class="xdplab-diagram" width="{width}" '
                f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
                f'style="{SIZE_STYLE}"><title>{_e(title)}</title>'
                f'<style>{CSS}</style><rect class="bg" width="{width}" height="{height}" rx="6"/>'
                + "".join(body) + "</svg>")


class Diagram:
    """A lab's diagram: shows itself in a notebook; `.svg` is the SVG text, `.save(path)` writes
    it, `.badges` tells which program runs where ({Interface: Badge})."""

    def __init__(self, lab: Lab, badges: bool = True) -> None:
        lab.check_open()
        pic = _Picture(lab, badges)
        self.lab_id = lab.id
        self.badges = pic.badges
        self.svg = pic.svg()

    def _repr_svg_(self) -> str:
        return self.svg

    def _repr_html_(self) -> str:
        # inline, the SVG sees JupyterLab's CSS variables (as an <img> it would not)
        return f'<div style="overflow-x:auto">{self.svg}</div>'

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the SVG to `path` (a name ending in .svg); returns the path."""
        path = Path(path)
        if path.suffix.lower() != ".svg":
            raise LabError(f"a diagram is saved as SVG, and {str(path)!r} does not end in .svg",
                           f"save it as {path.with_suffix('.svg').name!r}; a browser or "
                           "'rsvg-convert -o lab.png lab.svg' turns it into PNG")
        path.write_text(self.svg, encoding="utf-8")
        return path

    def __repr__(self):
        progs = "; ".join(f"{i}: {b.text}" for i, b in self.badges.items()) or "no XDP programs"
        return f"<Diagram of lab {self.lab_id}: {progs}>"


def diagram(lab: Lab, badges: bool = True) -> Diagram:
    """The diagram of `lab` as it is now (see the module doc); badges=False leaves out the XDP
    programs (no kernel queries)."""
    return Diagram(lab, badges)
