"""Reading the registrations named in ``appservice.config_files`` at startup, and
creating each service's sender user once the database is open.

A registration that cannot be read or used stops the homeserver: ``RegistrationError``
(a ``ValueError``) from ``Homeserver(...)`` is reported by ``drocsid run`` as one line
naming the file and the field, with exit status 1.
"""

from __future__ import annotations

import hmac
import re
import secrets
from pathlib import Path

from appservice.registration import (Registration, RegistrationError, check_unique, parse_registration,
                                     parse_registration_text)


def registration_paths(config) -> list[Path]:
    """The files of ``appservice.config_files``, relative ones from the config file's folder."""
    return [Path(config.base_dir) / name for name in config.appservice.config_files]


def load_registrations(config) -> list[Registration]:
    """Every registration of the configuration, checked, or RegistrationError."""
    registrations = []
    for path in registration_paths(config):
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise RegistrationError(f"application service registration {path} does not exist") from None
        except (OSError, UnicodeDecodeError) as error:
            raise RegistrationError(f"cannot read application service registration {path}: {error}") from None
        try:
            registrations.append(parse_registration_text(text, config.server_name, str(path)))
        except RegistrationError as error:
            raise RegistrationError(f"invalid application service registration {error}") from None
    try:
        check_unique(registrations)
    except RegistrationError as error:
        raise RegistrationError(f"invalid application service registration {error}") from None
    return registrations


async def create_sender_users(db, registrations: list[Registration], now_ms: int) -> list[str]:
    """Create the sender user of each registration that has none yet; returns those created."""
    from storage.stores import users as user_sql

    def txn_func(txn) -> list[str]:
        created = []
        for registration in registrations:
            if user_sql.insert_user_txn(txn, registration.sender, None, now_ms, appservice_id=registration.id):
                created.append(registration.sender)
        return created

    if not registrations:
        return []
    return await db.run_interaction("create_appservice_senders", txn_func)


def registration_for_token(registrations: list[Registration], token: str) -> Registration | None:
    found = None
    for registration in registrations:
        if hmac.compare_digest(registration.as_token.encode(), token.encode()):
            found = registration
    return found


def exclusive_owner(registrations: list[Registration], user_id: str) -> Registration | None:
    """The service whose exclusive users namespace (or sender) covers ``user_id``."""
    for registration in registrations:
        if registration.claims_user(user_id):
            return registration
    return None


def check_alias_not_claimed(registrations: list[Registration], alias: str, appservice_id: str | None) -> None:
    """400 M_EXCLUSIVE when another service's exclusive aliases namespace covers ``alias``
    (``appservice_id``: the service asking, which may use its own namespace)."""
    from homeserver.http.errors import MatrixError

    for registration in registrations:
        if registration.id != appservice_id and registration.claims_alias(alias):
            raise MatrixError(400, "M_EXCLUSIVE", "This room alias is reserved by an application service")


WEBHOOKS_SERVICE_ID = "io.drocsid.webhooks"


def webhook_registration(server_name: str) -> Registration:
    """The homeserver's own service for /api/v1 webhooks: their virtual users
    (``@_webhook_<id>``) sit in an exclusive users namespace like a bridge's ghosts, so
    nobody registers one and they show as bots. It receives nothing (``url`` null) and its
    tokens are random for each process: only the homeserver acts for it."""
    return parse_registration({
        "id": WEBHOOKS_SERVICE_ID, "url": None, "as_token": secrets.token_urlsafe(32),
        "hs_token": secrets.token_urlsafe(32), "sender_localpart": "_webhooks",
        "namespaces": {"users": [{"regex": "@_webhook_.*:" + re.escape(server_name), "exclusive": True}]},
    }, server_name, "built-in webhooks service")
