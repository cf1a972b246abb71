"""A gRPC-style custom client whose errors' repr start with '<', as grpc's _InactiveRpcError does.

Every call dials the host (rpc://127.0.0.1:<port>, where nothing listens) and fails: the refused
connection becomes the client's own error, reported through Locust's request event as a gRPC
client's interceptor reports it.
"""

from locust import User, constant, task  # isort: skip

import socket
import time
from urllib.parse import urlsplit


class _InactiveRpcError(Exception):
    """grpc._channel._InactiveRpcError's shape: '<' starts its repr and its str."""

    def __init__(self, details: str) -> None:
        super().__init__(details)
        self.details = details

    def __repr__(self) -> str:
        return (
            "<_InactiveRpcError of RPC that terminated with:\n\tstatus = StatusCode.UNAVAILABLE\n"
            f'\tdetails = "{self.details}"\n>'
        )

    __str__ = __repr__


class OpaqueClientError(Exception):
    """An error with object's own repr: '<rpc_errors.OpaqueClientError object at 0x...>'."""

    __repr__ = object.__repr__


class RpcUser(User):
    wait_time = constant(0.05)

    def _call(self, name: str, error: type[Exception]) -> None:
        address = urlsplit(self.host)
        started = time.perf_counter()
        exception: Exception | None = None
        try:
            socket.create_connection((address.hostname, address.port), timeout=1).close()
        except OSError as e:
            exception = error(f"failed to connect to all addresses: {e}")
        self.environment.events.request.fire(
            request_type="grpc",
            name=name,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=exception,
            context={},
        )

    @task(3)
    def say_hello(self) -> None:
        self._call("SayHello", _InactiveRpcError)

    @task
    def say_goodbye(self) -> None:
        self._call("SayGoodbye", OpaqueClientError)
