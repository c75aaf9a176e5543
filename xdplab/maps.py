"""Maps: reading a program's BPF maps as typed Python values."""
import collections.abc
import ctypes

from .errors import LabError


def table_names(bpf):
    """Names of every map declared by a bcc module."""
    from bcc import libbcc
    lib = libbcc.lib
    lib.bpf_num_tables.restype = ctypes.c_size_t
    lib.bpf_num_tables.argtypes = [ctypes.c_void_p]
    lib.bpf_table_name.restype = ctypes.c_char_p
    lib.bpf_table_name.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    return [lib.bpf_table_name(bpf.module, i).decode() for i in range(lib.bpf_num_tables(bpf.module))]


class Maps(collections.abc.Mapping):
    """program.maps["name"] → Map."""

    def __init__(self, program):
        self.program = program
        self._names = table_names(program.bpf)
        self._maps = {}

    def __getitem__(self, name):
        if name not in self._names:
            raise LabError(f"the program has no map {name!r}",
                           f"its maps: {', '.join(self._names) or 'none'}")
        if name not in self._maps:
            self._maps[name] = Map(self.program, name)
        return self._maps[name]

    def __iter__(self):
        return iter(self._names)

    def __len__(self):
        return len(self._names)

    def __repr__(self):
        return f"<Maps {', '.join(self._names)}>"


class Map:
    def __init__(self, program, name):
        self.program, self.name = program, name
        self.table = program.bpf[name]

    def snapshot(self):
        out = {}
        for k, v in self.table.items():
            key = getattr(k, "value", k)
            val = getattr(v, "value", v)
            out[key] = val
        return out
