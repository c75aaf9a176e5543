"""The lab layer: hosts (network namespaces), links (veth pairs), traffic, shaping, and cleanup.

    topology.py  Lab, Host, Interface, Link: build a lab, own it, remove it as one
    reaper.py    removing what a lab owns, also after its process died (state file, watchdog)
    traffic.py   Host.send: AF_PACKET and the live-frames injector
    counters.py  a host's SNMP counters, an interface's statistics and driver counters (xdplab.counters)
    settle.py    settled(read, quiet, limit): a reading once it stops changing
    measure.py   `with measure(...) as seen:` what changed on interfaces, hosts, maps, tracepoints
    diagram.py   a picture of a lab, as SVG: hosts, links, addresses, where programs run
    listener.py  a UDP listener inside a host: proof that datagrams reached an application
"""
