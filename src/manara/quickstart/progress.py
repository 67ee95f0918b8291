"""Progress reporting of the quickstart: a ``Reporter`` that the caller draws, no printing."""

from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    """Receives progress: one step at a time, each with an optional number of units."""

    def begin(self, step: str, total: int | None = None) -> None: ...

    def advance(self, amount: int = 1) -> None: ...

    def end(self, detail: str = "") -> None: ...


class SilentReporter:
    """A ``Reporter`` that ignores progress, for callers without a display."""

    def begin(self, step: str, total: int | None = None) -> None:
        del step, total

    def advance(self, amount: int = 1) -> None:
        del amount

    def end(self, detail: str = "") -> None:
        del detail
