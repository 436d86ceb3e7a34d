"""A local server that speaks every HTTP provider's real endpoints and shapes.

``serve`` blocks (the ``songnodes sandbox`` CLI); ``start_in_thread`` runs it in a background
thread for tests and the demo and returns a ``SandboxHandle``. See README.md for the catalogue
format and the knobs.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from providers.registry import configure_for_sandbox
from providers.sandbox.app import PROVIDERS, SandboxState, build_app
from providers.sandbox.catalogue import DEFAULT_CATALOGUE, Catalogue, load_catalogue
from providers.sandbox.knobs import Knobs, parse_knobs

__all__ = [
    "DEFAULT_CATALOGUE",
    "PROVIDERS",
    "Knobs",
    "SandboxHandle",
    "cli_main",
    "load_knobs",
    "serve",
    "start_in_thread",
]

KnobsSpec = dict[str, dict[str, Any]]


def load_knobs(spec: KnobsSpec | None) -> dict[str, Knobs]:
    """Knobs per provider from ``{"<provider>"|"*": {knob: value}}`` ("*" applies to all)."""
    spec = spec or {}
    default = parse_knobs(spec.get("*", {}))
    return {p: parse_knobs(spec.get(p, {}), default) for p in PROVIDERS}


def _state(catalogue: str | Path | Catalogue | None, knobs: KnobsSpec | None) -> SandboxState:
    cat = catalogue if isinstance(catalogue, Catalogue) else load_catalogue(catalogue)
    return SandboxState(cat, load_knobs(knobs))


def serve(
    catalogue: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 8765,
    knobs: KnobsSpec | None = None,
) -> dict[str, dict[str, int]]:
    """Serve until interrupted; prints and returns the request counts at exit."""
    state = _state(catalogue, knobs)
    config = uvicorn.Config(build_app(state), host=host, port=port, log_level="warning")
    uvicorn.Server(config).run()
    stats = state.stats.snapshot()
    print(json.dumps({"sandbox_stats": stats}), file=sys.stderr)
    return stats


def cli_main(
    catalogue: str | Path | None, host: str, port: int, config_path: str | Path | None
) -> None:
    """Entry for ``songnodes sandbox --catalogue FILE --port N [--config knobs.json]``."""
    knobs = json.loads(Path(config_path).read_text("utf-8")) if config_path else None
    base = f"http://{host}:{port}"
    print(f"sandbox on {base}; point providers at it with:", file=sys.stderr)
    for name, value in configure_for_sandbox(base).items():
        print(f"export {name}={value}", file=sys.stderr)
    serve(catalogue, host, port, knobs)


@dataclass
class SandboxHandle:
    base_url: str
    env: dict[str, str]
    state: SandboxState
    _server: uvicorn.Server = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    def stats(self) -> dict[str, dict[str, int]]:
        return self.state.stats.snapshot()

    def configure(self, provider: str, **knobs: Any) -> None:
        """Change knobs at runtime (through the HTTP control endpoint, as an operator would)."""
        r = httpx.post(f"{self.base_url}/_sandbox/config", json={provider: knobs}, timeout=5)
        r.raise_for_status()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> SandboxHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_in_thread(
    catalogue: str | Path | Catalogue | None = None,
    knobs: KnobsSpec | None = None,
    host: str = "127.0.0.1",
) -> SandboxHandle:
    """Start the sandbox on a free port in a daemon thread; returns once it accepts requests."""
    state = _state(catalogue, knobs)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this. Without it every response waited ~40 ms for a delayed
    # ACK (Nagle): asyncio only sets TCP_NODELAY on sockets it creates itself.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        build_app(state), log_level="warning", timeout_graceful_shutdown=1, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("sandbox did not start")
        time.sleep(0.01)
    base = f"http://{host}:{port}"
    return SandboxHandle(base, configure_for_sandbox(base), state, server, thread)
