"""The demo lesson in a real browser: JupyterLab from .venv, Debian's chromium driven by Playwright.

JupyterLab, started as `make lab` starts it, serves a temporary copy of the course (notebooks/ and
labs/, so no output is saved into the repo) on 127.0.0.1 with a random token. The browser opens
the demo notebook, runs all its cells from the Run menu, and reads the map's live table from the
page: XDP_PASS counts packets, and the count grows
while the background traffic flows. Screenshots go to tests/artifacts/ (light and dark theme);
the light one of the live widgets is also the README's docs/screenshot-live-widgets.png, written
when that file is missing or XDPLAB_SCREENSHOT=1 (so a test run does not change the repo).
A learner's way to a lab is tested too: from the welcome page JupyterLab opens on, through the
file browser into labs/, the lab notebook's %%xdp and check cells run, and the check's verdict on
the starter program is read from the page. And lesson 10 runs under Run All, its background stream
shown whole in its live table after the last cell. Afterwards JupyterLab is shut down and nothing
of the kernels' labs is left.
"""
import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from test_notebooks import assert_nothing_left, lab_namespaces

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = "notebooks/demo_live_widgets.ipynb"
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "tests" / "artifacts"
README_SHOT = ROOT / "docs" / "screenshot-live-widgets.png"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 960}
# JupyterLab's own settings for the run: the theme of the screenshots. (No news and no update
# checks is the course's own default, env/jupyterlab-overrides.json, which the tests rely on.)
SETTINGS = {
    "@jupyterlab/apputils-extension/themes.jupyterlab-settings": {"theme": "JupyterLab Light"},
}

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"no {CHROMIUM} (Debian's chromium package; env/install.sh "
                                       "installs it on Debian, Ubuntu has it only as a snap)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(server, path, method="GET"):
    req = urllib.request.Request(f"{server['url']}{path}", method=method,
                                 headers={"Authorization": f"token {server['token']}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        body = r.read()
    return json.loads(body) if body else None


def kernel_pids(runtime_dir):
    """pids of the kernels of a JupyterLab whose runtime dir is `runtime_dir` (each kernel's argv
    names its connection file there)."""
    pids = set()
    for entry in os.listdir("/proc"):
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if entry.isdigit() and any(a.startswith(str(runtime_dir).encode() + b"/") for a in argv):
            pids.add(int(entry))
    return pids


def stop(server):
    """Shut JupyterLab down (which shuts its kernels down); returns the pids its kernels had."""
    proc = server["proc"]
    if proc.poll() is None:
        try:
            server["kernel_pids"] |= kernel_pids(server["runtime"])
            api(server, "/api/shutdown", method="POST")
            proc.wait(timeout=30)
        except Exception:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return server["kernel_pids"]


@pytest.fixture
def jupyterlab(tmp_path):
    """JupyterLab as `make lab` starts it (env/lab.sh), on a scratch copy of the course."""
    root = tmp_path / "course"
    for part in ("notebooks", "labs"):
        shutil.copytree(ROOT / part, root / part)
    settings = tmp_path / "settings"
    for name, value in SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(value))
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(settings),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               XDPLAB_ROOT=str(root), XDPLAB_TOKEN=token)
    log_path = tmp_path / "jupyterlab.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(["bash", str(ROOT / "env" / "lab.sh"), "127.0.0.1", str(port)],
                                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    server = {"url": f"http://127.0.0.1:{port}", "token": token, "proc": proc, "log": log_path,
              "runtime": tmp_path / "runtime", "kernel_pids": set()}
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"JupyterLab exited: {log_path.read_text()[-2000:]}"
            try:
                api(server, "/api/status")
                break
            except OSError:
                assert time.monotonic() < deadline, "JupyterLab did not answer within 60 s"
                time.sleep(0.2)
        yield server
    finally:
        stop(server)


def map_row(page, key, column="packets"):
    """The number in `column` of the live map table's row whose key reads `key` (None if the
    table or the row is not there yet)."""
    table = page.locator(".jp-OutputArea-output .jupyter-widgets table").filter(
        has=page.locator("td", has_text=re.compile(rf"^\s*{key}\s*$"))).first
    if table.count() == 0:
        return None
    return table.evaluate("""(t, [key, column]) => {
        const heads = [...t.querySelectorAll("th")].map(th => th.innerText.trim());
        const row = [...t.querySelectorAll("tr")].find(
            tr => tr.cells.length && tr.cells[0].innerText.trim() === key);
        const i = heads.indexOf(column);
        if (!row || i < 0) return null;
        const text = row.cells[i].innerText.replace(/[^0-9]/g, "");
        return text === "" ? null : Number(text);
    }""", [key, column])


def wait_for(predicate, timeout, what, step=0.25):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, \
            f"timed out after {timeout} s waiting for {what() if callable(what) else what}"
        time.sleep(step)


def shoot(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    return path


@contextlib.contextmanager
def browsing(server, notebook, failure, viewport=VIEWPORT):
    """A page of Debian's chromium for JupyterLab `server`. On leaving, JupyterLab is shut down
    and nothing of the labs of `notebook` may be left; when the test fails the page is saved as
    screenshot `failure` first."""
    from playwright.sync_api import sync_playwright
    before = set(lab_namespaces(None))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=viewport)
        try:
            yield page
        except BaseException:
            shoot(page, failure)                 # what the page showed when the test failed
            raise
        finally:
            browser.close()
    pids = stop(server)
    assert pids, f"found no kernel process of {notebook}"
    assert_nothing_left(pids, before, notebook)


def kernel_idle(page, server):
    """The status bar's "Idle" of the notebook's xdplab kernel, once it has started (its process
    is recorded, so that the test can prove it gone)."""
    idle = page.locator(".jp-StatusBar-Widget").get_by_text("Python (xdplab) | Idle")
    idle.wait_for(timeout=60_000)
    server["kernel_pids"] |= kernel_pids(server["runtime"])
    return idle


def test_demo_notebook_live_in_chromium(jupyterlab):
    url = f"{jupyterlab['url']}/lab/tree/{NOTEBOOK}?token={jupyterlab['token']}"
    with browsing(jupyterlab, NOTEBOOK, "failure.png") as page:

        def menu(*path):
            """Click through JupyterLab's menu bar: menu("Run", "Run All Cells")."""
            page.locator(".lm-MenuBar-itemLabel").filter(has_text=re.compile(f"^{path[0]}$")).click()
            for label in path[1:]:
                page.locator(".lm-Menu-itemLabel").filter(has_text=re.compile(f"^{label}$")).click()
        page.goto(url)
        page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=60_000)
        idle = kernel_idle(page, jupyterlab)   # the xdplab kernel has started
        page.keyboard.press("Control+b")                # fold the file browser away: more room
        menu("Run", "Run All Cells")

        first = wait_for(lambda: map_row(page, "XDP_PASS"), 90,
                         "the live map to show XDP_PASS packets")
        # the lesson's live part at the top of the window: heading, table, chart
        page.locator(".jp-MarkdownCell").filter(has_text="The map, live").first.evaluate(
            "cell => cell.scrollIntoView({block: 'start'})")
        time.sleep(3)
        second = map_row(page, "XDP_PASS")
        assert second > first, f"the live table did not change: {first} then {second}"
        shot = shoot(page, "live-widgets-light.png")
        if not README_SHOT.exists() or os.environ.get("XDPLAB_SCREENSHOT") == "1":
            README_SHOT.parent.mkdir(exist_ok=True)
            shutil.copyfile(shot, README_SHOT)
        menu("Settings", "Theme", "JupyterLab Dark")
        page.locator("body[data-jp-theme-light='false']").wait_for(state="attached", timeout=10_000)
        time.sleep(1)
        shoot(page, "live-widgets-dark.png")

        # The rest of the lesson: the check cell runs without error.
        done = page.get_by_text(re.compile(r"^sent \d+ packets, the program counted \d+"))
        done.wait_for(timeout=90_000)
        idle.wait_for(timeout=60_000)
        errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        assert errors.count() == 0, "\n".join(errors.all_inner_texts())
        numbers = re.search(r"sent (\d+) packets, the program counted (\d+) .*the stream before "
                            r"them: (\d+)", done.inner_text())
        assert numbers, done.inner_text()
        sent, counted, streamed = map(int, numbers.groups())
        assert sent == counted > 0
        # the live table, still refreshing after Run All, shows the stream's packets and the
        # check's (and the few the lab's own start-up chatter made), never fewer
        shown = wait_for(lambda: (map_row(page, "XDP_PASS") or 0) >= streamed + counted and
                         map_row(page, "XDP_PASS"), 10, "the live table to show every packet")
        assert shown <= streamed + counted + 50, f"the table shows {shown} for {streamed} + {counted}"
        shoot(page, "lesson-done-dark.png")


LESSON10 = "notebooks/10-driver-support.ipynb"
STREAMED = re.compile(r"the stream sent ([\d,]+) frames in 5 s; drop_port_9 ran on ([\d,]+) of them "
                      r"and on ([\d,]+) in all")


def test_run_all_of_lesson_10_shows_the_whole_background_stream(jupyterlab):
    """Lesson 10 under Run All, as a learner starts it from the Run menu: no cell closes the lab,
    so the "Watch it" stream runs its five seconds while the later cells run, and its live table
    keeps refreshing. Once the kernel is idle the page says how many frames the stream sent and
    how many drop_port_9 has run on in all, and the table of Watch it shows that total: the whole
    run, not the first second of it."""
    url = f"{jupyterlab['url']}/lab/tree/{LESSON10}?token={jupyterlab['token']}"
    with browsing(jupyterlab, LESSON10, "failure-lesson10.png") as page:
        page.goto(url)
        page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=60_000)
        idle = kernel_idle(page, jupyterlab)   # the xdplab kernel has started
        page.locator(".lm-MenuBar-itemLabel").filter(has_text=re.compile("^Run$")).click()
        page.locator(".lm-Menu-itemLabel").filter(has_text=re.compile("^Run All Cells$")).click()
        watch = page.locator(".jp-CodeCell").filter(has_text="stream = client.stream(").first
        table = watch.locator(".jp-OutputArea-output .jupyter-widgets table")
        table.wait_for(timeout=300_000)                 # Watch it has run: the stream is on
        done = page.get_by_text(STREAMED)
        done.wait_for(timeout=300_000)                  # the stream's proof cell has run
        idle.wait_for(timeout=120_000)                  # and so has every other cell
        errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        assert errors.count() == 0, "\n".join(errors.all_inner_texts())
        sent, ran, total = (int(x.replace(",", "")) for x in STREAMED.search(done.inner_text()).groups())
        # at 1,000 frames a second at most (ticks of 100), more than 1,500 means it ran well past
        # its first second: a lab closed by Run All stopped it there
        assert sent > 1500, f"the stream sent only {sent} frames in its 5 s: it was stopped early"
        assert ran == sent, f"drop_port_9 ran on {ran} of the {sent} frames the stream sent"

        def row_1():
            """The value in row 1 (drop_port_9's counter) of the Watch it table."""
            return table.evaluate("""t => {
                const heads = [...t.querySelectorAll("th")].map(th => th.innerText.trim());
                const row = [...t.querySelectorAll("tr")].find(
                    tr => tr.cells.length && tr.cells[0].innerText.trim() === "1");
                const i = heads.indexOf("value");
                return row && i >= 0 ? Number(row.cells[i].innerText.replace(/[^0-9]/g, "")) : null;
            }""")
        # the table refreshes twice a second by itself: it shows the total, or soon does. The
        # learner scrolls back up to look at it (JupyterLab may skip rendering cells out of view);
        # on a busy machine a refresh can wait a while for the CPU, hence the minute
        watch.evaluate("cell => cell.scrollIntoView({block: 'start'})")
        seen = []
        shown = wait_for(lambda: seen.append(row_1()) or (seen[-1] == total and total), 60,
                         lambda: f"the Watch it table to show drop_port_9's {total} frames (it "
                                 f"showed {seen[-1]}; the cell's end: {watch.inner_text()[-300:]!r})")
        assert shown - sent == total - ran >= 0, (shown, sent, total)   # the chain's earlier frames
        shoot(page, "lesson10-run-all.png")


def test_a_lab_opened_from_the_file_browser_runs_its_check(jupyterlab):
    with browsing(jupyterlab, "labs/03a-drop-by-port/lab.ipynb", "failure-lab.png") as page:
        # the address `make lab` prints, as a learner would open it
        printed = re.search(r"xdplab: open (http://\S+)", jupyterlab["log"].read_text()).group(1)
        assert printed.startswith(jupyterlab["url"]), printed
        page.goto(printed)
        # JupyterLab opens on the welcome lesson, whose course table links every lab
        page.locator(".jp-NotebookPanel .jp-MarkdownCell").filter(
            has_text="The course").first.wait_for(timeout=60_000)
        # and no toast asks about "official Jupyter news" over it (env/jupyterlab-overrides.json)
        page.wait_for_timeout(2000)
        assert not page.get_by_text(re.compile("Jupyter news", re.I)).count(), \
            "JupyterLab's news toast covers the lesson"
        # the file browser shows notebooks/, where the welcome lesson is: up to the course root
        page.locator(".jp-BreadCrumbs-home").first.click()
        listing = page.locator(".jp-DirListing-content")
        for name in ("labs", "03a-drop-by-port", "lab.ipynb"):
            item = listing.locator(".jp-DirListing-itemText").filter(
                has_text=re.compile(f"^{re.escape(name)}$"))
            item.wait_for(timeout=30_000)
            if name == "lab.ipynb":
                # the lab folder shows what the learner works with, not the answers (env/lab.sh)
                shown = set(listing.locator(".jp-DirListing-itemText").all_inner_texts())
                assert {"lab.ipynb", "starter.c"} <= shown, shown
                assert not shown & {"solution.c", "check.py", "wrong", "__pycache__"}, shown
            item.dblclick()
        panel = page.locator(".jp-NotebookPanel:visible")
        panel.locator(".jp-Cell").filter(has_text="%%xdp server").first.wait_for(timeout=60_000)
        idle = kernel_idle(page, jupyterlab)   # the xdplab kernel has started
        for source in ("lab = xdplab.Lab.pair()", "%%xdp server", "check()"):
            cell = panel.locator(".jp-CodeCell").filter(has_text=source).first
            cell.locator(".jp-InputArea-editor").click()
            page.keyboard.press("Control+Enter")     # run this cell, stay on it
            idle.wait_for(timeout=120_000)
        report = panel.locator(".jp-OutputArea-output").filter(
            has_text=re.compile(r"lab 03a-drop-by-port .*: \d+ of \d+ cases pass"))
        report.wait_for(timeout=120_000)
        text = report.inner_text()
        good, total = map(int, re.search(r"(\d+) of (\d+) cases pass", text).groups())
        assert good < total, f"the starter program passed the check:\n{text}"
        assert "Hint" in text or "hint" in text, f"a failed check shows no hint:\n{text}"
        shoot(page, "lab-check-in-browser.png")
