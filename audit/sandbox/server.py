"""Serving the reference sandbox over real HTTP on loopback (uvicorn)."""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType

import uvicorn

from audit.clock import Clock
from audit.errors import RuntimeFailure
from audit.sandbox.app import SandboxPlatform, create_app
from audit.sandbox.moderation import SandboxConfig

__all__ = ["SandboxServer", "default_state_path", "free_port", "serve_forever"]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def default_state_path() -> Path:
    """A state file in a new temporary folder (``sandbox serve`` without ``--state``)."""
    return Path(tempfile.mkdtemp(prefix="platform-audit-sandbox-")) / "sandbox-state.sqlite"


class SandboxServer:
    """The sandbox on a real loopback socket, in a background thread of this process."""

    def __init__(
        self,
        config: SandboxConfig,
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        state_path: Path | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._app = create_app(config, clock, state_path)
        self._config = uvicorn.Config(
            self._app,
            host=host,
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        self._server = uvicorn.Server(self._config)
        self._thread = threading.Thread(target=self._server.run, name="sandbox", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def platform(self) -> SandboxPlatform:
        platform: SandboxPlatform = self._app.state.platform
        return platform

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._server.started:
                return
            if not self._thread.is_alive():
                break
            time.sleep(0.02)
        raise RuntimeFailure(f"the reference sandbox did not start on {self.base_url}")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve_forever(config: SandboxConfig, host: str, port: int, state_path: Path) -> None:
    """Serve in the foreground until interrupted (``platform-audit sandbox serve``).

    The state lives in ``state_path``, reopened if it exists (see :mod:`audit.sandbox.state`).
    """
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise RuntimeFailure("the reference sandbox only listens on loopback")
    app = create_app(config, state_path=state_path)
    uvicorn.run(app, host=host, port=port, log_level="info", lifespan="off")


def wait_ready(base_url: str, timeout: float = 15.0) -> None:
    import httpx  # here, not at the top: `sandbox serve` never needs it

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/_sandbox/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeFailure(f"the reference sandbox at {base_url} did not become ready")
