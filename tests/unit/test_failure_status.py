"""failure_status: the `status` label of locust_request_failures_total, from any exception form.

A master sees each error as the string a worker sent (StatsError.parse_error(repr(exception)));
a local runner keeps the exception object. Both must give the same, bounded label.
"""

from locust import User, task  # isort: skip  (locust first: gevent monkey-patching)

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from locust.env import Environment
from locust.stats import StatsError
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from controller.gates.models import Gate
from locust_workers.exporter import STATUS_MAX_CHARS, UNKNOWN_STATUS, LocustCollector, failure_status

_BOUNDED = re.compile(rf"^(?:\d{{3}}|\w{{1,{STATUS_MAX_CHARS}}})$")


class _InactiveRpcError(Exception):
    """Shaped like grpc._channel._InactiveRpcError: its repr (and str) start with '<'."""

    def __repr__(self) -> str:
        return (
            "<_InactiveRpcError of RPC that terminated with:\n\tstatus = StatusCode.UNAVAILABLE\n"
            '\tdetails = "failed to connect to all addresses; last error: code=503"\n>'
        )

    __str__ = __repr__


class Opaque(Exception):
    def __repr__(self) -> str:
        return object.__repr__(self)


class BrokenRepr(Exception):
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


def as_master_sees_it(error: Exception) -> str:
    """What a master's stats hold for a worker's error: Locust's own serialise/unserialise."""
    data = StatsError("GET", "/x", error, occurrences=1).serialize()
    unserialised = StatsError.unserialize(data).error
    assert isinstance(unserialised, str)
    return unserialised


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (_InactiveRpcError(), "_InactiveRpcError"),
        (
            "<_InactiveRpcError of RPC that terminated with:\n\tstatus = StatusCode.UNAVAILABLE\n>",
            "_InactiveRpcError",
        ),
        ("<grpc._channel._InactiveRpcError of RPC that terminated with: x>", "_InactiveRpcError"),
        ("<ClassName>", "ClassName"),
        ("<__main__.Opaque object at 0x....>", "Opaque"),
        ("<__main__.lower_case object at 0x7f00deadbeef>", "lower_case"),
        (Opaque(), "Opaque"),
        ("ClassName('a message with <brackets> and code words')", "ClassName"),
        ("module.sub.ClassName('x')", "ClassName"),
        (
            "grpc._channel._InactiveRpcError: <_InactiveRpcError of RPC that terminated with: ...>",
            "_InactiveRpcError",
        ),
        (
            "requests.exceptions.ReadTimeout: HTTPConnectionPool(host='t', port=80): Read timed out.",
            "ReadTimeout",
        ),
        ("ValueError: invalid literal for int()", "ValueError"),
        ("  ValueError  ", "ValueError"),
        # HTTP statuses still win where the repr carries one
        ("HTTPError('503 Server Error: Service Unavailable for url: x')", "503"),
        ("LocustBadStatusCode(code=429)", "429"),
        # a bare message names no class: the one case left for 'unknown'
        ("something odd", UNKNOWN_STATUS),
        ("Something went wrong", UNKNOWN_STATUS),
        ("<html><body>502 Bad Gateway</body></html>", UNKNOWN_STATUS),
        ("", UNKNOWN_STATUS),
        (None, UNKNOWN_STATUS),
    ],
)
def test_failure_status_forms(error, status):
    assert failure_status(error) == status


def test_a_code_inside_a_grpc_message_is_not_an_http_status():
    # the details say code=503, but only a call-style repr (FastHttpUser's) carries an HTTP code
    assert failure_status(repr(_InactiveRpcError())) == "_InactiveRpcError"


@pytest.mark.parametrize("error", [_InactiveRpcError(), Opaque(), ConnectionRefusedError(111, "refused")])
def test_master_and_local_runner_agree(error):
    assert failure_status(as_master_sees_it(error)) == failure_status(error) == type(error).__name__


def test_a_broken_repr_still_names_its_class():
    assert failure_status(BrokenRepr()) == "BrokenRepr"


def test_a_long_class_name_is_capped():
    name = "E" * 500
    assert failure_status(f"{name}('x')") == "E" * STATUS_MAX_CHARS
    assert failure_status(f"<{name} of RPC>") == "E" * STATUS_MAX_CHARS


def test_a_class_with_an_odd_name_is_sanitised():
    odd = type('Bad Name{x="1"}', (Exception,), {})
    assert failure_status(odd()) == "Bad_Name_x__1__"


def test_a_megabyte_repr_is_cheap():
    assert failure_status("<" + "a." * 500_000 + "A of x>") == UNKNOWN_STATUS  # past the scanned head
    assert failure_status("X" * 1_000_000) == "X" * STATUS_MAX_CHARS


_class_names = st.from_regex(r"_{0,2}[A-Z][A-Za-z0-9_]{0,80}", fullmatch=True)
_modules = st.lists(st.from_regex(r"[a-z_][a-z0-9_]{0,12}", fullmatch=True), max_size=3)
# messages that do not themselves look like an HTTP status at the start of a call-style repr
_messages = st.text(max_size=200).filter(lambda m: "code=" not in m and not m[:3].isdigit())


@settings(max_examples=300, deadline=None)
@given(name=_class_names, modules=_modules, message=_messages)
def test_every_form_names_the_class(name, modules, message):
    qualified = ".".join([*modules, name])
    expected = name[:STATUS_MAX_CHARS]
    forms = [
        f"{qualified}({message!r})",
        f"<{qualified} of RPC that terminated with:\n\t{message}>",
        f"<{qualified} object at 0x....>",
        f"{qualified}: {message}",
    ]
    for form in forms:
        assert failure_status(form) == expected, form


@settings(max_examples=500, deadline=None)
@given(error=st.one_of(st.text(max_size=2000), st.binary(max_size=300).map(lambda b: b.decode("latin-1"))))
def test_any_string_gives_a_bounded_label_and_never_a_message(error):
    status = failure_status(error)
    assert _BOUNDED.match(status), status
    if status != UNKNOWN_STATUS:
        assert status in error  # a piece of the text, never made up
        assert not re.search(r"\s", status)


class Idle(User):
    @task
    def nothing(self) -> None:
        pass


def test_the_collector_exports_the_class_of_a_repr_starting_with_lt():
    env = Environment(user_classes=[Idle])
    env.create_local_runner()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LocustCollector(env, run_id="r1", profile="p"))
    try:
        # two as a local runner holds them (objects), one as a master holds a worker's (a string)
        for error in (_InactiveRpcError(), _InactiveRpcError(), as_master_sees_it(_InactiveRpcError())):
            env.events.request.fire(
                request_type="grpc",
                name="Say",
                response_time=3,
                response_length=0,
                exception=error,
                context={},
            )
        failures = [
            (sample.labels["status"], sample.value)
            for family in text_string_to_metric_families(generate_latest(registry).decode())
            for sample in family.samples
            if sample.name == "locust_request_failures_total"
        ]
        assert failures == [("_InactiveRpcError", 3.0)]
    finally:
        env.runner.quit()


def test_every_label_can_be_gated_on():
    longest = failure_status("E" * 500 + "('x')")
    gate = Gate(name="longest_class", metric="status_rate", status=longest, max=0.01)
    assert gate.status == longest
    with pytest.raises(ValidationError):
        Gate(name="too_long", metric="status_rate", status=longest + "E", max=0.01)
