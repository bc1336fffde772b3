"""Start and stop a real Matrix Synapse homeserver on loopback for tests.

Synapse lives in its own virtualenv (``scripts/install-synapse.sh`` makes ``.venv-synapse`` at
the repo root; ``SYNAPSE_VENV`` overrides the location) and runs as a subprocess of the test
process::

    with running_synapse(tmp_path, ModerationPolicy(reject_patterns=("forbidden",))) as server:
        token = register_user(server, "author", "secret-pw")
        room_id = create_room(server, token)

The server is isolated: one HTTP listener (client + admin APIs) on 127.0.0.1 and a port picked
at runtime, SQLite in ``tmp_dir``, no federation listener, federation to no domain, no trusted
key servers, no URL previews, presence and stats reporting off, open registration off (users
are made through the shared-secret admin API) and rate limits raised for tests.

Errors: ``SynapseNotInstalledError`` when the venv is missing; ``SynapseStartError`` when the
server exits or is not ready in time (the message carries the tail of its logs).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from base64 import b64encode
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

__all__ = [
    "SERVER_NAME",
    "ModerationPolicy",
    "SynapseNotInstalledError",
    "SynapseServer",
    "SynapseStartError",
    "create_room",
    "join_room",
    "register_user",
    "room_path",
    "running_synapse",
    "synapse_python",
    "synapse_venv",
]

SERVER_NAME = "audit.test"
REPO_ROOT = Path(__file__).resolve().parents[2]
MODULE_DIR = Path(__file__).resolve().parent
HOST = "127.0.0.1"
STOP_TIMEOUT_SECONDS = 10.0
PORT_ATTEMPTS = 3
PORT_CLASH_SIGNS = ("Address already in use", "CannotListenError", "Failed to listen")
LOG_NAMES = ("synapse.stdout.log", "homeserver.log")
HIGH_RATE = {"per_second": 1000, "burst_count": 10000}


class SynapseNotInstalledError(RuntimeError):
    """The Synapse virtualenv is missing; run scripts/install-synapse.sh."""


class SynapseStartError(RuntimeError):
    """Synapse exited during startup or did not become ready in time."""


@dataclass(frozen=True)
class ModerationPolicy:
    """Configuration of the moderation module (tests/synapse/moderation.py)."""

    reject_patterns: tuple[str, ...] = ()
    redact_patterns: tuple[str, ...] = ()
    redact_delay_seconds: float = 2.0
    moderator_localpart: str = "moderator"


@dataclass(frozen=True)
class SynapseServer:
    base_url: str
    server_name: str
    registration_shared_secret: str = field(repr=False)
    pid: int
    moderation_log_path: Path
    log_path: Path
    data_dir: Path
    policy: ModerationPolicy

    def user_id(self, localpart: str) -> str:
        return f"@{localpart}:{self.server_name}"

    @property
    def moderator_user_id(self) -> str:
        return self.user_id(self.policy.moderator_localpart)

    def moderation_records(self) -> list[dict[str, Any]]:
        """The moderation module's decisions so far, in order."""
        if not self.moderation_log_path.exists():
            return []
        lines = self.moderation_log_path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]


def synapse_venv() -> Path:
    return Path(os.environ.get("SYNAPSE_VENV", REPO_ROOT / ".venv-synapse"))


def synapse_python() -> Path | None:
    """The Synapse venv's interpreter, or None if Synapse is not installed."""
    python = synapse_venv() / "bin" / "python"
    return python if python.exists() else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


# --- configuration -----------------------------------------------------------------------


def build_config(
    data_dir: Path, port: int, secret: str, policy: ModerationPolicy, message_limit: bool = False
) -> dict[str, Any]:
    """The homeserver config as a dict (written as JSON, which YAML accepts). With
    ``message_limit`` an ordinary account keeps Synapse's default rc_message (0.2 per second,
    a burst of 10: sends and redactions); the limits set-up needs are lifted either way."""
    return {
        "server_name": SERVER_NAME,
        "public_baseurl": f"http://{HOST}:{port}/",
        "pid_file": str(data_dir / "homeserver.pid"),
        "listeners": [
            {
                "port": port,
                "bind_addresses": [HOST],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],
            }
        ],
        "database": {"name": "sqlite3", "args": {"database": str(data_dir / "homeserver.db")}},
        "log_config": str(data_dir / "log.config.yaml"),
        "media_store_path": str(data_dir / "media_store"),
        "signing_key_path": str(data_dir / "signing.key"),
        "macaroon_secret_key": secrets.token_hex(32),
        "form_secret": secrets.token_hex(32),
        "registration_shared_secret": secret,
        "enable_registration": False,
        "report_stats": False,
        "enable_metrics": False,
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "federation_domain_whitelist": [],
        "url_preview_enabled": False,
        "presence": {"enabled": False},
        "user_directory": {"enabled": False},
        "include_profile_data_on_invite": False,
        **_rate_limits(message_limit),
        "modules": [
            {"module": "moderation.ModerationModule", "config": _module_config(data_dir, policy)}
        ],
    }


def _rate_limits(message_limit: bool = False) -> dict[str, Any]:
    limits = {
        "rc_message": HIGH_RATE,
        "rc_registration": HIGH_RATE,
        "rc_login": dict.fromkeys(("address", "account", "failed_attempts"), HIGH_RATE),
        "rc_joins": {"local": HIGH_RATE, "remote": HIGH_RATE},
        "rc_joins_per_room": HIGH_RATE,
        "rc_invites": dict.fromkeys(("per_room", "per_user", "per_issuer"), HIGH_RATE),
        "rc_admin_redaction": HIGH_RATE,
        "rc_room_creation": HIGH_RATE,
        "rc_delayed_event_mgmt": HIGH_RATE,
        "rc_reports": HIGH_RATE,
        "rc_profile": HIGH_RATE,
    }
    if message_limit:
        del limits["rc_message"]  # Synapse's default applies
    return limits


def _module_config(data_dir: Path, policy: ModerationPolicy) -> dict[str, Any]:
    return {
        "reject_patterns": list(policy.reject_patterns),
        "redact_patterns": list(policy.redact_patterns),
        "redact_delay_seconds": policy.redact_delay_seconds,
        "moderator_user_id": f"@{policy.moderator_localpart}:{SERVER_NAME}",
        "log_path": str(data_dir / "moderation.jsonl"),
    }


def _log_config(log_path: Path) -> dict[str, Any]:
    return {
        "version": 1,
        "formatters": {"precise": {"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}},
        "handlers": {
            "file": {
                "class": "logging.FileHandler",
                "formatter": "precise",
                "filename": str(log_path),
                "encoding": "utf8",
            }
        },
        "loggers": {"synapse.storage.SQL": {"level": "WARNING"}},
        "root": {"level": "INFO", "handlers": ["file"]},
        "disable_existing_loggers": False,
    }


def _write_signing_key(path: Path) -> None:
    """An ed25519 signing key in Synapse's format: '<alg> <version> <unpadded b64 seed>'."""
    seed = b64encode(secrets.token_bytes(32)).decode("ascii").rstrip("=")
    path.write_text(f"ed25519 a_{secrets.token_hex(2)} {seed}\n", encoding="utf-8")
    path.chmod(0o600)


def write_config(
    data_dir: Path, port: int, secret: str, policy: ModerationPolicy, message_limit: bool = False
) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "media_store").mkdir(exist_ok=True)
    signing_key = data_dir / "signing.key"
    if not signing_key.exists():
        _write_signing_key(signing_key)
    log_config = _log_config(data_dir / "homeserver.log")
    (data_dir / "log.config.yaml").write_text(json.dumps(log_config, indent=2), encoding="utf-8")
    config_path = data_dir / "homeserver.yaml"
    config = build_config(data_dir, port, secret, policy, message_limit)
    config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")
    config_path.chmod(0o600)
    return config_path


# --- process ------------------------------------------------------------------------------


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """Ask Linux to SIGTERM Synapse if the test process dies without cleaning up."""
    import ctypes

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def _spawn(python: Path, config_path: Path, data_dir: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(MODULE_DIR)  # not tests/: tests/synapse would shadow synapse
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    output = (data_dir / "synapse.stdout.log").open("ab")
    try:
        return subprocess.Popen(
            [str(python), "-m", "synapse.app.homeserver", "-c", str(config_path)],
            cwd=data_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    finally:
        output.close()


def _log_tail(data_dir: Path, lines: int = 40) -> str:
    parts = []
    for name in LOG_NAMES:
        path = data_dir / name
        if path.exists():
            tail = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
            parts.append(f"--- {name} (last {len(tail)} lines) ---\n" + "\n".join(tail))
    return "\n".join(parts) or "(no Synapse log was written)"


def _wait_ready(process: subprocess.Popen[bytes], base_url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SynapseStartError(f"Synapse exited with code {process.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if client.get(f"{base_url}/_matrix/client/versions").status_code == 200:
                    return
            time.sleep(0.1)
    raise SynapseStartError(f"Synapse was not ready at {base_url} within {timeout:.0f} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _set_logs_aside(data_dir: Path, suffix: str) -> None:
    """Keep a failed attempt's logs, under another name, out of the next attempt's way."""
    for name in LOG_NAMES:
        path = data_dir / name
        if path.exists():
            path.rename(path.with_name(f"{name}.{suffix}"))


def _port_clash(data_dir: Path) -> bool:
    tail = _log_tail(data_dir)
    return any(sign in tail for sign in PORT_CLASH_SIGNS)


def _start(
    python: Path,
    data_dir: Path,
    secret: str,
    policy: ModerationPolicy,
    timeout: float,
    message_limit: bool = False,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start Synapse and wait until it answers; retry on a fresh port if the port was taken."""
    for attempt in range(1, PORT_ATTEMPTS + 1):
        port = free_port()
        base_url = f"http://{HOST}:{port}"
        config = write_config(data_dir, port, secret, policy, message_limit)
        process = _spawn(python, config, data_dir)
        try:
            _wait_ready(process, base_url, timeout)
        except SynapseStartError as exc:
            _stop(process)
            if attempt < PORT_ATTEMPTS and _port_clash(data_dir):
                _set_logs_aside(data_dir, f"port-clash-{attempt}")
                continue
            raise SynapseStartError(f"{exc}\n{_log_tail(data_dir)}") from None
        except BaseException:
            _stop(process)
            raise
        return process, base_url
    raise AssertionError("unreachable")  # pragma: no cover


@contextlib.contextmanager
def running_synapse(
    tmp_dir: Path,
    policy: ModerationPolicy | None = None,
    *,
    startup_timeout: float = 60.0,
    message_limit: bool = False,
) -> Iterator[SynapseServer]:
    """Run Synapse with its data in ``tmp_dir`` for the duration of the ``with`` block."""
    python = synapse_python()
    if python is None:
        raise SynapseNotInstalledError(
            f"no Synapse virtualenv at {synapse_venv()}; run scripts/install-synapse.sh"
        )
    policy = policy or ModerationPolicy()
    data_dir = Path(tmp_dir)
    secret = secrets.token_hex(32)
    process, base_url = _start(python, data_dir, secret, policy, startup_timeout, message_limit)
    try:
        yield SynapseServer(
            base_url=base_url,
            server_name=SERVER_NAME,
            registration_shared_secret=secret,
            pid=process.pid,
            moderation_log_path=data_dir / "moderation.jsonl",
            log_path=data_dir / "homeserver.log",
            data_dir=data_dir,
            policy=policy,
        )
    finally:
        _stop(process)


# --- client helpers -----------------------------------------------------------------------


def room_path(room_id: str) -> str:
    """The client-API path of a room, with the room id escaped."""
    return f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}"


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _check(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code != 200:
        raise RuntimeError(f"{what} failed: HTTP {response.status_code} {response.text}")
    body: dict[str, Any] = response.json()
    return body


def register_user(server: SynapseServer, username: str, password: str, admin: bool = False) -> str:
    """Register ``username`` through the shared-secret admin API; return its access token."""
    url = f"{server.base_url}/_synapse/admin/v1/register"
    with httpx.Client(timeout=10.0) as client:
        nonce = _check(client.get(url), "GET register nonce")["nonce"]
        mac = hmac.new(server.registration_shared_secret.encode(), digestmod=hashlib.sha1)
        parts = (nonce, username, password, "admin" if admin else "notadmin")
        mac.update(b"\x00".join(part.encode("utf-8") for part in parts))
        payload = {
            "nonce": nonce,
            "username": username,
            "password": password,
            "admin": admin,
            "mac": mac.hexdigest(),
        }
        body = _check(client.post(url, json=payload), f"register {username!r}")
    token: str = body["access_token"]
    return token


def create_room(
    server: SynapseServer,
    token: str,
    *,
    invite: Sequence[str] = (),
    power_levels: Mapping[str, int] | None = None,
) -> str:
    """Create a private room, invite ``invite``, raise ``power_levels``; return the room id."""
    payload = {"preset": "private_chat", "invite": list(invite)}
    with httpx.Client(base_url=server.base_url, headers=_auth(token), timeout=10.0) as client:
        room_id: str = _check(
            client.post("/_matrix/client/v3/createRoom", json=payload), "createRoom"
        )["room_id"]
        if power_levels:
            path = f"{room_path(room_id)}/state/m.room.power_levels/"
            levels = _check(client.get(path), "GET power levels")
            levels.setdefault("users", {}).update(power_levels)
            _check(client.put(path, json=levels), "PUT power levels")
    return room_id


def join_room(server: SynapseServer, token: str, room_id: str) -> None:
    with httpx.Client(base_url=server.base_url, headers=_auth(token), timeout=10.0) as client:
        _check(client.post(f"{room_path(room_id)}/join", json={}), "join")
