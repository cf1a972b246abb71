"""Numbers as the reports write them: one helper per kind of figure (pure)."""

from __future__ import annotations


def int_of(text: str | None) -> int:
    """A CSV count; 0 when empty or not a number."""
    try:
        return int(float(text or 0))
    except ValueError:
        return 0


def float_of(text: str | None) -> float | None:
    """A CSV figure; None when empty, N/A or not a number."""
    try:
        return float(text) if text not in (None, "", "N/A") else None
    except ValueError:
        return None


def ms(value: float | None) -> str:
    # Locust's percentiles are whole milliseconds (its buckets); averages keep two decimals below 100
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if value >= 100 or value.is_integer() else f"{value:.2f}"


def rate(failures: int, requests: int) -> str:
    return "n/a" if requests == 0 else f"{failures / requests:.2%}"


def error_rate(rate_: float | None) -> str:
    return "n/a" if rate_ is None else f"{rate_:.2%}"


def rps(rps_: float | None) -> str:
    return "n/a" if rps_ is None else f"{rps_:,.2f}"


def duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def value(number: float) -> str:
    """A gauge's value: 4 significant digits, whole numbers with separators from 1,000 on."""
    return f"{number:,.0f}" if abs(number) >= 1000 else f"{number:.4g}"


def optional(number: float | None) -> str:
    """A gauge's value or 'n/a'."""
    return "n/a" if number is None else value(number)
