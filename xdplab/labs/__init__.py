"""The self-paced labs (labs/NN-slug/ in the repository): checks, random packets, progress.

    catalogue.py the labs there are: all_labs(), find_lab() (old names too), load_spec()
    checks.py    run a lab's cases against a learner's program; the report and its hints
    sampling.py  fresh random packets for the checks (addresses, ports, checksums, header chains)
    progress.py  which labs are done, how many attempts, which hint is next

checks imports progress (a graded check is recorded) and both import catalogue; nothing imports
back, so there is no cycle.
"""
