"""Structured logs: one JSON object a line (or plain text), with secrets blanked.

Events come from twisted.logger. Fields whose names suggest a credential are replaced
with ``<redacted>`` whatever a caller passed, as a last guard behind the callers' care.
"""

from __future__ import annotations

import json
import sys
import time
from typing import IO

from twisted.logger import (FilteringLogObserver, LogLevel, LogLevelFilterPredicate, formatEvent,
                            globalLogBeginner, globalLogPublisher)

_LEVELS = {"debug": LogLevel.debug, "info": LogLevel.info, "warn": LogLevel.warn, "error": LogLevel.error}
_SECRET_WORDS = ("password", "token", "secret", "authorization", "api_key", "access_key")


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def _fields(event: dict) -> dict:
    fields = {}
    for key, value in event.items():
        if key.startswith("log_") or key in ("format", "message", "isError", "failure", "why"):
            continue
        if _is_secret(key):
            value = "<redacted>"
        elif not isinstance(value, (str, int, float, bool, type(None))):
            value = repr(value)
        fields[key] = value
    return fields


def _safe_event(event: dict) -> dict:
    """The event with secret-looking fields blanked, so formatting cannot leak them."""
    return {k: ("<redacted>" if _is_secret(k) and not k.startswith("log_") else v) for k, v in event.items()}


class JsonObserver:
    def __init__(self, stream: IO[str]):
        self._stream = stream

    def __call__(self, event: dict) -> None:
        safe = _safe_event(event)
        level = event.get("log_level", LogLevel.info)
        record = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(event.get("log_time", time.time())))
                  + f".{int((event.get('log_time', 0) % 1) * 1000):03d}Z",
            "level": level.name,
            "logger": event.get("log_namespace", ""),
            "msg": formatEvent(safe) or "",
        }
        record.update(_fields(event))
        failure = event.get("log_failure")
        if failure is not None:
            record["error"] = failure.getErrorMessage()
            record["traceback"] = failure.getTraceback()
        self._stream.write(json.dumps(record, default=repr) + "\n")
        self._stream.flush()


class TextObserver:
    def __init__(self, stream: IO[str]):
        self._stream = stream

    def __call__(self, event: dict) -> None:
        safe = _safe_event(event)
        level = event.get("log_level", LogLevel.info)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event.get("log_time", time.time())))
        line = f"{stamp} {level.name.upper():5} {event.get('log_namespace', '')}: {formatEvent(safe)}"
        failure = event.get("log_failure")
        if failure is not None:
            line += "\n" + failure.getTraceback()
        self._stream.write(line + "\n")
        self._stream.flush()


def setup_logging(config, stream: IO[str] | None = None) -> None:
    if stream is None:
        stream = open(config.logging.file, "a", encoding="utf-8") if config.logging.file else sys.stderr
    observer = JsonObserver(stream) if config.logging.format == "json" else TextObserver(stream)
    predicate = LogLevelFilterPredicate(defaultLogLevel=_LEVELS[config.logging.level])
    # Twisted's own chatter (factory starting, etc.) stays at warn and above.
    for noisy in ("twisted", "log_legacy", "autobahn"):
        predicate.setLogLevelForNamespace(noisy, LogLevel.warn)
    globalLogBeginner.beginLoggingTo([FilteringLogObserver(observer, [predicate])],
                                     redirectStandardIO=False, discardBuffer=True)


__all__ = ["setup_logging", "JsonObserver", "TextObserver", "globalLogPublisher"]
