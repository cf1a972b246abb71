"""Tiny targets on 127.0.0.1 that count what they received, for the drop-in tests (issue 13):
`python -m tests.loopback_servers http PORT` counts GETs per path (GET /__hits answers the counts,
uncounted); `python -m tests.loopback_servers tcp PORT` echoes lines and counts them (the line
`__hits` answers the count, uncounted). Each runs in its own process, outside the test's gevent.
"""

from __future__ import annotations

import json
import socket
import socketserver
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HITS = "__hits"


def serve_http(port: int) -> None:
    hits: Counter[str] = Counter()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == f"/{HITS}":
                with lock:
                    body = json.dumps(dict(hits)).encode()
            else:
                with lock:
                    hits[self.path] += 1
                body = b"ok"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def serve_tcp(port: int) -> None:
    count = {"lines": 0}
    lock = threading.Lock()

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            for line in self.rfile:
                if line.strip() == HITS.encode():
                    with lock:
                        self.wfile.write(f"{count['lines']}\n".encode())
                    continue
                with lock:
                    count["lines"] += 1
                self.wfile.write(line)

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    Server(("127.0.0.1", port), Handler).serve_forever()


def http_hits(port: int) -> dict[str, int]:
    import httpx

    return dict(httpx.get(f"http://127.0.0.1:{port}/{HITS}", timeout=5).json())


def tcp_hits(port: int) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"{HITS}\n".encode())
        return int(sock.makefile().readline())


@contextmanager
def loopback_server(kind: str, log_path: Path) -> Iterator[int]:
    """One of these servers on a free loopback port; yields the port."""
    from controller.processes import ManagedProcess, free_port, wait_until
    from tests.support import REPO_ROOT

    port = free_port()
    argv = [sys.executable, "-m", "tests.loopback_servers", kind, str(port)]
    process = ManagedProcess(f"{kind} target", argv, log_path=log_path, cwd=REPO_ROOT)
    probe = http_hits if kind == "http" else tcp_hits
    try:
        if not wait_until(lambda: _answers(probe, port), timeout=15, watch=[process]):
            raise AssertionError(f"{kind} target did not start: {process.log_tail()}")
        yield port
    finally:
        process.stop(timeout=10)


def _answers(probe, port: int) -> bool:  # type: ignore[no-untyped-def]
    try:
        probe(port)
    except OSError:
        return False
    except Exception:  # httpx's errors while the server starts
        return False
    return True


if __name__ == "__main__":
    {"http": serve_http, "tcp": serve_tcp}[sys.argv[1]](int(sys.argv[2]))
