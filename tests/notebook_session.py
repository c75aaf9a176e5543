"""A notebook run as "Run All" runs it, whose kernel then stays up for more: the cells a learner
would run next (a panel's send, more traffic), and proof cells run again, which must still pass
because each proof measures its own traffic.

    with NotebookSession(ROOT / "notebooks" / "02-maps.ipynb") as nb:
        nb.run("panel = xdplab.TrafficPanel(lab, counts); panel.send()")
        for i in nb.section("## Prove it", "## Try this"):
            nb.again(i)

Every cell that raises fails the test with nbclient's CellExecutionError (naming the cell). On
leaving, the kernel shuts down, and nothing of its labs may be left (its atexit hook or each lab's
watchdog removes them).
"""
import nbformat
from nbclient import NotebookClient

from test_notebooks import CELL_TIMEOUT, KERNEL, assert_nothing_left, lab_namespaces


def text(cell):
    """What a cell printed and returned, as text."""
    return "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "")
                   for o in cell.outputs)


class NotebookSession:
    def __init__(self, path, timeout=CELL_TIMEOUT):
        self.path = path
        self.nb = nbformat.read(path, as_version=4)
        self.cells = self.nb.cells
        self.client = NotebookClient(self.nb, timeout=timeout, kernel_name=KERNEL,
                                     resources={"metadata": {"path": str(path.parent)}})

    def __enter__(self):
        self._before = set(lab_namespaces(None))
        self._kernel = self.client.setup_kernel()
        self._kernel.__enter__()
        try:
            self.pid = self.client.km.provisioner.pid
            for i, cell in enumerate(list(self.cells)):
                self.client.execute_cell(cell, i)
        except BaseException:
            self._kernel.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        self._kernel.__exit__(*exc)
        if exc[0] is None:
            assert_nothing_left([self.pid], self._before, self.path.name)

    def index(self, which):
        """A cell's index from its index or its id."""
        if isinstance(which, int):
            return which
        ids = [c.get("id") for c in self.cells]
        assert which in ids, f"{self.path.name} has no cell {which!r}"
        return ids.index(which)

    def section(self, start, end):
        """Indices of the code cells from the markdown cell starting with (or, with a "#",
        holding) `start` to the next one starting with `end`."""
        def opens(c, heading):
            return c.source.startswith(heading) or f"\n{heading}" in c.source
        first = next(i for i, c in enumerate(self.cells) if opens(c, start))
        last = next(i for i, c in enumerate(self.cells) if i > first and opens(c, end))
        return [i for i in range(first, last) if self.cells[i].cell_type == "code"]

    def again(self, which):
        """Run one of the notebook's cells again (by index or id); its text output."""
        i = self.index(which)
        self.cells[i].outputs = []
        self.client.execute_cell(self.cells[i], i)
        return text(self.cells[i])

    def run(self, source, raises=False):
        """Run `source` as a new cell at the end; its text output. `raises`: the cell is
        expected to fail (its outputs are kept instead of raising)."""
        cell = nbformat.v4.new_code_cell(source)
        if raises:
            cell.metadata["tags"] = ["raises-exception"]
        self.cells.append(cell)
        self.client.execute_cell(cell, len(self.cells) - 1)
        return text(cell)
