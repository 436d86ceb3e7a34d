"""A local HTTP receiver that records what is POSTed to it (webhook and lineage tests)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Receiver", "receiver"]


@dataclass
class Receiver:
    url: str
    status: int = 200
    posts: list[tuple[str, Any]] = field(default_factory=list)  # (path, parsed JSON body)


@contextmanager
def receiver(status: int = 200) -> Iterator[Receiver]:
    """Listen on 127.0.0.1 (free port); every POST is parsed as JSON and kept."""
    rec = Receiver(url="", status=status)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            rec.posts.append((self.path, json.loads(body)))
            self.send_response(rec.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    rec.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
