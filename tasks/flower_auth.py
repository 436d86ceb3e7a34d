"""Flower's authentication policy, applied by ``flowerconfig.py`` when ``celery -A tasks flower``
starts (Flower loads ``flowerconfig.py`` from the working directory; ``--conf=FILE`` overrides).

The rule: Flower shows task arguments and can revoke tasks and shut workers down, so it never
listens on a non-loopback address without authentication.

* Credentials: ``FLOWER_BASIC_AUTH=user:password[,user2:password2]`` (Flower's own variable), or
  ``SONGNODES_FLOWER_USER`` + ``SONGNODES_FLOWER_PASSWORD`` (handy with secret stores that hold
  one value per variable). Flower's OAuth (``FLOWER_AUTH`` + ``FLOWER_OAUTH2_*``) also counts.
* Address: ``FLOWER_ADDRESS`` / ``--address``. Unset means loopback (Flower itself would bind
  every interface); set ``FLOWER_ADDRESS=0.0.0.0`` to expose it, which then requires credentials.
* No credentials on loopback: starts, with a loud warning. No credentials elsewhere: refuses to
  start (:class:`FlowerAuthError`, exit status 1 with the reason on stderr).
* Every page is behind the authentication, ``/metrics`` included: upstream Flower leaves its
  Prometheus endpoint open by design (mher/flower#1129), and it lists task names and worker
  hosts. :func:`protect_metrics` closes it. ``/healthcheck`` stays open: it answers "OK" and
  nothing else, which load balancers need without credentials.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "FlowerAuthError",
    "FlowerSettings",
    "is_loopback",
    "protect_metrics",
    "resolve_flower_settings",
]

log = logging.getLogger("songnodes.flower")

LOOPBACK_DEFAULT = "127.0.0.1"


class FlowerAuthError(SystemExit):
    """Flower would be reachable from the network without authentication (or creds are bad).

    A ``SystemExit`` subclass so that raising it from ``flowerconfig.py`` ends the process with
    status 1 and prints the message, instead of a traceback.
    """

    def __init__(self, message: str) -> None:
        super().__init__(f"songnodes flower: {message}")


@dataclass(frozen=True)
class FlowerSettings:
    """What ``flowerconfig.py`` hands to Flower."""

    address: str
    basic_auth: list[str]
    authenticated: bool
    warning: str | None = None


def is_loopback(address: str) -> bool:
    """True for ``localhost`` and loopback IPs; False for ``''``/``0.0.0.0`` and other hosts."""
    host = address.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def _credentials(env: Mapping[str, str], current: Sequence[str] | None) -> list[str]:
    creds = [c.strip() for c in (current or []) if c and c.strip()]
    user = env.get("SONGNODES_FLOWER_USER", "").strip()
    password = env.get("SONGNODES_FLOWER_PASSWORD", "")
    if user or password:
        if not (user and password):
            raise FlowerAuthError(
                "set both SONGNODES_FLOWER_USER and SONGNODES_FLOWER_PASSWORD (or neither)"
            )
        creds.append(f"{user}:{password}")
    for cred in creds:
        name, sep, secret = cred.partition(":")
        if not (sep and name and secret):
            raise FlowerAuthError(
                "FLOWER_BASIC_AUTH entries must look like user:password (non-empty both)"
            )
    return creds


def resolve_flower_settings(
    env: Mapping[str, str],
    address: str,
    basic_auth: Sequence[str] | None,
    oauth: str = "",
    unix_socket: str = "",
) -> FlowerSettings:
    """Apply the policy to what Flower parsed from env/CLI so far; raise if it is unsafe."""
    creds = _credentials(env, basic_auth)
    authenticated = bool(creds or oauth)
    bind = address.strip() or LOOPBACK_DEFAULT
    local = bool(unix_socket) or is_loopback(bind)
    if authenticated:
        return FlowerSettings(bind, creds, True)
    if not local:
        raise FlowerAuthError(
            f"refusing to serve Flower on non-loopback address {bind!r} without authentication. "
            "Set FLOWER_BASIC_AUTH=user:password (or SONGNODES_FLOWER_USER and "
            "SONGNODES_FLOWER_PASSWORD), or bind to 127.0.0.1."
        )
    warning = (
        "!!! Flower is running WITHOUT AUTHENTICATION on "
        f"{unix_socket or bind}. Anyone with local access can read task arguments, revoke tasks "
        "and shut workers down. Set FLOWER_BASIC_AUTH=user:password. !!!"
    )
    return FlowerSettings(bind, [], False, warning)


def protect_metrics() -> None:
    """Put Flower's ``/metrics`` behind the same check as every other page (idempotent).

    Flower's views use tornado's ``@authenticated`` (which calls Flower's basic-auth/OAuth
    ``get_current_user``); its ``Metrics`` view does not. Wrapping the handler method is the
    smallest change that reuses Flower's own check instead of writing a second one."""
    import tornado.web
    from flower.views.monitor import Metrics

    if getattr(Metrics.get, "_songnodes_protected", False):
        return
    protected = tornado.web.authenticated(Metrics.get)
    protected._songnodes_protected = True  # type: ignore[attr-defined]
    Metrics.get = protected
