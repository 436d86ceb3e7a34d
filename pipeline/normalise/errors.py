"""The one exception every parser in ``pipeline.normalise`` raises.

``InvalidValue`` subclasses ``ValueError`` so callers that already catch ``ValueError`` (the
provider template does) keep working, while callers that want the details read ``.field``,
``.value`` and ``.reason``. The offending value is kept as given, but its ``repr`` is truncated in
the message so a hostile multi-megabyte string never ends up in a log line whole.
"""

from __future__ import annotations

from typing import Any

from pipeline.errors import PipelineError

__all__ = ["InvalidValue"]

_REPR_LIMIT = 80


def _short_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # a hostile __repr__ must not hide the real error
        text = f"<unrepresentable {type(value).__name__}>"
    if len(text) > _REPR_LIMIT:
        text = text[: _REPR_LIMIT - 3] + "..."
    return text


class InvalidValue(PipelineError, ValueError):
    """A raw provider value that cannot be turned into the canonical form.

    Attributes:
        field: the canonical field being parsed ("key", "bpm", "isrc", ...).
        value: the raw value exactly as received.
        reason: a short human-readable explanation, safe to store in the database.
    """

    def __init__(self, field: str, value: Any, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"invalid {field} {_short_repr(value)}: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Celery pickles exceptions across processes; keep the three-argument constructor.
        return (type(self), (self.field, self.value, self.reason))
