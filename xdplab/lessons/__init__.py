"""Helpers that one or two lessons use, on top of the lab and program layers.

    cpus.py        lesson 02: a program run on every CPU at once
    forwarding.py  lesson 05: devmap entries, test runs on an interface, FIB answers
    perf.py        lesson 07: what a packet costs
    qos.py         lesson 08: queues, rates and latency of a shaped link; paced floods
    kvstore.py     lesson 09: a UDP key-value service and an XDP cache in front of it
    features.py    lesson 10: XDP features of a device and what each mode costs
"""
