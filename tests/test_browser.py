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
the starter program is read from the page. Afterwards JupyterLab is shut down and nothing of the
kernels' labs is left.
"""
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
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
# JupyterLab's own settings for the run: no news or update checks (no network, no toast over
# the notebook), and the theme of the screenshots.
SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        {"fetchNews": "false", "checkForUpdates": False},
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
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(step)


def shoot(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    return path


def test_demo_notebook_live_in_chromium(jupyterlab):
    from playwright.sync_api import sync_playwright

    before = set(lab_namespaces(None))
    url = f"{jupyterlab['url']}/lab/tree/{NOTEBOOK}?token={jupyterlab['token']}"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT)

        def menu(*path):
            """Click through JupyterLab's menu bar: menu("Run", "Run All Cells")."""
            page.locator(".lm-MenuBar-itemLabel").filter(has_text=re.compile(f"^{path[0]}$")).click()
            for label in path[1:]:
                page.locator(".lm-Menu-itemLabel").filter(has_text=re.compile(f"^{label}$")).click()
        try:
            page.goto(url)
            page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=60_000)
            idle = page.locator(".jp-StatusBar-Widget").get_by_text("Python (xdplab) | Idle")
            idle.wait_for(timeout=60_000)                   # the xdplab kernel has started
            jupyterlab["kernel_pids"] |= kernel_pids(jupyterlab["runtime"])
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

            # The rest of the lesson: the check cell and lab.close() run without error.
            done = page.get_by_text(re.compile(r"^sent \d+ packets, the program counted \d+"))
            done.wait_for(timeout=90_000)
            idle.wait_for(timeout=60_000)
            errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
            assert errors.count() == 0, "\n".join(errors.all_inner_texts())
            sent, counted = map(int, re.findall(r"\d+", done.inner_text())[:2])
            assert sent == counted > 0
            assert 0 < map_row(page, "XDP_PASS") <= counted, "the table shows more than was counted"
            shoot(page, "lesson-done-dark.png")
        except BaseException:
            shoot(page, "failure.png")       # what the page showed when the test failed
            raise
        finally:
            browser.close()

    pids = stop(jupyterlab)
    assert pids, "found no kernel process of the demo notebook"
    assert_nothing_left(pids, before, NOTEBOOK)


def test_a_lab_opened_from_the_file_browser_runs_its_check(jupyterlab):
    from playwright.sync_api import sync_playwright

    before = set(lab_namespaces(None))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        try:
            # the address `make lab` prints, as a learner would open it
            printed = re.search(r"xdplab: open (http://\S+)", jupyterlab["log"].read_text()).group(1)
            assert printed.startswith(jupyterlab["url"]), printed
            page.goto(printed)
            # JupyterLab opens on the welcome lesson, whose course table links every lab
            page.locator(".jp-NotebookPanel .jp-MarkdownCell").filter(
                has_text="The course").first.wait_for(timeout=60_000)
            # the file browser shows notebooks/, where the welcome lesson is: up to the course root
            page.locator(".jp-BreadCrumbs-home").first.click()
            listing = page.locator(".jp-DirListing-content")
            for name in ("labs", "01-drop-by-port", "lab.ipynb"):
                item = listing.locator(".jp-DirListing-itemText").filter(
                    has_text=re.compile(f"^{re.escape(name)}$"))
                item.wait_for(timeout=30_000)
                item.dblclick()
            panel = page.locator(".jp-NotebookPanel:visible")
            panel.locator(".jp-Cell").filter(has_text="%%xdp server").first.wait_for(timeout=60_000)
            idle = page.locator(".jp-StatusBar-Widget").get_by_text("Python (xdplab) | Idle")
            idle.wait_for(timeout=60_000)
            jupyterlab["kernel_pids"] |= kernel_pids(jupyterlab["runtime"])
            for source in ("lab = xdplab.Lab.pair()", "%%xdp server", "check()"):
                cell = panel.locator(".jp-CodeCell").filter(has_text=source).first
                cell.locator(".jp-InputArea-editor").click()
                page.keyboard.press("Control+Enter")     # run this cell, stay on it
                idle.wait_for(timeout=120_000)
            report = panel.locator(".jp-OutputArea-output").filter(
                has_text=re.compile(r"lab 01-drop-by-port .*: \d+ of \d+ cases pass"))
            report.wait_for(timeout=120_000)
            text = report.inner_text()
            good, total = map(int, re.search(r"(\d+) of (\d+) cases pass", text).groups())
            assert good < total, f"the starter program passed the check:\n{text}"
            assert "Hint" in text or "hint" in text, f"a failed check shows no hint:\n{text}"
            shoot(page, "lab-check-in-browser.png")
            cell = panel.locator(".jp-CodeCell").filter(has_text="lab.close()").first
            cell.locator(".jp-InputArea-editor").click()
            page.keyboard.press("Control+Enter")
            idle.wait_for(timeout=60_000)
        except BaseException:
            shoot(page, "failure-lab.png")
            raise
        finally:
            browser.close()
    pids = stop(jupyterlab)
    assert pids, "found no kernel process of the lab notebook"
    assert_nothing_left(pids, before, "labs/01-drop-by-port/lab.ipynb")
