"""Shared fixtures. Every test builds real labs on this kernel; the session ends by proving that
nothing of ours is left: no lab namespace, no veth or XDP program in the root namespace."""
import os
import subprocess
import tempfile

import pytest

import xdplab
from xdplab import reaper


def others():
    """Namespaces of labs owned by other live processes (another notebook, a second test run)."""
    names = set()
    for path in reaper.STATE_DIR.glob("*.json") if reaper.STATE_DIR.is_dir() else ():
        state = reaper.read_state(path)
        if state and state.get("pid") != os.getpid() and reaper.alive(state):
            names |= {n for n in os.listdir("/run/netns") if n.startswith(f"xl-{path.stem}-")}
            names.add(f"state {path.name}")
    return names


def leftovers():
    """Lab resources on the machine that no other live process owns: namespaces, state files,
    and veths or XDP programs in the root namespace."""
    found = []
    if os.path.isdir("/run/netns"):
        found += [n for n in os.listdir("/run/netns") if n.startswith(reaper.NS_PREFIX)]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    for line in links.splitlines():
        name = line.split(": ")[1].split("@")[0]
        if " xdp" in line:
            found.append(f"XDP on root interface {name}")
        if "veth" in subprocess.run(["ip", "-d", "-o", "link", "show", name],
                                    capture_output=True, text=True).stdout:
            found.append(f"root veth {name}")
    if reaper.STATE_DIR.is_dir():
        found += [f"state {p.name}" for p in reaper.STATE_DIR.glob("*.json")]
    return sorted(set(found) - others())


# A learner's lab progress lives in their home directory; tests (and the lab notebooks they run,
# which inherit the environment) record into a throwaway file instead.
_progress_dir = tempfile.TemporaryDirectory(prefix="xdplab-progress-")
os.environ["XDPLAB_PROGRESS"] = os.path.join(_progress_dir.name, "progress.json")


def machine_settings():
    """This machine's own IPv6 settings that labs set inside their hosts: they must never leak."""
    out = {}
    for key in ("all", "default"):
        for name in xdplab.topology._QUIET_IPV6:
            path = f"/proc/sys/net/ipv6/conf/{key}/{name}"
            out[path] = open(path).read().strip()
    return out


@pytest.fixture(scope="session", autouse=True)
def nothing_left_behind():
    if os.geteuid() != 0:
        pytest.exit("the tests need root: run 'sudo make test'", returncode=2)
    before = leftovers()
    assert not before, f"lab leftovers before the tests (run 'make clean'): {before}"
    settings = machine_settings()
    yield
    xdplab.topology._close_all()
    after = leftovers()
    assert not after, f"the tests left lab resources behind: {after}"
    changed = {k: (v, machine_settings()[k]) for k, v in settings.items() if machine_settings()[k] != v}
    assert not changed, f"the tests changed this machine's own settings: {changed}"


@pytest.fixture(scope="module")
def lab():
    """One lab for a whole test module (programs there need no topology of their own)."""
    with xdplab.Lab() as lab:
        yield lab


@pytest.fixture(scope="module")
def load(lab):
    """load(name, *cflags) → Program, compiled once per module."""
    cache = {}

    def load(name, *cflags):
        if (name, cflags) not in cache:
            cache[name, cflags] = lab.load(name, cflags=list(cflags))
        return cache[name, cflags]
    return load


@pytest.fixture
def pair():
    with xdplab.Lab.pair() as lab:
        yield lab


@pytest.fixture
def line():
    """client — router — server; the router forwards."""
    with xdplab.Lab.chain("client", "router", "server") as lab:
        yield lab


COUNT_ACTIONS = r"""
/* counts packets per XDP action, then returns the action chosen at load time */
BPF_ARRAY(counters, u64, 5);
int xdp_count(struct xdp_md *ctx) {
    u32 key = VERDICT;
    u64 *v = counters.lookup(&key);
    if (v)
        __sync_fetch_and_add(v, 1);
    return VERDICT;
}
"""


@pytest.fixture(scope="session")
def count_source():
    """C of a program counting packets under the action it returns (-DVERDICT=XDP_...)."""
    return COUNT_ACTIONS
