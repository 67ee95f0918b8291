"""Durations written the way users type them on the command line (``90s``, ``15m``, ``48h``)."""

from __future__ import annotations

from datetime import timedelta

__all__ = ["format_duration"]

_UNITS = (("h", 3600), ("m", 60))


def format_duration(duration: timedelta) -> str:
    """Write ``duration`` in the largest of h, m and s that divides it, such as ``48h``.

    Fractions of a second are rounded to whole seconds, and negative durations
    keep their sign (``-15m``).
    """
    seconds = round(duration.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    for suffix, size in _UNITS:
        if seconds and seconds % size == 0:
            return f"{sign}{seconds // size}{suffix}"
    return f"{sign}{seconds}s"
