"""Start-up: how long the command line takes before it does anything, and how much memory.

Run from the repository root:  python bench/startup.py [--repeat 15] [--tree LABEL=PATH ...]

Each repetition runs, in fresh processes and in turn:

* ``python -c pass``: the interpreter alone, the floor every command pays;
* ``python -m audit --help`` and ``python -m audit --version``;
* ``python -m audit sandbox serve --port P``: the time until ``/_sandbox/health`` answers 200
  (polled every 5 ms), after which the server is stopped by its PID.

For each it takes the wall time (median over the repetitions) and the peak resident set size
(the command's own ``ru_maxrss`` from ``wait4``, forked from a small wrapper process that also
times it; for the server, its ``VmHWM`` once it answers).

``--tree LABEL=PATH`` (repeatable) runs the same commands with ``PYTHONPATH=PATH``, so a
checkout of another commit (``git worktree add --detach /tmp/base HEAD~1``) is measured side by
side with this one, interleaved repetition by repetition: the machine's speed, which varies
from minute to minute, then weighs on both alike and their ratio is what to read. Without
``--tree`` only this checkout is measured. ``--json`` prints the figures as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import load_average, machine

ROOT = Path(__file__).resolve().parent.parent
COMMANDS: dict[str, list[str]] = {
    "python -c pass": ["-c", "pass"],
    "python -m audit --help": ["-m", "audit", "--help"],
    "python -m audit --version": ["-m", "audit", "--version"],
}
SERVE = "sandbox serve until /_sandbox/health answers"


@dataclass
class Figures:
    seconds: list[float] = field(default_factory=list)
    peak_mb: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        return {
            "median_s": round(statistics.median(self.seconds), 4),
            "min_s": round(min(self.seconds), 4),
            "peak_rss_mb": round(statistics.median(self.peak_mb), 1),
        }


def _env(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree)
    env.pop("PLATFORM_AUDIT_DEBUG", None)
    return env


# Forks the command from a small process and reports (wall s, ru_maxrss KiB, exit code): a
# child's ru_maxrss starts from the peak of the process it was forked from, so forked from this
# one (which has imported more) it would read this process's peak, not the command's own.
_WRAPPER = """
import os, sys, time
devnull = os.open(os.devnull, os.O_WRONLY)
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.dup2(devnull, 1)
    os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
_, status, usage = os.wait4(pid, 0)
print(time.perf_counter() - start, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def run_once(args: list[str], tree: Path, cwd: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one fresh ``python ARGS`` that must exit 0."""
    done = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *args],
        cwd=cwd,
        env=_env(tree),
        capture_output=True,
        text=True,
        check=False,
    )
    seconds, peak_kib, code = done.stdout.split()
    if done.returncode != 0 or int(code) != 0:
        raise SystemExit(f"python {' '.join(args)} exited {code}: {done.stderr[-500:]}")
    return float(seconds), int(peak_kib) / 1024


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def serve_once(tree: Path, cwd: Path, timeout: float = 30.0) -> tuple[float, float]:
    """(seconds until the health check answers, peak RSS MiB then) of one ``sandbox serve``."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/_sandbox/health"
    args = ["-m", "audit", "sandbox", "serve", "--port", str(port)]
    args += ["--state", str(cwd / f"sandbox-{port}.sqlite")]
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, *args],
        cwd=cwd,
        env=_env(tree),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                with urllib.request.urlopen(url, timeout=1.0) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if proc.poll() is not None:
                raise SystemExit(f"sandbox serve exited {proc.returncode} before answering")
            if time.perf_counter() - start > timeout:
                raise SystemExit(f"sandbox serve did not answer within {timeout:g} s")
            time.sleep(0.005)
        elapsed = time.perf_counter() - start
        peak = _peak_mb(proc.pid)
    finally:
        proc.terminate()  # this process's own child, by its PID
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return elapsed, peak


def measure(trees: dict[str, Path], repeat: int) -> dict[str, dict[str, Figures]]:
    """Every command for every tree, interleaved, ``repeat`` times."""
    figures = {label: {name: Figures() for name in [*COMMANDS, SERVE]} for label in trees}
    with tempfile.TemporaryDirectory(prefix="startup-bench-") as folder:
        cwd = Path(folder)
        for tree in trees.values():  # one unmeasured warm-up each: file cache, .pyc
            for args in COMMANDS.values():
                run_once(args, tree, cwd)
            serve_once(tree, cwd)
        for _ in range(repeat):
            for label, tree in trees.items():
                for name, args in COMMANDS.items():
                    seconds, peak = run_once(args, tree, cwd)
                    figures[label][name].seconds.append(seconds)
                    figures[label][name].peak_mb.append(peak)
                seconds, peak = serve_once(tree, cwd)
                figures[label][SERVE].seconds.append(seconds)
                figures[label][SERVE].peak_mb.append(peak)
    return figures


def table(summary: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    labels = list(summary)
    head = "| command | " + " | ".join(f"{lbl}: median s | {lbl}: peak MiB" for lbl in labels)
    if len(labels) > 1:
        head += f" | {labels[0]} / {labels[-1]} |"
    else:
        head += " |"
    lines = [head, "| --- |" + " ---: |" * (2 * len(labels) + (len(labels) > 1))]
    for name in summary[labels[0]]:
        cells = [
            f"{summary[lbl][name]['median_s']:.3f} | {summary[lbl][name]['peak_rss_mb']:.0f}"
            for lbl in labels
        ]
        row = f"| {name} | " + " | ".join(cells) + " |"
        if len(labels) > 1:
            first = summary[labels[0]][name]["median_s"]
            last = summary[labels[-1]][name]["median_s"]
            row += f" {first / last:.1f}x |" if last else " – |"
        lines.append(row)
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15, help="Repetitions (median).")
    parser.add_argument(
        "--tree",
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="A checkout to measure with PYTHONPATH=PATH (repeatable); default: this one.",
    )
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    options = parser.parse_args(argv)
    trees: dict[str, Path] = {}
    for item in options.tree:
        label, sep, path = item.partition("=")
        if not sep or not Path(path).is_dir():
            parser.error(f"--tree wants LABEL=PATH to a checkout (got {item!r})")
        trees[label] = Path(path).resolve()
    trees = trees or {"this": ROOT}
    figures = measure(trees, max(1, options.repeat))
    summary = {
        label: {name: f.summary() for name, f in by_name.items()}
        for label, by_name in figures.items()
    }
    if options.json:
        data = {"repeat": options.repeat, "trees": {k: str(v) for k, v in trees.items()}}
        print(json.dumps({**data, "machine": machine(), "figures": summary}, indent=2))
        return
    print(f"machine: {machine()}; load average {load_average()}; repeat {options.repeat}")
    for label, tree in trees.items():
        print(f"{label}: PYTHONPATH={tree}")
    print("\n".join(table(summary)))


if __name__ == "__main__":
    main()
