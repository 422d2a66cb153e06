"""The controller's end of a group's control channel: the store it hosts on loopback, and the one
connection and thread that wait there for the ranks' answers for the group's whole life, so that no
round pays for a new connection or thread.
"""

from __future__ import annotations

import queue
import socket
import threading
from datetime import timedelta

import torch.distributed as dist

from cnnbench.ranks.protocol import NO_DEADLINE

HOST = "127.0.0.1"
RELEASE_SECONDS = 10.0  # how long a released wait may take to return


def loopback_store(timeout: float) -> dist.TCPStore:
    """A store server that listens on 127.0.0.1 only (TCPStore alone binds every interface)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, 0))
    listener.listen(128)
    store = dist.TCPStore(
        HOST,
        listener.getsockname()[1],
        is_master=True,
        wait_for_workers=False,
        timeout=timedelta(seconds=timeout),
        master_listen_fd=listener.detach(),
    )
    return store


class Waiter:
    """One store connection and one thread for a group's life: waits for the keys it is given.

    ``release`` ends a pending wait early by setting its keys through the group's own store.
    """

    def __init__(self, store: dist.Store, host: str, port: int, name: str | None):
        client = dist.TCPStore(host, port, timeout=NO_DEADLINE)
        self._client = dist.PrefixStore(name, client) if name else client
        self._store = store
        self._keys: queue.SimpleQueue[list[str] | None] = queue.SimpleQueue()
        self.pending: list[str] = []
        self.done = threading.Event()
        self.done.set()
        self.values: list[bytes] = []
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="cnnbench-waiter", daemon=True)
        self._thread.start()

    def start(self, keys: list[str]) -> None:
        self.done.clear()
        self.pending = keys
        self._keys.put(keys)

    def release(self) -> None:
        for key in self.pending:
            self._store.set(key, "")
        self.done.wait(RELEASE_SECONDS)

    def close(self) -> None:
        self.release()
        self._keys.put(None)
        self._thread.join(RELEASE_SECONDS)

    def _serve(self) -> None:
        while (keys := self._keys.get()) is not None:
            try:
                self.values, self.error = self._client.multi_get(keys), None  # waits for every key
            except Exception as error:  # reported by the controller's thread
                self.error = error
            finally:
                self.pending = []
                self.done.set()
