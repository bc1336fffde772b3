"""The scheduling examples work: cron, systemd timer and Kubernetes CronJob.

Each example's plan is valid and recurring, and its command line, with the install paths
replaced by this checkout's, runs here and exits 0 saying when it next needs to run. The systemd
units pass ``systemd-analyze verify`` where systemd is installed.
"""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from audit.plan import load_plan
from audit.schedule import parse_cron
from tests.durable_support import PYTHON, ROOT, process_env

EXAMPLES = ROOT / "examples"
BINARY = "/opt/platform-audit/bin/platform-audit"
PLAN = "/etc/platform-audit/plan-weekly.yaml"


def _run_here(args: list[str], tmp_path: Path, plan: Path, env: dict[str, str]) -> str:
    """The example's platform-audit arguments, run with this checkout and temporary paths."""
    args = [str(plan) if a == PLAN else a for a in args]
    environment = process_env() | env
    environment["PLATFORM_AUDIT_WORKSPACE"] = str(tmp_path / "workspace")
    environment["PLATFORM_AUDIT_REPORTS"] = str(tmp_path / "reports")
    done = subprocess.run(
        [PYTHON, "-m", "audit", *args], env=environment, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("next: ")
    return done.stdout


def _check_recurring(plan_file: Path) -> None:
    plan = load_plan(plan_file)
    assert plan.schedule.cron is not None
    assert parse_cron(plan.schedule.cron, plan_file).zone.key == "Asia/Ho_Chi_Minh"


def test_cron_example(tmp_path: Path) -> None:
    plan_file = EXAMPLES / "cron" / "plan-weekly.yaml"
    _check_recurring(plan_file)
    lines = (EXAMPLES / "cron" / "crontab").read_text().splitlines()
    jobs = [line for line in lines if line and not line.startswith("#") and "=" not in line[:40]]
    (job,) = jobs
    fields = job.split(None, 5)
    assert fields[:5] == ["*"] * 5
    command = shlex.split(fields[5].split(">>")[0])
    assert command[0] == BINARY
    _run_here(command[1:], tmp_path, plan_file, {})


def _units() -> dict[str, configparser.ConfigParser]:
    units = {}
    for path in sorted((EXAMPLES / "systemd").iterdir()):
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read(path)
        units[path.name] = parser
    return units


def test_systemd_example(tmp_path: Path) -> None:
    units = _units()
    service, timer = units["platform-audit-poll.service"], units["platform-audit-poll.timer"]
    assert service["Service"]["Type"] == "oneshot"
    assert timer["Timer"]["OnCalendar"] == "minutely"
    command = shlex.split(service["Service"]["ExecStart"])
    assert command[0] == BINARY
    _run_here(command[1:], tmp_path, EXAMPLES / "cron" / "plan-weekly.yaml", {})
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    binary = shutil.which("platform-audit") or str(Path(PYTHON).parent / "platform-audit")
    written = []
    for path in (EXAMPLES / "systemd").iterdir():
        text = path.read_text().replace(BINARY, binary)
        written.append(tmp_path / path.name.replace("@.", "@1."))  # a template: one instance
        written[-1].write_text(text)
    checked = subprocess.run(
        ["systemd-analyze", "verify", *(str(p) for p in written)],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr


def test_systemd_worker_template() -> None:
    """The workers' template unit: a long-running worker per instance, stopped by SIGTERM
    with time to end its leases, its store URL from an environment file (never inline)."""
    unit = _units()["platform-audit-worker@.service"]["Service"]
    command = shlex.split(unit["ExecStart"])
    assert command[0] == BINARY and "worker" in command and "--until-idle" not in command
    assert unit["Type"] == "exec" and unit["KillSignal"] == "SIGTERM"
    assert unit["EnvironmentFile"] == "/etc/platform-audit/store.env"
    text = (EXAMPLES / "systemd" / "platform-audit-worker@.service").read_text()
    assert "postgresql://" not in unit["ExecStart"] and ":password@" not in text


def _documents() -> dict[str, dict[str, Any]]:
    text = (EXAMPLES / "kubernetes" / "cronjob.yaml").read_text()
    return {doc["kind"]: doc for doc in yaml.safe_load_all(text)}


def test_kubernetes_example(tmp_path: Path) -> None:
    docs = _documents()
    assert set(docs) == {"PersistentVolumeClaim", "ConfigMap", "CronJob"}
    cronjob = docs["CronJob"]
    assert cronjob["apiVersion"] == "batch/v1"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert (
        volumes["data"]["persistentVolumeClaim"]["claimName"]
        == (docs["PersistentVolumeClaim"]["metadata"]["name"])
    )
    assert volumes["plan"]["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"]
    assert f"{mounts['plan']}/plan-weekly.yaml" == PLAN
    plan_file = tmp_path / "plan-weekly.yaml"
    plan_file.write_text(docs["ConfigMap"]["data"]["plan-weekly.yaml"])
    _check_recurring(plan_file)
    env = {e["name"]: e.get("value", "") for e in container["env"]}
    assert env["PLATFORM_AUDIT_WORKSPACE"].startswith(mounts["data"])
    _run_here(container["args"], tmp_path, plan_file, {"PLATFORM_TOKEN": "example-token"})
    dockerfile = (EXAMPLES / "kubernetes" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["platform-audit"]' in dockerfile
    for copied in ("audit", "probes", "templates", "pyproject.toml"):
        assert (ROOT / copied).exists()
