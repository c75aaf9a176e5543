"""Carries the participants' servers' calls to the hub's API without the hub leaving 127.0.0.1.

A participant's server has to reach the hub's API (to check who signs in, to report activity),
but each server runs in its own container, with its own network namespace, and the hub listens
on the host's 127.0.0.1 only, which no container can reach. So the call goes over a Unix socket
in a host directory that every container mounts read-only:

    container: jupyterhub-singleuser → 127.0.0.1:8081 (its own loopback)
               → sockbridge.py tcp:127.0.0.1:8081 unix:/run/xdplab-hub/hub.sock
    host:      sockbridge.py unix:$STATE/run/hub.sock tcp:127.0.0.1:HUB_PORT → the hub's API

    python3 sockbridge.py LISTEN TARGET        each of them tcp:127.0.0.1:PORT or unix:/path

Bytes are copied both ways until either side closes. It listens on a loopback address or a
Unix socket only. Standard library only (the hub's virtualenv and the image both run it).
"""
import asyncio
import ipaddress
import os
import signal
import sys


def parse(spec):
    kind, _, rest = spec.partition(":")
    if kind == "unix" and rest:
        return ("unix", rest)
    if kind == "tcp":
        host, _, port = rest.rpartition(":")
        if host and port.isdigit():
            return ("tcp", host, int(port))
    raise SystemExit(f"sockbridge: {spec!r} is neither tcp:HOST:PORT nor unix:/path")


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        if writer.can_write_eof():
            try:
                writer.write_eof()
            except OSError:
                pass


async def connect(target):
    if target[0] == "unix":
        return await asyncio.open_unix_connection(target[1])
    return await asyncio.open_connection(target[1], target[2])


async def serve(listen, target):
    async def handle(reader, writer):
        try:
            up_reader, up_writer = await connect(target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        for w in (writer, up_writer):
            w.close()

    if listen[0] == "unix":
        try:
            os.unlink(listen[1])             # left by an earlier run
        except FileNotFoundError:
            pass
        server = await asyncio.start_unix_server(handle, listen[1])
        os.chmod(listen[1], 0o666)
    else:
        if not ipaddress.ip_address(listen[1]).is_loopback:
            raise SystemExit(f"sockbridge: refusing to listen on {listen[1]}: loopback only")
        server = await asyncio.start_server(handle, listen[1], listen[2])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    if listen[0] == "unix":
        try:
            os.unlink(listen[1])
        except FileNotFoundError:
            pass


def main(argv):
    if len(argv) != 2:
        raise SystemExit(__doc__)
    asyncio.run(serve(parse(argv[0]), parse(argv[1])))


if __name__ == "__main__":
    main(sys.argv[1:])
