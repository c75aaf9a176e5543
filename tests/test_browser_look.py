"""How a lesson looks in a real browser: lesson 02 in JupyterLab Dark on a 1024x768 screen.

JupyterLab and Chromium as tests/test_browser.py starts them (its fixture and helpers, imported),
with the dark theme set in JupyterLab's settings before it starts. The browser opens a copy of
lesson 02 with one cell added at the end, a newcomer's compile error (a missing ';'), runs all
cells from the Run menu, and reads from the page, as the browser computed it:

- the error's source-line excerpt: the contrast ratio of its text colour on its background
  (the background composited over the page when it is translucent) is at least 4.5 (WCAG AA);
- the lab diagram: every SVG text renders at 10 px or more (its font size times the scale the
  SVG is drawn at);
- the code listings (xdplab.show): no line wraps, so none wraps inside an identifier; a line
  longer than the output scrolls sideways.

Each measurement is checked against the look issue 11 found (pale pink behind white text, an SVG
scaled to the output's width, JupyterLab's wrapping <pre>): applied in the page, it fails, so the
test cannot pass on a page that looks wrong. Screenshots go to tests/artifacts/. The file browser
stays open, as JupyterLab opens, which leaves the notebook about 700 px.

The lessons' figures (notebooks/img/*.svg, images in their markdown) at the same size, light
theme: JupyterLab scales an image down to the notebook's width (565 px here), so each figure's
smallest text, its font-size in the SVG's own units times the drawn width over the viewBox's
width, must come to 10 px or more. Every figure in notebooks/img is shown by a lesson and measured.
"""
import re
import time
from pathlib import Path

import nbformat
import pytest

import test_browser
from test_browser import ROOT, browsing, jupyterlab, kernel_idle, shoot  # noqa: F401
from test_diagram_panels import contrast, rgba

pytestmark = test_browser.pytestmark
VIEWPORT = {"width": 1024, "height": 768}
LESSON = ROOT / "notebooks" / "02-maps.ipynb"
COPY = "notebooks/02-maps-look.ipynb"
MISTAKE = '''lab.load("""int xdp_prog(struct xdp_md *ctx)
{
        int verdict_for_this_packet_of_the_lesson = XDP_PASS
        return verdict_for_this_packet_of_the_lesson;
}""")'''
DARK = {"@jupyterlab/apputils-extension/themes.jupyterlab-settings": {"theme": "JupyterLab Dark"}}

# -- measured in the page ----------------------------------------------------------------------------
# The colours of `el` and of what is behind it: its own background, then each ancestor's up to
# the first opaque one (a translucent background is composited over those).
COLOURS = """el => {
    const fg = getComputedStyle(el).color, backs = [];
    for (let e = el; e; e = e.parentElement) {
        const bg = getComputedStyle(e).backgroundColor;
        if (bg && bg !== "transparent" && !/rgba\\(.*,\\s*0\\)$/.test(bg)) {
            backs.push(bg);
            if (!bg.startsWith("rgba")) break;
        }
    }
    return {fg, backs};
}"""

# Rendered font size of every text of an SVG: computed font-size times the SVG's scale.
SVG_FONTS = """svg => {
    const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
    return {scale, sizes: [...svg.querySelectorAll("text")].map(
        t => [t.textContent, parseFloat(getComputedStyle(t).fontSize) * scale])};
}"""

# Lines of a <pre> as written and as drawn: the line boxes of its text (tops more than half a line
# apart), so a wrapped line counts twice.
PRE_LINES = """pre => {
    const written = pre.textContent.replace(/\\n$/, "").split("\\n").length;
    const walker = document.createTreeWalker(pre, NodeFilter.SHOW_TEXT);
    const tops = [];
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        const r = document.createRange();
        r.selectNodeContents(n);
        for (const rect of r.getClientRects()) if (rect.width > 0) tops.push(rect.top);
    }
    tops.sort((a, b) => a - b);
    const line = parseFloat(getComputedStyle(pre).lineHeight) || 16;
    let drawn = tops.length ? 1 : 0;
    for (let i = 1; i < tops.length; i++) if (tops[i] - tops[i - 1] > line / 2) drawn++;
    return {written, drawn, whiteSpace: getComputedStyle(pre).whiteSpace,
            scrolls: pre.scrollWidth > pre.clientWidth, width: pre.clientWidth};
}"""


def composite(colours):
    """The text's contrast ratio on what is drawn behind it."""
    backs = [rgba(b) for b in colours["backs"]]
    bg = backs[-1] if backs and backs[-1][3] == 1 else (0, 0, 0, 1.0)
    for b in reversed(backs[:-1] if backs and backs[-1][3] == 1 else backs):
        bg = tuple(b[i] * b[3] + bg[i] * (1 - b[3]) for i in range(3)) + (1.0,)
    fg = rgba(colours["fg"])
    fg = tuple(fg[i] * fg[3] + bg[i] * (1 - fg[3]) for i in range(3)) + (1.0,)
    return contrast(fg, bg)


def into_view(locator):
    locator.scroll_into_view_if_needed()
    time.sleep(0.3)                  # JupyterLab lays out cells that come into view


@pytest.fixture
def dark_jupyterlab(monkeypatch, tmp_path, request):
    """test_browser's JupyterLab, started with the dark theme, serving a copy of lesson 02 with
    the mistake as its last cell."""
    monkeypatch.setattr(test_browser, "SETTINGS", DARK)
    server = request.getfixturevalue("jupyterlab")
    nb = nbformat.read(LESSON, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(MISTAKE))
    nbformat.write(nb, tmp_path / "course" / COPY)
    return server


def test_lesson_02_reads_well_in_jupyterlab_dark_at_1024x768(dark_jupyterlab):
    server = dark_jupyterlab
    url = f"{server['url']}/lab/tree/{COPY}?token={server['token']}"
    with browsing(server, COPY, "failure-look.png", viewport=VIEWPORT) as page:
        page.goto(url)
        page.locator("body[data-jp-theme-light='false']").wait_for(state="attached",
                                                                   timeout=60_000)
        panel = page.locator(".jp-NotebookPanel:visible")
        panel.locator(".jp-Cell").first.wait_for(timeout=60_000)
        idle = kernel_idle(page, server)   # the xdplab kernel has started
        page.locator(".lm-MenuBar-itemLabel").filter(has_text=re.compile("^Run$")).click()
        page.locator(".lm-Menu-itemLabel").filter(has_text=re.compile("^Run All Cells$")).click()

        # Run All stops at the mistake, the last cell: the lesson above it ran
        error = panel.locator(".jp-OutputArea-output").filter(has_text="CompileError").last
        error.wait_for(timeout=240_000)
        idle.wait_for(timeout=60_000)
        assert "expected ';'" in error.inner_text()
        stderr = panel.locator(".jp-OutputArea-output[data-mime-type="
                               "'application/vnd.jupyter.stderr']")
        assert stderr.count() == 0, "\n".join(stderr.all_inner_texts())

        # 1. the error's source-line excerpt
        excerpt = error.locator("pre").filter(has_text="verdict_for_this_packet_of_the_lesson").first
        into_view(excerpt)
        shoot(page, "look-dark-1024-error.png")
        colours = excerpt.evaluate(COLOURS)
        ratio = composite(colours)
        assert ratio >= 4.5, f"the error excerpt's contrast is {ratio:.2f}: {colours}"
        lines = excerpt.evaluate(PRE_LINES)
        assert lines["whiteSpace"] == "pre" and lines["drawn"] == lines["written"], lines
        old = excerpt.evaluate("""pre => { const s = pre.getAttribute("style");
            pre.style.background = "#fdf2f2"; return s; }""")
        assert composite(excerpt.evaluate(COLOURS)) < 1.5      # the look issue 11 found fails
        excerpt.evaluate("(pre, s) => pre.setAttribute('style', s)", old)
        title = error.locator("b").filter(has_text="CompileError").first
        ratio = composite(title.evaluate(COLOURS))
        assert ratio >= 4.5, f"the error title's contrast is {ratio:.2f}"

        # 2. the lab diagram
        svg = panel.locator("svg.xdplab-diagram").first
        into_view(svg)
        shoot(page, "look-dark-1024-diagram.png")
        fonts = svg.evaluate(SVG_FONTS)
        small = [(t, round(px, 1)) for t, px in fonts["sizes"] if px < 10 - 1e-6]
        assert fonts["sizes"] and not small, f"SVG text below 10 px (scale {fonts['scale']:.2f}): {small}"
        squeezed = svg.evaluate("""svg => { svg.style.maxWidth = "100%";
            const w = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
            svg.style.maxWidth = "none"; return w; }""")
        assert squeezed < 0.95, ("the diagram fits this output even when scaled to its width, "
                                 f"so the test proves nothing (scale {squeezed:.2f})")
        wrapper = svg.evaluate("svg => [svg.parentElement.scrollWidth, svg.parentElement.clientWidth,"
                               " getComputedStyle(svg.parentElement).overflowX]")
        assert wrapper[2] == "auto" and wrapper[0] > wrapper[1], wrapper     # it scrolls

        # 3. the code listings: every line drawn on one line
        listings = panel.locator(".xdplab-src pre")
        assert listings.count() >= 3
        long_lines = 0
        for i in range(listings.count()):
            pre = listings.nth(i)
            into_view(pre)
            got = pre.evaluate(PRE_LINES)
            assert got["whiteSpace"] == "pre" and got["drawn"] == got["written"], (i, got)
            long_lines += got["scrolls"]
        assert long_lines, "no listing is wider than the output: nothing was proven at this size"
        first = listings.first
        into_view(first)
        shoot(page, "look-dark-1024-listing.png")
        wrapped = first.evaluate("""pre => { pre.style.whiteSpace = "pre-wrap";
            pre.style.wordBreak = "break-all"; return pre; }""")
        assert wrapped is not None
        got = first.evaluate(PRE_LINES)
        assert got["drawn"] > got["written"], ("JupyterLab's wrapping, applied, is not seen", got)


# -- the lessons' figures ------------------------------------------------------------------------------
FIGURES = ROOT / "notebooks" / "img"
FIGURE_REF = re.compile(r"\]\((img/[^)\s]+\.svg)\)|src=\"(img/[^\"]+\.svg)\"")

# The font sizes of an SVG's texts in its own user units, as its own stylesheet gives them (the
# figure opened by itself, so no other figure's <style> applies), and its viewBox.
SVG_OWN_FONTS = """() => {
    const svg = document.documentElement, vb = svg.viewBox.baseVal;
    return {width: vb.width, height: vb.height, sizes: [...svg.querySelectorAll("text, tspan")]
        .filter(t => t.textContent.trim())
        .map(t => [t.textContent.trim(), parseFloat(getComputedStyle(t).fontSize)])};
}"""


def lessons_with_figures():
    """{lesson path: [img/… .svg it shows, in order]} from the lessons' markdown."""
    found = {}
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        refs = [a or b for cell in nb.cells if cell.cell_type == "markdown"
                for a, b in FIGURE_REF.findall(cell.source)]
        if refs:
            found[f"notebooks/{path.name}"] = refs
    return found


def test_lesson_figures_text_reads_at_1024x768(jupyterlab):
    """Every lesson figure (notebooks/img/*.svg, shown by the lessons' markdown as an image) as
    JupyterLab draws it at 1024x768 with the file browser open: an <img> is scaled down to the
    notebook's width, so a text of font-size f (the SVG's user units) renders at
    f * rendered width / viewBox width. The smallest text of each figure renders at 10 px or
    more."""
    server = jupyterlab
    lessons = lessons_with_figures()
    shown = {ref for refs in lessons.values() for ref in refs}
    on_disk = {f"img/{p.name}" for p in FIGURES.glob("*.svg")}
    assert shown == on_disk, f"figures not shown by a lesson: {on_disk - shown}; " \
                             f"shown but missing: {shown - on_disk}"
    measured, small = {}, []
    with browsing(server, "the lessons with figures", "failure-figures.png",
                  viewport=VIEWPORT) as page:
        own = page.context.browser.new_page()      # figures opened by themselves
        for lesson, refs in lessons.items():
            page.goto(f"{server['url']}/lab/tree/{lesson}?token={server['token']}")
            panel = page.locator(".jp-NotebookPanel:visible")
            panel.locator(".jp-Cell").first.wait_for(timeout=60_000)
            kernel_idle(page, server)        # its kernel has started (and is recorded)
            images = panel.locator(".jp-RenderedMarkdown img")
            for ref in refs:        # this lesson's panel, its markdown rendered (not the last one's)
                images.and_(page.locator(f"img[src*='/notebooks/{ref}?']")).first.wait_for(
                    state="attached", timeout=30_000)
            srcs = images.evaluate_all("imgs => imgs.map(i => i.getAttribute('src'))")
            # JupyterLab resolves img/x.svg to the server's /files/notebooks/img/x.svg?_xsrf=…
            served = [re.search(r"/files/notebooks/(img/[^?#]+\.svg)", s) for s in srcs]
            figures = [i for i, m in enumerate(served) if m]
            assert [served[i].group(1) for i in figures] == refs, (lesson, srcs)
            for i, ref in zip(figures, refs):
                img = images.nth(i)
                into_view(img)
                page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                                       arg=img.element_handle(), timeout=30_000)
                box = img.evaluate("img => { const r = img.getBoundingClientRect();"
                                   " return {width: r.width, height: r.height, src: img.src}; }")
                shoot(page, f"figure-1024-{Path(ref).stem}.png")
                own.goto(f"{box['src']}&token={server['token']}")
                svg = own.evaluate(SVG_OWN_FONTS)
                assert svg["sizes"], f"{ref}: no text found in the figure"
                # the image keeps the viewBox's aspect ratio: the smaller of the two scales
                scale = min(box["width"] / svg["width"], box["height"] / svg["height"])
                text, size = min(svg["sizes"], key=lambda s: s[1])
                measured[ref] = (round(size * scale, 1), round(box["width"]), svg["width"], size)
                if size * scale < 10 - 1e-6:
                    small.append(f"{ref} in {lesson}: {size:g} units × {box['width']:.0f} px / "
                                 f"{svg['width']:g} = {size * scale:.1f} px ({text!r})")
            for session in test_browser.api(server, "/api/sessions"):   # one kernel at a time
                server["kernel_pids"] |= test_browser.kernel_pids(server["runtime"])
                test_browser.api(server, f"/api/sessions/{session['id']}", method="DELETE")
    print("\n".join(f"{ref}: smallest text {v[0]} px (font {v[3]:g} of viewBox {v[2]:g}, "
                    f"drawn {v[1]} px wide)" for ref, v in sorted(measured.items())))
    assert set(measured) == on_disk, f"not measured: {on_disk - set(measured)}"
    assert not small, "figure text below 10 px at 1024x768:\n" + "\n".join(small)
