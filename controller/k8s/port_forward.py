"""A local TCP port that reaches a pod's port through the API server (pods/portforward).

It replaces `kubectl port-forward`, so a run needs no kubectl. Each accepted connection gets its
own portforward stream (the kubernetes client's websocket protocol), opened when it arrives: a
master pod that restarted, a dropped stream or a port the pod refuses ends that one connection
only -- the next scrape opens a new stream. (kubectl exits at the first connection the pod
refuses, so the caller had to delay its first connection; here nothing has to wait.)

Per connection there are two threads: ours, copying bytes between the TCP socket and the
stream's socket, and the client's proxy thread behind that socket; both end with the connection,
and close() ends and joins them all. Connections and errors are logged one line each to the log
file (the run directory's port-forward log).
"""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import portforward

from controller.errors import InfraError

# The client's portforward() swaps its ApiClient's call_api while it opens a stream: openings
# must not overlap (the copying afterwards does), and this also tells us which proxy thread is new.
_OPEN_LOCK = threading.Lock()
_PROXY_THREAD_PREFIX = "Kubernetes port forward proxy"
CHUNK = 64 * 1024
JOIN_TIMEOUT_S = 5.0


def _one_line(e: BaseException) -> str:
    text = str(e.reason if isinstance(e, ApiException) and e.status == 0 else e)
    # a refused websocket handshake reads "Handshake status 403 Forbidden -+-+- {headers} -+-+- body":
    # the status and the API's own message say it, the headers do not
    status, _, rest = text.partition(" -+-+- ")
    if rest:
        body = rest.rpartition(" -+-+- ")[2]
        with contextlib.suppress(ValueError, AttributeError):
            status += f": {json.loads(body).get('message')}"
        text = status
    return " ".join(text.split())[:300] or type(e).__name__


class PortForward:
    """127.0.0.1:<local_port> -> port `port` of pod `namespace`/`pod`. Use as a context manager."""

    def __init__(self, *, api: client.ApiClient, namespace: str, pod: str, port: int, log_path: Path) -> None:
        # Its own ApiClient: the stream opening swaps call_api, which the run's other API calls
        # (the Lease renewal thread among them) must never see.
        self._core = client.CoreV1Api(client.ApiClient(api.configuration))
        self.namespace, self.pod, self.port = namespace, pod, port
        self.target = f"pod {namespace}/{pod} port {port}"
        self._log_path = log_path
        self._log_lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.local_port: int = self._listener.getsockname()[1]
        # closing: one byte here wakes every selector (accept loop and connections) at once
        self._wake_r, self._wake_w = socket.socketpair()
        self._closed = threading.Event()
        self._connections: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._accepting = threading.Thread(
            target=self._accept_loop, name=f"port-forward {self.local_port}", daemon=True
        )
        self.connections_served = 0

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> PortForward:
        """Check that the API server opens a stream to the pod (RBAC, pod, protocol), then listen.

        The pod's process need not listen yet: only the stream's opening is checked."""
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            stream, proxy = self._open_stream()
        except ApiException as e:
            message = f"port-forward to {self.target} failed: {_one_line(e)}"
            self._log(message)
            self.close()
            raise InfraError(message) from None
        self._end_stream(stream, proxy)
        self._log(f"forwarding 127.0.0.1:{self.local_port} -> {self.target}")
        self._accepting.start()
        return self

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._wake_w.send(b"x")
        if self._accepting.is_alive():
            self._accepting.join(JOIN_TIMEOUT_S)
        with self._lock:
            live = list(self._connections)
        for thread in live:
            thread.join(JOIN_TIMEOUT_S)
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()
        self._log(f"closed after {self.connections_served} connections")

    def __enter__(self) -> PortForward:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def live_connections(self) -> int:
        with self._lock:
            return len(self._connections)

    # -- connections ---------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._closed.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self._listener and not self._closed.is_set():
                        self._accept()

    def _accept(self) -> None:
        try:
            conn, peer = self._listener.accept()
        except OSError as e:  # e.g. out of file descriptors: this connection is lost, not the forward
            self._log(f"accept failed: {_one_line(e)}")
            return
        with self._lock:
            self.connections_served += 1
            thread = threading.Thread(
                target=self._serve,
                args=(conn, f"{peer[0]}:{peer[1]} -> port {self.port}"),
                name=f"port-forward {self.local_port} #{self.connections_served}",
                daemon=True,
            )
            self._connections.add(thread)
        thread.start()

    def _serve(self, conn: socket.socket, peer: str) -> None:
        try:
            with conn:
                try:
                    stream, proxy = self._open_stream()
                except ApiException as e:
                    self._log(f"{peer}: cannot open a stream to {self.target}: {_one_line(e)}")
                    return
                try:
                    sent, received = self._pump(conn, stream.socket(self.port))
                finally:
                    self._end_stream(stream, proxy)
                error = stream.error(self.port)
                result = f"error: {_one_line(Exception(error))}" if error else "closed"
                self._log(f"{peer}: connection {result} ({sent} bytes sent, {received} received)")
        except OSError as e:  # the client went away mid-copy: its connection only
            self._log(f"{peer}: {_one_line(e)}")
        finally:
            with self._lock:
                self._connections.discard(threading.current_thread())

    def _open_stream(self) -> tuple[Any, threading.Thread | None]:
        with _OPEN_LOCK:
            before = set(threading.enumerate())
            stream = portforward(
                self._core.connect_get_namespaced_pod_portforward,
                self.pod,
                self.namespace,
                ports=str(self.port),
            )
            new = [
                t
                for t in threading.enumerate()
                if t not in before and t.name.startswith(_PROXY_THREAD_PREFIX)
            ]
        return stream, (new[0] if new else None)

    @staticmethod
    def _end_stream(stream: Any, proxy: threading.Thread | None) -> None:
        # Closing our end of its socket pair makes the proxy thread close the websocket and return.
        stream.close()
        if proxy is not None:
            proxy.join(JOIN_TIMEOUT_S)

    def _pump(self, conn: socket.socket, remote: Any) -> tuple[int, int]:
        """Copy both ways until either side ends. No half-close: the client's stream socket has
        none (it drops the whole port at the first EOF), and HTTP scrapes do not need it."""
        counts = {conn: 0, remote: 0}  # bytes read from each side
        with selectors.DefaultSelector() as selector:
            selector.register(conn, selectors.EVENT_READ, remote)
            selector.register(remote, selectors.EVENT_READ, conn)
            selector.register(self._wake_r, selectors.EVENT_READ, None)
            while True:
                for key, _ in selector.select():
                    if key.data is None:
                        return counts[conn], counts[remote]  # close() was called
                    data = key.fileobj.recv(CHUNK)  # type: ignore[union-attr]
                    if not data:
                        return counts[conn], counts[remote]
                    counts[key.fileobj] += len(data)
                    key.data.sendall(data)

    def _log(self, line: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        with self._log_lock, self._log_path.open("a", encoding="utf-8") as f:
            f.write(f"{stamp}Z {line}\n")
