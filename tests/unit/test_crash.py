"""The crash module: one line for the terminal, the traceback in a file that is always somewhere."""

import errno
import tempfile

from controller.crash import (
    MESSAGE_LIMIT,
    crash_message,
    log_candidates,
    os_error_message,
    write_crash_log,
)


def raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as e:
        return e


def test_crash_message_is_one_line_with_class_and_log(tmp_path):
    log = tmp_path / "loadctl-1-x.log"
    line = crash_message(KeyError("gates"), log)
    assert line == f"loadctl: error: unexpected KeyError: 'gates' (traceback in {log})"
    assert crash_message(RuntimeError(), None) == (
        "loadctl: error: unexpected RuntimeError (the traceback could not be saved)"
    )
    long = crash_message(ValueError("a\nb\r\n" + "x" * 1000), log)
    assert "\n" not in long and "unexpected ValueError: a b xxx" in long
    said = long.split(" (traceback in ")[0].removeprefix("loadctl: error: unexpected ValueError: ")
    assert len(said) == MESSAGE_LIMIT and said.endswith("...")


def test_a_broken_str_does_not_hide_the_error():
    class Weird(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert crash_message(Weird(), None).startswith("loadctl: error: unexpected Weird (")


def test_os_errors_name_the_path_and_the_errno(tmp_path):
    full = OSError(errno.ENOSPC, "No space left on device", "/results/r1/junit.xml")
    assert os_error_message(full, None) == (
        "loadctl: error: /results/r1/junit.xml: No space left on device (ENOSPC)"
        " (the traceback could not be saved)"
    )
    denied = PermissionError(errno.EACCES, "Permission denied", "/a", None, "/b")  # as os.rename raises it
    assert os_error_message(denied, tmp_path / "l.log").startswith(
        "loadctl: error: /a -> /b: Permission denied (EACCES) (traceback in "
    )
    assert os_error_message(OSError("odd"), None).startswith("loadctl: error: odd (")


def test_log_goes_to_the_run_first_then_the_temp_dir(tmp_path):
    run = tmp_path / "run"
    found = log_candidates(run_dir=run, tmp_dir=tmp_path / "tmp", pid=42, now=1_764_000_000.0)
    assert found == [
        run / "logs" / "loadctl-42-20251124T160000Z.log",
        tmp_path / "tmp" / "loadctl-42-20251124T160000Z.log",
    ]
    assert log_candidates(run_dir=None, tmp_dir=tmp_path, pid=1, now=0.0) == [
        tmp_path / "loadctl-1-19700101T000000Z.log"
    ]


def test_crash_log_holds_the_traceback_and_falls_back_to_tmp(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    error = raised(ZeroDivisionError("division by zero"))
    run = tmp_path / "run"
    log = write_crash_log(error, argv=["loadctl", "gates", "eval"], run_dir=run)
    assert log is not None and log.parent == run / "logs"
    text = log.read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in text and "ZeroDivisionError: division by zero" in text
    assert "command: loadctl gates eval" in text
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the run folder should be")
    fallback = write_crash_log(error, argv=["loadctl"], run_dir=blocked)
    assert fallback is not None and fallback.parent == tmp_path / "tmp"
    monkeypatch.setattr(tempfile, "tempdir", str(blocked / "tmp"))
    assert write_crash_log(error, argv=["loadctl"], run_dir=blocked) is None
