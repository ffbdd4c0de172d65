"""User-interactive authentication (UIA): the 401 dance in front of sensitive actions.

Stages supported: ``m.login.dummy`` (registration) and ``m.login.password`` (proving
the account's password before changing it or deleting devices). A session is created
on the first call and kept in the database; ``m.login.dummy`` is also accepted with no
session at all, as matrix-nio sends it on its first registration call.
"""

from __future__ import annotations

import secrets
from typing import Awaitable, Callable

from homeserver.clock import Clock
from homeserver.http.errors import MatrixError
from homeserver.http.request import field
from storage.stores.ui_auth import UIAuthStore

SESSION_LIFETIME_MS = 30 * 60 * 1000

# (user_id, password) -> True when it is the account's password
PasswordCheck = Callable[[str, str], Awaitable[bool]]


class AuthRequired(MatrixError):
    """401 with the flows a client must complete; an errcode only after a failed try."""

    def __init__(self, flows: list[list[str]], session: str, completed: list[str],
                 errcode: str | None = None, error: str | None = None):
        super().__init__(401, errcode or "", error or "")
        self.body = {"flows": [{"stages": stages} for stages in flows], "params": {},
                     "session": session, "completed": completed}
        if errcode:
            self.body.update(errcode=errcode, error=error)

    def to_json(self) -> dict:
        return dict(self.body)


class UserInteractiveAuth:
    def __init__(self, clock: Clock, store: UIAuthStore):
        self._clock = clock
        self._store = store

    async def require(self, body: dict, purpose: str, flows: list[list[str]],
                      user_id: str | None = None, check_password: PasswordCheck | None = None) -> None:
        """Return when ``body['auth']`` completes one of ``flows``; raise AuthRequired otherwise."""
        auth = body.get("auth")
        if auth is None:
            raise AuthRequired(flows, await self._new_session(purpose, user_id), [])
        if not isinstance(auth, dict):
            raise MatrixError(400, "M_INVALID_PARAM", "'auth' must be an object")
        session_id = field(auth, "session", str, None)
        stage = field(auth, "type", str, None)

        completed: list[str] = []
        if session_id is not None:
            session = await self._store.get_session(session_id)
            now = self._clock.time_ms()
            if (session is None or session["purpose"] != purpose or session["user_id"] != user_id
                    or now - session["created_ts"] > SESSION_LIFETIME_MS):
                raise MatrixError(400, "M_UNKNOWN", "Unknown or expired user-interactive auth session")
            completed = session["completed"]
        elif stage != "m.login.dummy":
            session_id = await self._new_session(purpose, user_id)

        if stage is not None:
            if not any(stage in stages for stages in flows):
                raise AuthRequired(flows, session_id or await self._new_session(purpose, user_id),
                                   completed, "M_UNRECOGNIZED", f"Unsupported auth type {stage}")
            if not await self._stage_passes(stage, auth, user_id, check_password):
                raise AuthRequired(flows, session_id or await self._new_session(purpose, user_id),
                                   completed, "M_FORBIDDEN", "Invalid password")
            if stage not in completed:
                completed = completed + [stage]
                if session_id is not None:
                    await self._store.mark_completed(session_id, stage)

        if any(all(s in completed for s in stages) for stages in flows):
            if session_id is not None:
                await self._store.delete_session(session_id)
            return
        raise AuthRequired(flows, session_id or await self._new_session(purpose, user_id), completed)

    async def _new_session(self, purpose: str, user_id: str | None) -> str:
        session_id = secrets.token_urlsafe(18)
        now = self._clock.time_ms()
        await self._store.create_session(session_id, purpose, user_id, now)
        return session_id

    async def _stage_passes(self, stage: str, auth: dict, user_id: str | None,
                            check_password: PasswordCheck | None) -> bool:
        if stage == "m.login.dummy":
            return True
        if stage == "m.login.password":
            if user_id is None or check_password is None:
                return False
            password = field(auth, "password", str)
            claimed = _claimed_user(auth)
            if claimed is not None and claimed not in (user_id, user_id[1:].split(":", 1)[0]):
                return False
            return await check_password(user_id, password)
        return False


def _claimed_user(auth: dict) -> str | None:
    identifier = auth.get("identifier")
    if isinstance(identifier, dict) and isinstance(identifier.get("user"), str):
        return identifier["user"]
    user = auth.get("user")
    return user if isinstance(user, str) else None
