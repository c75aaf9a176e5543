"""The machine: can it run the lessons, and what does its kernel do where kernels differ.

    doctor.py  `xdplab doctor`: each check ok, warn or fail, and what to do
    probe.py   xdplab.probe(): what this kernel does, found out by trying in a scratch lab
"""
