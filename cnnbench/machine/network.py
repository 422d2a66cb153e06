"""This machine's network as a run meets it: rendezvous addresses (``HOST:PORT``), the interfaces
that have an IPv4 address, and their facts for the fingerprint. Nothing here listens or sends."""

from __future__ import annotations

import contextlib
import fcntl
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

SIOCGIFADDR = 0x8915  # Linux ioctl: an interface's IPv4 address


@dataclass(frozen=True)
class Endpoint:
    host: str  # an IPv4 address
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    def source(self) -> str:
        """This node's own address on the way to the endpoint (the kernel's route; nothing is sent)."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((self.host, self.port))
            return probe.getsockname()[0]

    def interface(self) -> str:
        """The name of this node's interface on the way to the endpoint, e.g. ``eth0`` or ``lo``."""
        source = self.source()
        return next((name for name, address in interfaces().items() if address == source), source)


def parse_endpoint(text: str) -> Endpoint:
    """``10.0.0.1:29400``; a hostname is resolved to its IPv4 address. ValueError says what is wrong."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"got {text!r}; valid: HOST:PORT, e.g. 10.0.0.1:29400, with a port from 1 to 65535")
    try:
        address = socket.gethostbyname(host)
    except OSError:
        raise ValueError(f"got {text!r}: {host} does not resolve to an IPv4 address") from None
    return Endpoint(address, int(port))


def local_endpoint(text: str) -> Endpoint:
    """An endpoint on one of this machine's own addresses: the only one the controller listens on."""
    endpoint = parse_endpoint(text)
    own = interfaces()
    if endpoint.host not in own.values():
        listed = ", ".join(f"{address} ({name})" for name, address in own.items())
        raise ValueError(f"{endpoint.host} is not an address of this machine; valid: HOST:PORT on one of {listed}")
    return endpoint


def interfaces() -> dict[str, str]:
    """This machine's network interfaces that have an IPv4 address: name -> address."""
    found = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for _, name in socket.if_nameindex():
            with contextlib.suppress(OSError):  # an interface without an IPv4 address
                request = struct.pack("256s", name.encode()[:15])
                found[name] = socket.inet_ntoa(fcntl.ioctl(probe.fileno(), SIOCGIFADDR, request)[20:24])
    return found


def network() -> dict[str, dict]:
    """The interfaces NCCL and gloo may choose, for the fingerprint: address, MTU, link speed, state."""
    found = {}
    for name, address in interfaces().items():
        sysfs = Path("/sys/class/net") / name
        found[name] = {"address": address, **{key: _read(sysfs / key) for key in ("mtu", "speed", "operstate")}}
    return found


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:  # no such attribute, or a virtual link whose speed cannot be read
        return None
