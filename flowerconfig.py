"""Flower configuration, loaded by ``celery -A tasks flower`` from the working directory.

Flower applies ``FLOWER_*`` environment variables, then the command line, then executes this
file; every global here whose name is a Flower option overrides what came before, and the command
line is parsed once more afterwards. So this file only sets what the policy in
``tasks/flower_auth.py`` decides (address and credentials) and leaves every other option to
``FLOWER_*`` variables or flags. See docs/operations.md ("Flower").

    FLOWER_BASIC_AUTH=ops:secret celery -A tasks flower                 # 127.0.0.1:5555
    FLOWER_BASIC_AUTH=ops:secret FLOWER_ADDRESS=0.0.0.0 celery -A tasks flower
    FLOWER_ADDRESS=0.0.0.0 celery -A tasks flower      # refused: exit 1, no credentials
"""

import os as _os
import sys as _sys

from tornado.options import options as _parsed

from tasks.flower_auth import protect_metrics as _protect_metrics
from tasks.flower_auth import resolve_flower_settings as _resolve

_settings = _resolve(
    _os.environ,
    address=_parsed.address or "",
    basic_auth=_parsed.basic_auth,
    oauth=_parsed.auth or "",
    unix_socket=_parsed.unix_socket or "",
)

address = _settings.address
if _settings.basic_auth:
    basic_auth = _settings.basic_auth
if _settings.authenticated:
    _protect_metrics()  # /metrics too (upstream leaves it open); /healthcheck stays open
if _settings.warning:
    _bar = "!" * len(_settings.warning)
    print(f"{_bar}\n{_settings.warning}\n{_bar}", file=_sys.stderr, flush=True)
