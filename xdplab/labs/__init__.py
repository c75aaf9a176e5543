"""The self-paced labs (labs/NN-slug/ in the repository): checks, random packets, progress.

    checks.py    run a lab's cases against a learner's program; the report and its hints
    sampling.py  fresh random packets for the checks (addresses, ports, checksums, header chains)
    progress.py  which labs are done, how many attempts, which hint is next
"""
