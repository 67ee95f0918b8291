"""Cost of authentication and authorisation on the inference path.

Run from the repository root::

    .venv/bin/python bench/auth_overhead.py [--duration 5] [--rounds 3] [--write-docs]

It registers the classifier of bench/serving.py (StandardScaler and
LogisticRegression on four FP64 columns, served by ONNX Runtime), then
starts two inference servers built exactly as ``manara serve`` builds them
(``build_app`` and the same uvicorn options), on one CPU:

* ``auth on``: the real ``ServingAuth``, requests carry an API key of an
  ``inference-client`` service account;
* ``auth off``: the same application whose ``auth`` attribute is replaced,
  in this script's server process only, by a stand-in that returns a fixed
  principal and allows everything. No CLI option or setting can turn
  authentication off; this replacement exists only here.

wrk (one thread, on another CPU) sends the same one-row Open Inference
Protocol request to each server at concurrency 1 and 8, alternating
between the servers for ``--rounds`` rounds; the table gives the median
over the rounds. It also times the cached authentication and
authorisation step in-process, per call. Prediction logging is off in both
servers, so that the comparison isolates the authentication step.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import serving as serving_bench  # noqa: E402

ROOT = serving_bench.ROOT
MODEL = serving_bench.MODEL
CONCURRENCY = (1, 8)
DOCS = ROOT / "docs" / "benchmarks.md"
SECTION = "## Authentication overhead"


class AllowAll:
    """Stand-in for ``ServingAuth`` that accepts every request as one principal."""

    def __init__(self, principal: Any) -> None:
        self.principal = principal

    async def authenticate(self, header: bytes | None, client: str | None = None) -> Any:
        return self.principal

    def authorize(self, principal: Any, actions: tuple[str, ...]) -> None:
        return None

    async def check(self, header: bytes | None, client: str | None, actions: Any) -> None:
        return None


def run_server(home: Path, port: int, auth: bool) -> None:
    """Serve the benchmark model as ``manara serve`` does, with or without authentication."""
    import uvicorn

    from manara.config import Settings
    from manara.logs import configure_logging
    from manara.serving.server import build_app, uvicorn_options
    from manara.workspace import Workspace

    configure_logging("warning", json_lines=True)
    workspace = Workspace.open(Settings(home=home))
    app = build_app(workspace, MODEL, prediction_log=False, on_shutdown=workspace.close)
    if not auth:
        app.auth = AllowAll(workspace.local_admin())  # type: ignore[assignment]
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        server_header=False,
        **uvicorn_options(),
    )


def time_auth_step(home: Path, token: str, calls: int) -> tuple[float, float]:
    """Return p50 and p99 microseconds of one cached ``ServingAuth.check`` call."""
    from manara.config import Settings
    from manara.serving.auth import ServingAuth
    from manara.workspace import Workspace

    workspace = Workspace.open(Settings(home=home))
    auth = ServingAuth(workspace.authenticator, workspace.policy, MODEL)
    header = f"Bearer {token}".encode()

    async def measure() -> list[float]:
        await auth.check(header, "127.0.0.1", ("model.invoke",))
        samples = []
        for _ in range(calls):
            start = time.perf_counter_ns()
            await auth.check(header, "127.0.0.1", ("model.invoke",))
            samples.append((time.perf_counter_ns() - start) / 1000.0)
        return samples

    try:
        samples = asyncio.run(measure())
    finally:
        workspace.close()
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49], cuts[98]


@dataclass(frozen=True)
class Row:
    mode: str
    concurrency: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    p50_samples: tuple[float, ...]
    """p50 of each round, in round order, to pair with the other mode's."""


def _server_command(home: Path, port: int, auth: bool) -> list[str]:
    script = str(Path(__file__).resolve())
    flag = "--serve-with-auth" if auth else "--serve-without-auth"
    command = [sys.executable, script, flag, "--home", str(home), "--port", str(port)]
    return serving_bench.pinned(command, serving_bench.SERVER_CPU)


def benchmark(
    home: Path, folder: Path, body: bytes, token: str, seconds: int, rounds: int
) -> list[Row]:
    scripts = {
        "auth on": serving_bench.wrk_script(folder, body, token, "on"),
        "auth off": serving_bench.wrk_script(folder, body, None, "off"),
    }
    ports = {"auth on": serving_bench.free_port(), "auth off": serving_bench.free_port()}
    env = {**os.environ, "MANARA_HOME": str(home)}
    samples: dict[tuple[str, int], list[tuple[float, float, float]]] = {}
    url = "http://127.0.0.1:{}/v2/models/" + MODEL + "/infer"
    live = "http://127.0.0.1:{}/v2/health/live"
    on_command = _server_command(home, ports["auth on"], True)
    off_command = _server_command(home, ports["auth off"], False)
    with (
        serving_bench.process(on_command, env, live.format(ports["auth on"])),
        serving_bench.process(off_command, env, live.format(ports["auth off"])),
    ):
        for mode in scripts:
            serving_bench.run_wrk(url.format(ports[mode]), scripts[mode], 8, 2)  # warm-up
        for round_index in range(rounds):
            # Odd rounds reverse the order, so neither mode always runs first.
            order = list(scripts) if round_index % 2 == 0 else list(reversed(scripts))
            for connections in CONCURRENCY:
                for mode in order:
                    rate, p50, p99, _ = serving_bench.run_wrk(
                        url.format(ports[mode]), scripts[mode], connections, seconds
                    )
                    samples.setdefault((mode, connections), []).append((rate, p50, p99))
                    print(
                        f"  round {round_index + 1} {mode:<8} c={connections} {rate:8.0f} req/s "
                        f"p50 {p50:.3f} ms p99 {p99:.3f} ms"
                    )
    return [
        Row(
            mode,
            connections,
            statistics.median(s[0] for s in values),
            statistics.median(s[1] for s in values),
            statistics.median(s[2] for s in values),
            tuple(s[1] for s in values),
        )
        for (mode, connections), values in sorted(samples.items(), key=lambda item: item[0][::-1])
    ]


def render(rows: list[Row], step: tuple[float, float], command: str) -> str:
    by_key = {(row.mode, row.concurrency): row for row in rows}
    lines = [
        SECTION,
        "",
        "Cost of bearer-key authentication and the `model.invoke` policy decision on one-row",
        "inference requests to the classifier of the serving benchmark (bench/auth_overhead.py).",
        "",
        f"- command: `{command}`",
        f"- machine: {serving_bench.machine()}",
        f"- date: {datetime.now(UTC).date().isoformat()}",
        "- setup: two inference servers built as `manara serve` builds them, one process each,",
        '  both pinned to CPU 0, prediction logging off; "auth off" replaces the app\'s `auth`',
        "  object inside the benchmark's own server process (no option of Manara turns",
        "  authentication off). wrk (`-t1`, pinned to CPU 1) alternates between the servers,",
        "  in reversed order every other round;",
        "  each value is the median over the rounds, and the p50 change is the median of the",
        "  per-round ratios auth on / auth off.",
        "",
        "| concurrency | mode | req/s | p50 ms | p99 ms | p50 change |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    verdicts = []
    for connections in CONCURRENCY:
        off = by_key[("auth off", connections)]
        on = by_key[("auth on", connections)]
        # Rounds run back to back, so a pair shares the machine's load of the moment.
        paired = [a / b for a, b in zip(on.p50_samples, off.p50_samples, strict=True)]
        change = (statistics.median(paired) - 1.0) * 100.0
        verdicts.append((connections, change))
        for row in (off, on):
            shown = f"{change:+.1f}%" if row is on else "-"
            lines.append(
                f"| {connections} | {row.mode} | {row.requests_per_second:,.0f} | "
                f"{row.p50_ms:.3f} | {row.p99_ms:.3f} | {shown} |"
            )
    lines.append("")
    share = step[0] / 1000.0 / by_key[("auth off", 1)].p50_ms * 100.0
    lines.append(
        f"In-process, one cached `ServingAuth.check` (authentication and authorisation) took "
        f"p50 {step[0]:.2f} µs, p99 {step[1]:.2f} µs, which is {share:.1f}% of the p50 "
        "without authentication at c=1."
    )
    passed = all(change < 5.0 for _, change in verdicts)
    summary = ", ".join(f"{change:+.1f}% at c={c}" for c, change in verdicts)
    lines.append(
        f"The p50 latency with authentication changed by {summary}; the goal of less than 5% "
        f"was {'met' if passed else 'not met'}."
    )
    return "\n".join(lines) + "\n"


def write_docs(section: str) -> None:
    text = DOCS.read_text(encoding="utf-8")
    if SECTION in text:
        start = text.index(SECTION)
        following = text.find("\n## ", start + len(SECTION))
        end = len(text) if following == -1 else following + 1
        text = text[:start] + section + ("\n" if following != -1 else "") + text[end:]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOCS.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="Seconds per wrk run.")
    parser.add_argument("--rounds", type=int, default=3, help="Alternating rounds per server.")
    parser.add_argument("--write-docs", action="store_true", help="Update docs/benchmarks.md.")
    parser.add_argument("--serve-with-auth", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-without-auth", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_with_auth or args.serve_without_auth:
        run_server(args.home, args.port, auth=args.serve_with_auth)
        return

    with tempfile.TemporaryDirectory(prefix="manara-auth-bench-") as tmp:
        folder = Path(tmp)
        home = folder / "home"
        print("training and registering the model ...")
        _, _, frame, token = serving_bench.train(home)
        step = time_auth_step(home, token, 20_000)
        print(f"in-process auth step: p50 {step[0]:.2f} us, p99 {step[1]:.2f} us")
        body = serving_bench.request_body(frame)
        rows = benchmark(home, folder, body, token, args.duration, args.rounds)
    command = ".venv/bin/python bench/auth_overhead.py " + " ".join(sys.argv[1:])
    section = render(rows, step, command.strip())
    print(section)
    if args.write_docs:
        write_docs(section)


if __name__ == "__main__":
    main()
