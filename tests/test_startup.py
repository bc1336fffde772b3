"""The command line starts light: ``--help`` (the group's and every command's) and ``--version``
import only click and the modules that define the commands, never the renderers, the
statistics, the store, HTTP or the sandbox's server; ``sandbox serve`` imports its server and
no renderer or statistics. Structural checks on what a fresh process imported, never timings
(those are bench/startup.py's, in docs/performance.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click

from audit.cli import cli

ROOT = Path(__file__).resolve().parent.parent

# third-party packages and audit modules that --help must not import
HEAVY_PACKAGES = {
    "croniter",
    "httpx",
    "jinja2",
    "numpy",
    "pydantic",
    "rich",
    "scipy",
    "starlette",
    "uvicorn",
    "yaml",
}
HEAVY_AUDIT = {
    "audit.evidence.bundle",
    "audit.engine",
    "audit.evidence.ledger",
    "audit.plan",
    "audit.report",
    "audit.runner",
    "audit.sandbox",
    "audit.scorecard",
    "audit.stats",
    "audit.store",
    "audit.ui",
    "audit.workspace",
}


def _imported_after(script: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``script`` (which uses ``main``)."""
    code = (
        "import json, sys\n"
        "from audit.cli import main\n"
        f"{script}\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PLATFORM_AUDIT_DEBUG", None)
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def _heavy(modules: set[str], packages: set[str], audit: set[str]) -> list[str]:
    return sorted(
        m
        for m in modules
        if m.split(".")[0] in packages or any(m == a or m.startswith(f"{a}.") for a in audit)
    )


def _command_paths() -> list[list[str]]:
    """Every command and group of the CLI, as the arguments that reach it."""
    paths: list[list[str]] = []

    def walk(group: click.Group, prefix: list[str]) -> None:
        for name, command in sorted(group.commands.items()):
            paths.append([*prefix, name])
            if isinstance(command, click.Group):
                walk(command, [*prefix, name])

    walk(cli, [])
    return paths


def test_help_and_version_import_nothing_heavy() -> None:
    calls = [["--help"], ["--version"], *([*p, "--help"] for p in _command_paths())]
    script = "\n".join(f"main({args!r})" for args in calls)
    modules = _imported_after(script)
    assert "audit.commands.lifecycle" in modules  # the commands were defined...
    assert _heavy(modules, HEAVY_PACKAGES, HEAVY_AUDIT) == []  # ...and nothing heavy came


def test_every_command_is_registered_for_help() -> None:
    names = {p[-1] for p in _command_paths()}
    assert {"run", "poll", "report", "diff", "export", "plan-size", "evasion", "serve"} <= names


def test_sandbox_serve_imports_its_server_and_no_renderer(tmp_path: Path) -> None:
    state = str(tmp_path / "sandbox.sqlite")
    script = (
        "import audit.sandbox.server as server\n"
        "server.serve_forever = lambda *args: None  # stop before listening\n"
        f"main(['sandbox', 'serve', '--port', '8765', '--state', {state!r}])\n"
    )
    modules = _imported_after(script)
    assert {"audit.sandbox.server", "uvicorn", "starlette"} <= modules
    heavy = _heavy(
        modules,
        {"httpx", "jinja2", "numpy", "rich", "scipy"},
        {"audit.engine", "audit.report", "audit.scorecard", "audit.stats"},
    )
    assert heavy == []


def test_help_names_agree_with_their_owners() -> None:
    from audit import cli_names, i18n
    from audit.evidence import bundle
    from audit.report import registry, views

    assert cli_names.FORMATS == registry.FORMATS
    assert cli_names.VIEW_FORMATS == views.VIEW_FORMATS
    assert cli_names.TEXT_FORMATS == registry.TEXT_FORMATS
    assert cli_names.LANGUAGES == i18n.LANGUAGES
    assert cli_names.DEFAULT_ARCHIVE == bundle.DEFAULT_ARCHIVE
