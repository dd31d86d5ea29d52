"""Request IDs and the access line each request writes, alike in both apps."""

from __future__ import annotations

import json
import logging
import os
import random
import re
import sys

# A request ID we accept from a client: short, and nothing that could forge a log line.
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id(header_value: str | None) -> str:
    """The client's X-Request-ID when it is safe to echo and log, else a new one."""
    if header_value and _SAFE_ID.fullmatch(header_value):
        return header_value
    # Unique, not secret: uuid4's os.urandom call releases the GIL under load.
    return f"{random.getrandbits(128):032x}"


def access_logger() -> logging.Logger:
    """One JSON line per request on stdout; ACCESS_LOG=0 turns it off (benchmarks do)."""
    logger = logging.getLogger("lab.access")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
        enabled = os.environ.get("ACCESS_LOG", "1") != "0"
        logger.setLevel(logging.INFO if enabled else logging.WARNING)
    return logger


def log_access(
    logger: logging.Logger, request_id_: str, method: str, path: str, status: int, seconds: float
) -> None:
    if logger.isEnabledFor(logging.INFO):
        logger.info(
            json.dumps(
                {
                    "request_id": request_id_,
                    "method": method,
                    "path": path,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 3),
                }
            )
        )
