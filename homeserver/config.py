"""Configuration: a declared schema, a TOML file, and DROCSID__SECTION__KEY overrides.

Every key has a type, a default and a line of documentation (docs/configuration.md is
written from the same table). Unknown or ill-typed keys stop the start and name the key.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

ENV_PREFIX = "DROCSID__"


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key."""


@dataclass(frozen=True)
class Option:
    kind: str  # "str", "int", "float", "bool", "list"
    default: Any
    doc: str
    secret: bool = False


def _opt(kind: str, default: Any, doc: str, secret: bool = False) -> Option:
    return Option(kind, default, doc, secret)


# The contract of DESIGN.md section 5, plus what the homeserver needs besides.
TOP_LEVEL: dict[str, Option] = {
    "data_dir": _opt("str", "./data", "Where the signing key, SQLite database and media live."
                     " Relative paths are taken from the configuration file's folder."),
}

SCHEMA: dict[str, dict[str, Option]] = {
    "instance": {
        "domain": _opt("str", "localhost:8008", "The server name in every ID (`example.org` or `host:port`)."),
        "name": _opt("str", "Drocsid", "Display name of the instance."),
    },
    "server": {
        "host": _opt("str", "127.0.0.1", "Address of the client listener (Matrix client API, /api/v1, /gateway, media)."),
        "port": _opt("int", 8008, "Port of the client listener; 0 picks a free port (logged at start)."),
        "public_baseurl": _opt("str", "http://localhost:8008", "How clients reach this server."),
        "x_forwarded": _opt("bool", False, "Trust X-Forwarded-For from a reverse proxy for the client address."),
        "cors_allow_origin": _opt("str", "*", "Access-Control-Allow-Origin sent on every response."),
        "shutdown_grace_secs": _opt("float", 10.0, "On SIGTERM, how long in-flight requests may take to finish."),
    },
    "federation": {
        "enabled": _opt("bool", True, "Serve and send federation."),
        "host": _opt("str", "0.0.0.0", "Address of the TLS federation listener."),
        "port": _opt("int", 8448, "Port of the TLS federation listener."),
        "tls_certificate": _opt("str", "", "PEM certificate; empty: a self-signed pair generated in the data dir."),
        "tls_private_key": _opt("str", "", "PEM private key; empty: generated beside the certificate."),
        "verify_certificates": _opt("bool", True, "Check remote servers' TLS certificates."),
        "insecure_destinations": _opt("list", [], "Server names whose TLS certificates are not checked even when"
                                      " `verify_certificates` is on (test peers with self-signed certificates)."),
        "ip_range_denylist": _opt("list", ["127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                           "100.64.0.0/10", "169.254.0.0/16", "192.0.0.0/24", "198.18.0.0/15",
                                           "0.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4", "::1/128", "fe80::/10",
                                           "fc00::/7", "::/128", "ff00::/8"],
                                  "CIDRs outbound federation requests never connect to (private ranges)."),
        "ip_range_allowlist": _opt("list", [], "CIDRs exempt from the outbound deny list (loopback for tests)."),
        "trusted_key_servers": _opt("list", [], "Notary servers asked for remote signing keys, e.g."
                                    " `[\"matrix.org\"]`; empty: ask each server for its own keys."),
        "max_transaction_pdus": _opt("int", 50, "Most PDUs accepted in, and sent in, one transaction."),
        "max_transaction_edus": _opt("int", 100, "Most EDUs accepted in, and sent in, one transaction."),
        "retry_min_secs": _opt("float", 5.0, "First backoff after a destination fails; doubles up to the maximum."),
        "retry_max_secs": _opt("float", 3600.0, "Longest backoff between attempts to reach a down destination."),
        "allow_public_rooms": _opt("bool", True, "Serve this server's public room directory to other servers."),
    },
    "database": {
        "url": _opt("str", "", "`sqlite:///relative/drocsid.db`, `sqlite:////absolute/drocsid.db` or"
                    " `postgres://user:pass@host:port/db`; empty: SQLite at <data_dir>/drocsid.db.", secret=True),
        "max_connections": _opt("int", 20, "Connection pool size (PostgreSQL; SQLite uses one writer)."),
    },
    "redis": {
        "url": _opt("str", "", "Redis for fan-out between worker processes; empty: one process, in-process fan-out.",
                    secret=True),
    },
    "media": {
        "path": _opt("str", "", "Local media store; empty: <data_dir>/media."),
        "max_upload_bytes": _opt("int", 50 * 1024 * 1024, "Largest accepted upload."),
    },
    "appservice": {
        "config_files": _opt("list", [], "Application-service registration YAML files."),
    },
    "auth": {
        "registration_enabled": _opt("bool", True, "Whether anyone may register an account."),
        "password_min_length": _opt("int", 8, "Shortest accepted password."),
        "access_token_ttl_secs": _opt("int", 900, "Lifetime of access tokens issued with a refresh token."),
        "refresh_token_ttl_secs": _opt("int", 2592000, "Lifetime of refresh tokens (30 days)."),
        "password_hash_time_cost": _opt("int", 3, "Argon2id iterations."),
        "password_hash_memory_kib": _opt("int", 65536, "Argon2id memory in KiB."),
        "password_hash_parallelism": _opt("int", 2, "Argon2id lanes."),
    },
    "rooms": {
        "default_version": _opt("str", "11", "Room version of new rooms (10, 11 or 12)."),
    },
    "limits": {
        "max_request_body_bytes": _opt("int", 1024 * 1024, "Largest request body outside media uploads (413 beyond)."),
        "login_per_second": _opt("float", 0.1, "Login attempts per second per client address."),
        "login_burst": _opt("int", 10, "Login attempts a client address may make at once."),
        "login_failures_per_second": _opt("float", 0.05, "Failed login attempts per second per account."),
        "login_failures_burst": _opt("int", 5, "Failed login attempts an account may take at once."),
        "register_per_second": _opt("float", 0.17, "Registrations per second per client address."),
        "register_burst": _opt("int", 5, "Registrations a client address may make at once."),
        "message_send_per_second": _opt("float", 1.0, "/api/v1 messages a user may send per second, sustained"
                                        " (the original: 10 per 10 s)."),
        "message_send_burst": _opt("int", 10, "/api/v1 messages a user may send at once."),
        "webhook_per_second": _opt("float", 0.5, "Executions per second per webhook, sustained"
                                   " (the original: 30 per minute)."),
        "webhook_burst": _opt("int", 30, "Executions a webhook may take at once."),
    },
    "gateway": {
        "heartbeat_interval_ms": _opt("int", 41250, "Heartbeat interval announced in HELLO; a socket that sends"
                                      " nothing for 1.5 intervals is closed."),
        "resume_window_secs": _opt("int", 300, "How long after a disconnect a gateway session may be resumed."),
        "max_sessions_per_user": _opt("int", 16, "Concurrent gateway sessions one user may hold."),
    },
    "web_client": {
        "enabled": _opt("bool", True, "Serve the Drocsid web client at `/` on the client listener."),
        "static_dir": _opt("str", "", "Serve the client from this directory instead of the built-in one"
                           " (read afresh on every request: for working on the client)."),
    },
    "logging": {
        "level": _opt("str", "info", "debug, info, warn or error."),
        "format": _opt("str", "json", "`json` (one object a line) or `text`."),
        "file": _opt("str", "", "Log file; empty: standard error."),
    },
    "livekit": {
        "url": _opt("str", "ws://localhost:7880", "LiveKit as the homeserver reaches it."),
        "public_url": _opt("str", "ws://localhost:7880", "LiveKit as clients reach it."),
        "api_key": _opt("str", "", "LiveKit API key.", secret=True),
        "api_secret": _opt("str", "", "LiveKit API secret.", secret=True),
    },
    "s3": {
        "endpoint": _opt("str", "", "S3-compatible endpoint; empty: media stays on local disk."),
        "region": _opt("str", "us-east-1", "S3 region."),
        "bucket": _opt("str", "", "Bucket for uploads."),
        "access_key": _opt("str", "", "S3 access key.", secret=True),
        "secret_key": _opt("str", "", "S3 secret key.", secret=True),
        "public_url": _opt("str", "", "Public base URL of the bucket, if any."),
    },
    "email": {
        "resend_api_key": _opt("str", "", "Resend API key (HTTP mailer).", secret=True),
        "resend_base_url": _opt("str", "https://api.resend.com", "Resend API base; mail is POSTed to"
                                " `{resend_base_url}/emails`."),
        "from_address": _opt("str", "", "Sender address of outgoing mail."),
        "reset_token_ttl_secs": _opt("int", 1800, "Lifetime of password-reset tokens."),
        "smtp_host": _opt("str", "", "SMTP relay; used when no Resend key is set."),
        "smtp_port": _opt("int", 587, "SMTP port."),
        "smtp_user": _opt("str", "", "SMTP user name."),
        "smtp_password": _opt("str", "", "SMTP password.", secret=True),
        "smtp_starttls": _opt("bool", True, "Require STARTTLS on the SMTP connection."),
    },
    "gif": {
        "provider": _opt("str", "giphy", "GIF search provider."),
        "api_key": _opt("str", "", "Provider API key; empty: GIF search disabled.", secret=True),
        "rating": _opt("str", "pg-13", "Content rating passed to the provider (g, pg, pg-13 or r)."),
        "base_url": _opt("str", "https://api.giphy.com", "Provider API base; Giphy is asked at"
                         " `{base_url}/v1/gifs/search` and `/v1/gifs/trending`."),
        "timeout_secs": _opt("float", 5.0, "How long a provider request may take before the answer is 502."),
        "cache_ttl_secs": _opt("int", 300, "How long a successful provider answer is reused; 0: no cache."),
        "per_user_per_second": _opt("float", 1.0, "GIF searches a user may make per second, sustained;"
                                    " 0: no limit."),
        "burst": _opt("int", 10, "GIF searches a user may make at once."),
    },
}

_CHOICES = {
    ("logging", "level"): ("debug", "info", "warn", "error"),
    ("logging", "format"): ("json", "text"),
    ("rooms", "default_version"): ("10", "11", "12"),
    ("gif", "provider"): ("giphy",),
    ("gif", "rating"): ("g", "pg", "pg-13", "r"),
}


class Section:
    """The values of one section, as attributes."""

    def __init__(self, name: str, values: Mapping[str, Any]):
        self._name = name
        self.__dict__.update(values)

    def __repr__(self) -> str:
        return f"<Section {self._name}>"


class Config:
    """A validated configuration; sections are attributes (``config.server.port``)."""

    def __init__(self, values: dict[str, dict[str, Any]], data_dir: Path, source: Path | None, base_dir: Path):
        self.source = source
        self.data_dir = data_dir
        self.base_dir = base_dir
        for name, section in values.items():
            setattr(self, name, Section(name, section))

    @property
    def server_name(self) -> str:
        return self.instance.domain

    @property
    def database_url(self) -> str:
        """The database URL, with a relative SQLite path made absolute from ``base_dir``."""
        url = self.database.url
        if not url:
            return f"sqlite:///{self.data_dir / 'drocsid.db'}"
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            return f"sqlite:///{self.base_dir / url[len('sqlite:///'):]}"
        return url

    @property
    def media_path(self) -> Path:
        return self.base_dir / self.media.path if self.media.path else self.data_dir / "media"

    @property
    def signing_key_path(self) -> Path:
        return self.data_dir / "signing.key"


def _check_type(key: str, option: Option, value: Any) -> Any:
    kind = option.kind
    if kind == "str" and isinstance(value, str):
        return value
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "list" and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    wanted = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false",
              "list": "a list of strings"}[kind]
    raise ConfigError(f"configuration key {key} must be {wanted}, not {value!r}")


def _parse_env(key: str, option: Option, raw: str) -> Any:
    kind = option.kind
    try:
        if kind == "str":
            return raw
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if raw.strip().startswith("["):
            parsed = json.loads(raw)
            return _check_type(key, option, parsed)
        return [part.strip() for part in raw.split(",") if part.strip()]
    except (ValueError, json.JSONDecodeError):
        raise ConfigError(f"environment variable for {key} must be {kind}, not {raw!r}") from None


def _env_key(name: str) -> tuple[str | None, str]:
    rest = name[len(ENV_PREFIX):].lower()
    if "__" in rest:
        section, key = rest.split("__", 1)
        return section, key
    return None, rest


def load_config(path: str | os.PathLike | None, environ: Mapping[str, str] | None = None) -> Config:
    """Defaults, then the TOML file (if any), then environment overrides."""
    environ = os.environ if environ is None else environ
    source = Path(path).resolve() if path is not None else None
    raw: dict[str, Any] = {}
    if source is not None:
        try:
            with open(source, "rb") as handle:
                raw = tomllib.load(handle)
        except FileNotFoundError:
            raise ConfigError(f"configuration file {source} does not exist") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"configuration file {source} is not valid TOML: {error}") from None

    values = {name: {key: opt.default for key, opt in section.items()} for name, section in SCHEMA.items()}
    top = {key: opt.default for key, opt in TOP_LEVEL.items()}

    for name, body in raw.items():
        if name in TOP_LEVEL:
            top[name] = _check_type(name, TOP_LEVEL[name], body)
            continue
        if name not in SCHEMA:
            raise ConfigError(f"unknown configuration key {name}")
        if not isinstance(body, dict):
            raise ConfigError(f"configuration key {name} must be a table")
        for key, value in body.items():
            option = SCHEMA[name].get(key)
            if option is None:
                raise ConfigError(f"unknown configuration key {name}.{key}")
            values[name][key] = _check_type(f"{name}.{key}", option, value)

    for env_name, env_value in environ.items():
        if not env_name.startswith(ENV_PREFIX):
            continue
        section, key = _env_key(env_name)
        if section is None:
            if key not in TOP_LEVEL:
                raise ConfigError(f"unknown configuration key {key} (from {env_name})")
            top[key] = _parse_env(key, TOP_LEVEL[key], env_value)
            continue
        option = SCHEMA.get(section, {}).get(key)
        if option is None:
            raise ConfigError(f"unknown configuration key {section}.{key} (from {env_name})")
        values[section][key] = _parse_env(f"{section}.{key}", option, env_value)

    for (section, key), choices in _CHOICES.items():
        if values[section][key] not in choices:
            raise ConfigError(f"configuration key {section}.{key} must be one of {', '.join(choices)}")
    for section, key in (("server", "port"), ("federation", "port")):
        if not 0 <= values[section][key] <= 65535:
            raise ConfigError(f"configuration key {section}.{key} must be a port number (0-65535)")
    if values["database"]["max_connections"] < 1:
        raise ConfigError("configuration key database.max_connections must be at least 1")
    if not values["instance"]["domain"]:
        raise ConfigError("configuration key instance.domain must not be empty")

    base = source.parent if source is not None else Path.cwd()
    data_dir = (base / top["data_dir"]).resolve()
    return Config(values, data_dir, source, base)


def render_toml(server_name: str, data_dir: str) -> str:
    """A commented configuration file with every key at its default."""
    lines = [
        "# Drocsid homeserver configuration. Every key may be overridden with an",
        "# environment variable DROCSID__SECTION__KEY (e.g. DROCSID__SERVER__PORT=8010).",
        "",
        f"# {TOP_LEVEL['data_dir'].doc}",
        f"data_dir = {_toml_value(data_dir)}",
    ]
    for name, section in SCHEMA.items():
        lines += ["", f"[{name}]"]
        for key, option in section.items():
            value = server_name if (name, key) == ("instance", "domain") else option.default
            lines.append(f"# {option.doc}")
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value)


def env_name(section: str | None, key: str) -> str:
    return f"{ENV_PREFIX}{section.upper()}__{key.upper()}" if section else f"{ENV_PREFIX}{key.upper()}"


def render_markdown() -> str:
    """The reference table of docs/configuration.md, from the schema itself."""
    lines = []
    for section, options in [(None, TOP_LEVEL)] + list(SCHEMA.items()):
        lines += ["", f"### `{section or 'top level'}`", "",
                  "| key | environment variable | type | default | meaning |", "|---|---|---|---|---|"]
        for key, option in options.items():
            name = f"{section}.{key}" if section else key
            default = _toml_value(option.default) if option.default not in ("", []) else "(empty)"
            secret = " Secret: never logged." if option.secret else ""
            lines.append(f"| `{name}` | `{env_name(section, key)}` | {option.kind} | `{default}` | "
                         f"{option.doc}{secret} |")
    return "\n".join(lines).strip() + "\n"
