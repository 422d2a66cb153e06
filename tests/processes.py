"""What tests look for in /proc: cnnbench's rank processes, and the addresses processes listen on.

A rank is found by its process name, among this process's descendants; this process is made a
child subreaper (``subreaper``), so a rank that outlives its controller stays a descendant.
"""

import contextlib
import ctypes
import ipaddress
import os
from pathlib import Path

from cnnbench.machine.lifeline import RANK_NAME

PR_SET_CHILD_SUBREAPER = 36


def subreaper() -> None:
    """Orphans below this process are reparented to it (Linux), not to init."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1)


def _stat(pid: str) -> tuple[str, str, int] | None:
    """A process's name, state and parent, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name, rest = text.split(" (", 1)[1].rsplit(") ", 1)
    state, ppid = rest.split()[:2]
    return name, state, int(ppid)


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid``."""
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and (stat := _stat(proc.name)) and stat[1] != "Z":
            children.setdefault(stat[2], []).append(int(proc.name))
    found, todo = [], [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


def ranks() -> list[int]:
    """Live cnnbench ranks below this process, wherever they were started."""
    return [pid for pid in descendants(os.getpid()) if (stat := _stat(str(pid))) and stat[0] == RANK_NAME]


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
