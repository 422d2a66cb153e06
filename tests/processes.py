"""What tests look for in /proc: cnnbench's rank processes, and the addresses processes listen on."""

import contextlib
import ipaddress
import os
from pathlib import Path


def workers_of(model: str) -> list[int]:
    """Live cnnbench worker processes running ``model``, found through /proc."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if proc.name.isdigit() and "cnnbench.ranks.worker" in cmdline and f'"model": "{model}"' in cmdline:
            pids.append(int(proc.name))
    return pids


def listening(pids: list[int]) -> set[str]:
    """The local addresses these processes listen on (TCP, IPv4 and IPv6), from /proc."""
    inodes = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                address = bytes.fromhex(fields[1].split(":")[0])
                words = [address[i : i + 4][::-1] for i in range(0, len(address), 4)]  # host order per word
                found.add(str(ipaddress.ip_address(b"".join(words))))
    return found
