"""``/auth``: register, login, refresh and logout in the original's shapes.

The tokens are the Matrix face's tokens (one device per session), so a token from here
works on ``/_matrix/client`` and the other way round. Sessions from here always carry a
refresh token, as the original's do. Rate limits share their buckets with the Matrix
face, so using both faces does not double an attacker's budget.
"""

from __future__ import annotations

import re

from twisted.logger import Logger

from homeserver.api.routes import ApiCall, ApiRoutes
from homeserver.api.users import user_object
from homeserver.drocsid import invites
from homeserver.handlers.accounts import Session
from homeserver.http.errors import MatrixError, forbidden, invalid_param

log = Logger(namespace="api.auth")

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

REGISTER_BODY = {
    "type": "object",
    "required": ["username", "password"],
    "properties": {
        "username": {"type": "string", "minLength": 2, "maxLength": 32,
                     "description": "The localpart of the new Matrix ID: a-z, 0-9, '.', '_', '=', '-', '/', '+'"},
        "password": {"type": "string", "description": "At least auth.password_min_length (8) characters"},
        "email": {"type": "string", "maxLength": 254,
                  "description": "Stored unverified; a verification link is mailed to it"},
        "display_name": {"type": ["string", "null"], "minLength": 1, "maxLength": 32},
        "invite_code": {"type": ["string", "null"], "maxLength": 64,
                        "description": "A server invite code of this instance: the new account joins that "
                                       "server; it also opens registration when auth.registration_enabled is off"},
        "device_name": {"type": "string", "maxLength": 256},
    },
}

LOGIN_BODY = {
    "type": "object",
    "required": ["username", "password"],
    "properties": {
        "username": {"type": "string", "description": "A username (localpart) or a Matrix user ID of this server"},
        "password": {"type": "string"},
        "device_name": {"type": "string", "maxLength": 256},
    },
}

REFRESH_BODY = {
    "type": "object",
    "required": ["refresh_token"],
    "properties": {"refresh_token": {"type": "string"}},
}

TOKEN_PAIR = {
    "type": "object",
    "required": ["access_token", "refresh_token", "expires_in_ms"],
    "properties": {
        "access_token": {"type": "string"},
        "refresh_token": {"type": "string", "description": "Single use: refreshing retires it"},
        "expires_in_ms": {"type": "integer", "description": "Lifetime of the access token"},
    },
}


def token_pair(session: Session) -> dict:
    return {"access_token": session.access_token, "refresh_token": session.refresh_token,
            "expires_in_ms": session.expires_in_ms}


def register(api: ApiRoutes, hs) -> None:
    limits = hs.config.limits
    pair_ref = api.schema("TokenPair", TOKEN_PAIR)
    auth_ref = api.schema("AuthResponse", {
        "allOf": [pair_ref, {"type": "object", "required": ["user"],
                             "properties": {"user": {"$ref": "#/components/schemas/User"}}}]})

    async def session_answer(session: Session) -> dict:
        return {**token_pair(session), "user": await user_object(hs, session.user_id)}

    async def register_account(call: ApiCall):
        body = call.body
        code = body.get("invite_code") or None
        if code is not None:
            await invites.usable_invite(hs, code)  # 404 before anything is written
        elif not hs.config.auth.registration_enabled:
            raise forbidden("Registration is disabled on this server")
        # Every check before the write, so a refused registration leaves nothing behind.
        await hs.accounts.check_username_available(body["username"])
        hs.accounts.check_password_strength(body["password"])
        if "email" in body and not _EMAIL.match(body["email"]):
            raise invalid_param("'email' is not an email address")
        ip = call.request.client_ip()
        hs.ratelimiter.check("register", ip, limits.register_per_second, limits.register_burst)
        user_id, session = await hs.accounts.register(
            body["username"], body["password"], device_name=body.get("device_name"), want_refresh=True, ip=ip)
        if body.get("display_name"):
            await hs.profiles_handler.set_field(user_id, "displayname", body["display_name"])
        if "email" in body:
            await hs.email.set_address(user_id, body["email"].lower())  # see homeserver/mail/service.py
        if code is not None:
            try:
                await invites.admit_local(hs, code, user_id)
            except MatrixError as error:
                # The account exists; the code was used up meanwhile. Say so, keep the account.
                log.info("invite code at registration not redeemed: {error}", error=error.errcode)
        return 200, await session_answer(session)

    async def login(call: ApiCall):
        body = call.body
        ip = call.request.client_ip()
        hs.ratelimiter.check("login", ip, limits.login_per_second, limits.login_burst)
        user_id = hs.accounts.user_id_from_login(body["username"])
        if user_id is None:
            raise forbidden("Invalid username or password")
        # Failures per account are limited too, so a password cannot be guessed from
        # many addresses; only failures count.
        hs.ratelimiter.check("login_failures", user_id, limits.login_failures_per_second,
                             limits.login_failures_burst, record=False)
        try:
            session = await hs.accounts.login(user_id, body["password"], device_id=None,
                                              device_name=body.get("device_name"), want_refresh=True, ip=ip)
        except MatrixError as error:
            if error.status == 403:
                hs.ratelimiter.record("login_failures", user_id, limits.login_failures_per_second)
            raise
        return 200, await session_answer(session)

    async def refresh(call: ApiCall):
        hs.ratelimiter.check("refresh", call.request.client_ip(), limits.login_per_second * 3,
                             limits.login_burst * 3)
        return 200, token_pair(await hs.accounts.refresh(call.body["refresh_token"]))

    async def logout(call: ApiCall):
        await hs.accounts.logout(call.requester)
        return 200, {}

    api.add("POST", "/auth/register", register_account, tag="auth", auth=False, rate_limited=True,
            summary="Create an account and a first session", request=REGISTER_BODY, response=auth_ref,
            description="403 M_FORBIDDEN when registration is disabled; 400 M_USER_IN_USE, "
                        "M_INVALID_USERNAME, M_WEAK_PASSWORD.")
    api.add("POST", "/auth/login", login, tag="auth", auth=False, rate_limited=True,
            summary="Log in with a username or user ID and a password", request=LOGIN_BODY,
            response=auth_ref, description="403 M_FORBIDDEN on a wrong username or password.")
    api.add("POST", "/auth/refresh", refresh, tag="auth", auth=False, rate_limited=True,
            summary="Trade a refresh token for a new token pair", request=REFRESH_BODY, response=pair_ref,
            description="The old refresh and access tokens stop working; reusing the old refresh "
                        "token is 401 M_UNKNOWN_TOKEN.")
    api.add("POST", "/auth/logout", logout, tag="auth", summary="End this session",
            response={"type": "object"}, description="The session's device and all its tokens are deleted.")
