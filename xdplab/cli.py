"""The `xdplab` command: `xdplab doctor` checks the machine, `xdplab reap` removes leftover labs,
`xdplab check LAB` checks a lab exercise, `xdplab progress` shows which labs are done."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence


def _doctor(args):
    from xdplab.machine.doctor import doctor
    report = doctor()
    if args.json:
        print(report.to_json())
    else:
        text = report.text(quiet=args.quiet, color=sys.stdout.isatty())
        if text:
            print(text)
    return report.exit_code


def _reap(args):
    from xdplab.lab.topology import reap
    removed = reap(all=args.all)
    if not removed:
        print("nothing to remove" + ("" if args.all else
                                      " (labs of running processes are kept; --all removes them too)"))
    for lab_id, namespaces in sorted(removed.items()):
        print(f"removed lab {lab_id}: {', '.join(namespaces) or 'no namespaces left'}")
    return 0


def _check(args):
    from xdplab.labs.checks import main
    return main(args.lab, args.program, args.seed)


def _progress(args):
    from xdplab.labs import progress
    if args.reset:
        progress.Progress().reset(None if args.reset == "all" else _lab_name(args.reset))
    print(progress.text())
    return 0


def _lab_name(name):
    from xdplab.labs.checks import find_lab
    return find_lab(name).name


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line `argv` (sys.argv[1:] when None) and return its exit status."""
    parser = argparse.ArgumentParser(prog="xdplab", description="Hands-on XDP lessons in JupyterLab.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("doctor", help="check that this machine can run the lessons")
    p.add_argument("--quiet", action="store_true", help="print only problems (warn and fail)")
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    p.set_defaults(func=_doctor)
    p = sub.add_parser("reap", help="remove labs (namespaces, pins) left by processes that died")
    p.add_argument("--all", action="store_true", help="also remove labs of running processes")
    p.set_defaults(func=_reap)
    p = sub.add_parser("check", help="check your program for a lab (labs/NN-name); exit 0 on a pass")
    p.add_argument("lab", help="the lab: its number (01), name (drop-by-port) or folder")
    p.add_argument("--program", metavar="FILE",
                   help="your C file (default: the lab's starter.c: edit a copy and name it here)")
    p.add_argument("--seed", type=int, metavar="S",
                   help="draw the same random packets as the check whose report named seed S")
    p.set_defaults(func=_check)
    p = sub.add_parser("progress", help="show which labs are done")
    p.add_argument("--reset", metavar="LAB", help="forget the progress of LAB (or 'all')")
    p.set_defaults(func=_progress)
    args = parser.parse_args(argv)

    from xdplab.errors import LabError
    try:
        return args.func(args)
    except LabError as e:
        print(f"xdplab: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
