"""Imported by every Python started in a kernel-matrix guest (guest.sh puts this directory on
PYTHONPATH; nothing outside the guests uses it).

Under TCG a guest runs 50-100x slower than the host, and more when the host is busy. pyroute2
gives the child process that creates a network namespace 2 s to answer
(pyroute2.config.default_communicate_timeout), which a busy TCG guest can miss ("TimeoutError: no
response from the child pid ..."). That is emulation speed, not the kernel under test: allow 60 s.
"""
try:
    import pyroute2.config as _config
    _config.default_communicate_timeout = max(_config.default_communicate_timeout, 60)
    _config.default_create_socket_timeout = max(_config.default_create_socket_timeout, 120)
except ImportError:
    pass
