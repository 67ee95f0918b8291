"""The CLI entry point imports no heavy library until a command needs it."""

from __future__ import annotations

import subprocess
import sys

HEAVY = (
    "pandas",
    "sklearn",
    "duckdb",
    "fastapi",
    "onnxruntime",
    "scipy",
    "uvicorn",
    "manara.quickstart",
)


def test_cli_main_imports_no_heavy_library() -> None:
    code = f"import manara.cli.main, sys; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", "imported at CLI start: " + result.stdout


def test_cli_help_builds_without_heavy_library() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from manara.cli.main import build_app\n"
        "result = CliRunner().invoke(build_app(), ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", "imported by --help: " + result.stdout
