"""The lab diagram (SVG) and the two panels, on real labs: programs attached in both modes and read
back from the kernel, packets sent and counted, packets run through real programs."""
import xml.etree.ElementTree as ET

import pytest

import xdplab
from xdplab import LabError
from xdplab.panels import TrafficPanel, VerdictExplorer

SVG = "{http://www.w3.org/2000/svg}"


def parse(diagram):
    """The SVG parsed (proves it is well-formed XML) and all of its text, one string per element."""
    root = ET.fromstring(diagram.svg)
    assert root.tag == f"{SVG}svg"
    texts = ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]
    return root, texts


def host_x(root, name):
    """x of the host box whose title text is `name`."""
    return next(float(t.get("x")) for t in root.iter(f"{SVG}text")
                if t.get("class") == "h" and t.text == name)


def test_diagram_of_a_pair_names_every_address(pair, tmp_path):
    d = pair.diagram()
    root, texts = parse(d)
    c, s = pair.client, pair.server
    for h in (c, s):
        assert h.name in texts and h.ns in texts
        i = h.iface()
        assert f"{i.name}{i.ip}/24" in texts          # name and IPv4 on one line
        assert f"{i.ip6}/64" in texts and i.mac in texts
    assert "10.11.0.0/24" in texts
    assert not any("tbf" in t or "·" in t for t in texts)     # no shaping, no program
    assert host_x(root, "client") < host_x(root, "server")
    assert d._repr_svg_() == d.svg and d.svg in d._repr_html_()
    assert d.save(tmp_path / "lab.svg").read_text() == d.svg
    with pytest.raises(LabError, match="SVG"):
        d.save(tmp_path / "lab.png")


def test_diagram_of_three_hosts_shows_rate_programs_and_modes():
    with xdplab.Lab() as lab:
        c, r, s = lab.host("client"), lab.host("router"), lab.host("server")
        lab.link(c, r)
        lab.link(r, s, rate="10mbit")
        count = lab.load("xdp_count.c")
        count.attach(s, mode="native")
        flt = lab.load("xdp_filter.c")
        flt.attach(r.iface("eth1"), mode="generic")
        tx = lab.load("xdp_macswap_tx.c")
        tx.attach(r.iface("eth0"))           # the veth rule: the lab puts xdplab_pass on client:eth0

        d = lab.diagram()
        root, texts = parse(d)
        assert "10mbit tbf" in texts and "10.11.1.0/24" in texts
        assert "xdp_count · native" in texts
        assert "xdp_filter · generic" in texts
        assert "xdp_macswap_tx · native" in texts
        assert "xdplab_pass · native" in texts
        # the badges come from the kernel's state of each interface
        assert d.badges[s.iface()].prog_id == s.iface().xdp().prog_id == count.attachments[0].prog_id
        assert d.badges[r.iface("eth1")].mode == "generic"
        assert not d.badges[c.iface()].lab_program
        for h in (c, r, s):
            for i in h.interfaces:
                assert i.ip + "/24" in "".join(texts) and i.mac in texts
        # client — router — server, left to right, and the two links are straight lines
        assert host_x(root, "client") < host_x(root, "router") < host_x(root, "server")
        links = [p.get("d") for p in root.iter(f"{SVG}path") if p.get("class") == "link"]
        assert len(links) == 2 and all(" H" in p and "C" not in p for p in links)

        count.detach()
        flt.attach(s, mode="generic")        # replaces nothing on s (count is gone): generic there
        _, texts = parse(lab.diagram())
        assert "xdp_count · native" not in texts and texts.count("xdp_filter · generic") == 2


def test_diagram_lays_out_other_graphs():
    """A star and a host without links: every host drawn once, left to right by distance."""
    with xdplab.Lab() as lab:
        r = lab.host("router")
        for name in ("client", "server", "attacker"):
            lab.link(lab.host(name), r)
        lab.host("lonely")
        root, texts = parse(lab.diagram(badges=False))
        for name in lab.hosts:
            assert texts.count(name) == 1
        assert host_x(root, "client") < host_x(root, "router") < host_x(root, "server")
        assert host_x(root, "server") == host_x(root, "attacker")
        assert len([p for p in root.iter(f"{SVG}path") if p.get("class") == "link"]) == 3


def test_diagram_of_a_closed_lab_says_so():
    lab = xdplab.Lab.pair()
    lab.close()
    with pytest.raises(LabError, match="closed"):
        lab.diagram()


def test_traffic_panel_counts_exactly_what_was_sent(pair):
    prog = pair.load("xdp_count.c")
    prog.attach(pair.server)
    panel = TrafficPanel(pair, program=prog)
    assert (panel.source.value, panel.destination.value) == ("client", "server")
    assert panel.protocol.value == "UDP"
    panel.port.value, panel.count.value = 53, 50
    report, counted = panel.send()
    assert report.sent == 50
    # exactly the 50 frames, 42 bytes each (Ethernet 14 + IPv4 20 + UDP 8), all passed
    assert counted == {"counters": {"XDP_PASS": (50, 50 * 42)}}
    assert "sent 50 packets" in panel.output.value and "XDP_PASS" in panel.output.value

    # the button: TCP SYNs to port 80, sent from a background thread
    panel.protocol.value, panel.port.value, panel.count.value = "TCP", 80, 20
    panel.button.click()
    panel.wait()
    assert not panel.button.disabled and panel.button.description == "Send"
    assert panel.last.report.sent == 20
    assert panel.last.counted == {"counters": {"XDP_PASS": (20, 20 * 54)}}

    panel.protocol.value, panel.count.value = "ICMPv6", 5
    assert panel.port.disabled
    assert panel.send().counted["counters"]["XDP_PASS"].packets == 5


def test_traffic_panel_shows_errors_and_closes_with_the_lab():
    lab = xdplab.Lab.pair()
    try:
        panel = TrafficPanel(lab)
        panel.destination.value = "client"
        with pytest.raises(LabError, match="would not leave"):
            panel.send()
        panel.button.click()
        panel.wait()
        assert "⚠" in panel.output.value and "would not leave" in panel.output.value
        assert not panel.button.disabled
        panel.destination.value = "server"
        sent = panel.send()
        assert sent.report.sent == 50 and sent.counted == {}
    finally:
        lab.close()
    assert panel.closed and panel.button.comm is None


def test_verdict_explorer_runs_presets_and_edits_through_xdp_filter(pair):
    ex = VerdictExplorer(pair.load("xdp_filter.c"))
    assert ex.preset.value == "UDP 53" and ex.run().verdict == "XDP_DROP"
    assert "XDP_DROP" in ex.output.value
    expected = {"TCP SYN 80": "XDP_PASS", "ICMP echo": "XDP_DROP", "ICMPv6 echo": "XDP_DROP",
                "VLAN-tagged UDP": "XDP_DROP", "truncated": "XDP_PASS", "UDP 53": "XDP_DROP"}
    for preset, verdict in expected.items():
        ex.preset.value = preset
        res = ex.run()
        assert res.verdict == verdict, preset
    ex.preset.value = "ICMPv6 echo"
    assert ":" in ex.src.value and ex.run().input.haslayer("IPv6")
    ex.preset.value = "VLAN-tagged UDP"
    assert ex.run().input.haslayer("Dot1Q") and ex.vlan.value == 100
    ex.preset.value = "truncated"
    assert len(ex.run().input_bytes) == 30

    # edits are honoured and turn the preset into "custom"
    ex.preset.value = "UDP 53"
    ex.dport.value = 5353
    assert ex.preset.value == "custom" and ex.run().verdict == "XDP_PASS"
    ex.protocol.value, ex.dport.value = "TCP", 53
    res = ex.run()
    assert res.verdict == "XDP_DROP" and res.input["TCP"].dport == 53
    ex.protocol.value = "ICMPv6"                   # switches to IPv6 addresses
    assert ex.run().verdict == "XDP_DROP" and ex.dst.value == pair.server.ip6

    ex.dst.value = "not-an-address"
    with pytest.raises(LabError, match="not an IP address"):
        ex.run()
    ex.button.click()
    assert "⚠" in ex.output.value


def test_verdict_explorer_shows_what_xdp_macswap_tx_changed(pair):
    ex = VerdictExplorer(pair.load("xdp_macswap_tx.c"))
    res = ex.run()
    assert res.verdict == "XDP_TX"
    changes = {(c.layer, c.field): (c.before, c.after) for c in res.diff}
    src, dst = res.input["Ether"].src, res.input["Ether"].dst
    assert changes == {("Ether", "dst"): (dst, src), ("Ether", "src"): (src, dst)}
    assert "^^" in res.hexdump()
    assert "<table>" in ex.output.value and "XDP_TX" in ex.output.value
    ex.payload.value = "hello"
    assert ex.run().packet["Raw"].load == b"hello"


# -- how it looks in JupyterLab's light and dark themes ----------------------------------------------
import re
from pathlib import Path

from xdplab import diagram as diagram_module, panels, widgets
from xdplab.errors import CompileError

THEMES = Path(__file__).resolve().parent.parent / ".venv/share/jupyter/nbconvert/templates/lab/static"
NAMED = {"white": (255, 255, 255, 1.0), "black": (0, 0, 0, 1.0), "transparent": (0, 0, 0, 0.0)}


def theme(name):
    """{--variable: value} of JupyterLab's theme `name` ("light", "dark"), as nbconvert's lab
    template ships it (the same variables JupyterLab's theme extensions define)."""
    found = {}
    for css in ((THEMES / "index.css").read_text(), (THEMES / f"theme-{name}.css").read_text()):
        for var, value in re.findall(r"(--[\w-]+)\s*:\s*([^;{}]+);", css):
            found[var] = value.strip()
    return found


def resolve(value, variables):
    """A CSS value with its var(--x, fallback) resolved against `variables`."""
    for _ in range(20):
        m = re.search(r"var\((--[\w-]+)\s*(?:,([^()]*(?:\([^()]*\)[^()]*)*))?\)", value)
        if not m:
            return value.strip()
        name, fallback = m.group(1), m.group(2)
        got = variables.get(name, fallback.strip() if fallback is not None else "")
        value = value[:m.start()] + got + value[m.end():]
    raise AssertionError(f"cannot resolve {value}")


def rgba(value):
    value = value.strip().lower()
    if value in NAMED:
        return NAMED[value]
    if value.startswith("#"):
        h = value[1:]
        if len(h) in (3, 4):
            h = "".join(c * 2 for c in h)
        a = int(h[6:8], 16) / 255 if len(h) == 8 else 1.0
        return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16), a
    m = re.fullmatch(r"rgba?\(([^)]*)\)", value)
    assert m, f"not a colour: {value!r}"
    parts = [float(x) for x in m.group(1).replace("/", ",").replace(" ", ",").split(",") if x]
    return (*parts[:3], parts[3] if len(parts) > 3 else 1.0)


def over(top, below):
    """`top` composited over the opaque colour `below`."""
    a = top[3]
    return tuple(top[i] * a + below[i] * (1 - a) for i in range(3)) + (1.0,)


def contrast(fg, bg):
    """WCAG 2 contrast ratio of two opaque colours."""
    def lum(c):
        ch = [x / 255 for x in c[:3]]
        ch = [x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4 for x in ch]
        return 0.2126 * ch[0] + 0.7152 * ch[1] + 0.0722 * ch[2]
    hi, lo = sorted((lum(fg), lum(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def themed_contrast(fg, bg, variables, page="--jp-layout-color0"):
    """Contrast of text `fg` on background `bg` (CSS values, var() allowed) on a page of `page`."""
    page_c = rgba(resolve(f"var({page})", variables))
    back = over(rgba(resolve(bg, variables)), page_c)
    return contrast(over(rgba(resolve(fg, variables)), back), back)


def test_the_contrast_helper_knows_the_wcag_numbers():
    assert contrast(rgba("#000"), rgba("#fff")) == pytest.approx(21)
    assert contrast(rgba("#777"), rgba("#fff")) == pytest.approx(4.48, abs=0.01)
    dark = theme("dark")
    assert rgba(resolve("var(--jp-layout-color0)", dark))[:3] == (17, 17, 17)
    # the bug of issue 11: the old excerpt, the page's white text on pale pink, in the dark theme
    assert themed_contrast("var(--jp-content-font-color1)", "#fdf2f2", dark) < 1.2


def test_verdict_badges_read_in_every_theme():
    for verdict, (bg, fg, meaning) in panels.VERDICTS.items():
        assert contrast(rgba(fg), rgba(bg)) >= 4.5, (verdict, bg, fg)
        html = panels.verdict_badge(verdict)
        assert f"background:{bg};color:{fg}" in html and verdict in html and meaning


@pytest.mark.parametrize("name", ["light", "dark"])
def test_text_reads_on_its_background_in_both_jupyterlab_themes(name):
    v = theme(name)
    err = CompileError("expected ';'", line=2, source="int a = 1\nint b = 2\n", column=9)
    excerpt = re.search(r'<pre style="([^"]*)">', err._repr_html_()).group(1)
    style = dict(part.split(":", 1) for part in excerpt.split(";") if ":" in part)
    assert "var(--jp-" in style["background"] and "var(--jp-" in style["color"], style
    assert style["white-space"] == "pre", style            # no wrapping inside the C line
    pairs = {   # (text, background) as the CSS of each part sets them
        "error excerpt": (style["color"], style["background"]),
        "table text": ("var(--jp-ui-font-color1)", "var(--jp-layout-color0)"),
        "table caption and rate": ("var(--jp-ui-font-color2)", "var(--jp-layout-color0)"),
        "table head": ("var(--jp-ui-font-color1)", "var(--jp-layout-color2)"),
        "diagram text": ("var(--jp-ui-font-color1)", "var(--jp-layout-color2)"),
        "diagram small text": ("var(--jp-content-font-color1)", "var(--jp-layout-color2)"),
        "diagram native badge": ("#ffffff", "var(--jp-brand-color0)"),
        "diagram generic badge": ("#111111", "var(--jp-warn-color1)"),
        "diagram badge of the lab's own program": ("var(--jp-ui-font-color1)", "var(--jp-layout-color3)"),
        "listing": ("var(--jp-mirror-editor-variable-color)", "var(--jp-cell-editor-background)"),
        "listing, marked line": ("var(--jp-mirror-editor-variable-color)", "rgba(255,152,0,.28)"),
    }
    # the diagram's and the listing's CSS really use these variables
    from xdplab.show import CSS as SHOW_CSS
    assert ".s{font-size:10px;fill:var(--jp-content-font-color1" in diagram_module.CSS
    assert ".native{fill:var(--jp-brand-color0" in diagram_module.CSS
    assert "text.on{fill:#ffffff" in diagram_module.CSS and ".helper{fill:var(--jp-layout-color3" in \
        diagram_module.CSS
    assert ".mark{display:inline-block;min-width:100%;background:rgba(255,152,0,.28)}" in SHOW_CSS
    assert ".xdplab-w .cap{color:var(--jp-ui-font-color2" in widgets.CSS
    low = {what: round(themed_contrast(fg, bg, v), 2) for what, (fg, bg) in pairs.items()
           if themed_contrast(fg, bg, v) < 4.5}
    assert not low, f"JupyterLab {name}: contrast below 4.5: {low}"


def test_the_diagram_keeps_its_size_so_no_text_is_below_10_px(pair):
    d = pair.diagram()
    root = ET.fromstring(d.svg)
    style = root.get("style")
    assert "max-width:none" in style, style       # JupyterLab would scale it to the output's width
    assert float(root.get("width")) == float(root.get("viewBox").split()[2])   # 1 unit = 1 px
    sizes = [float(x) for x in re.findall(r"font-size:([\d.]+)px", d.svg)]
    assert sizes and min(sizes) >= diagram_module.MIN_FONT == 10, sorted(set(sizes))
    assert 'style="overflow-x:auto"' in d._repr_html_()      # wider than the output: it scrolls
