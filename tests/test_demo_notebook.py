"""The demo notebook under "Run All" and in everyday use: after the whole notebook has run, the lab
is still open (no cell closes it), %%xdp works there, and the check cell — run again after other
traffic reached the server, as a learner playing with the lab would — still passes, because it
measures only its own packets."""
from pathlib import Path

from notebook_session import NotebookSession

DEMO = Path(__file__).resolve().parent.parent / "notebooks" / "demo_live_widgets.ipynb"


def test_check_cell_measures_its_own_traffic_and_the_lab_stays_open():
    with NotebookSession(DEMO) as nb:
        check = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "assert" in c.source)
        # after Run All: the lab is open, the stream ran its 10 seconds, the table still reads the map
        out = nb.run("print(lab.closed, stream.running, counters.snapshot()['XDP_PASS'].packets)")
        closed, running, packets = out.split()
        assert (closed, running) == ("False", "False") and int(packets) >= 500, out
        # traffic that is not the check's: packets sent by hand, a ping and a short stream
        nb.run("lab.client.send(packet, count=37)\n"
               "lab.client.ping(lab.server, count=3, interval=0.05)\n"
               "lab.client.stream(packet, seconds=0.5, rate=200).wait()")
        assert "the program counted 500 (50000 bytes)" in nb.again(check)   # the proof again holds
        # %%xdp works in the demo (the extension is loaded): a compile error is short, in cell lines
        out = nb.run("%%xdp server --no-attach --name broken\n"
                     "int xdp_prog(struct xdp_md *ctx) {\n"
                     "    return XDP_PASS\n}", raises=True)
        assert "CompileError: cell line 3:" in out and "UsageError" not in out and "Traceback" not in out
