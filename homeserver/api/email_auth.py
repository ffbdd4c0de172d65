"""Password reset and email verification (issue 9): the routes over
``homeserver.mail.service`` (flows and security properties: docs/email.md).

- ``POST /auth/forgot-password`` answers 202 ``{}`` whatever the address, before any
  lookup; a mail goes out only when an active account verified that address.
- ``POST /auth/reset-password`` sets the password and ends every session of the user.
- ``GET``/``PUT /users/@me/email`` and ``POST /auth/verify-email`` manage the one
  address of an account. Changing it needs the current password: otherwise a stolen
  access token could redirect the reset mail and take the account over.
"""

from __future__ import annotations

from homeserver.api.routes import ApiCall, ApiRoutes
from homeserver.http.errors import forbidden
from homeserver.mail.service import MAX_ADDRESS, normalise_address

# The original: 10 requests per 15 minutes per address. Per client address a little more,
# so one office behind a NAT is not locked out by a single person.
FORGOT_PER_ADDRESS = (10 / 900, 10)
FORGOT_PER_IP = (20 / 900, 20)
EMAIL_CHANGES_PER_USER = (5 / 3600, 5)

FORGOT_BODY = {
    "type": "object",
    "required": ["email"],
    "properties": {"email": {"type": "string", "maxLength": MAX_ADDRESS}},
}

RESET_BODY = {
    "type": "object",
    "required": ["token", "password"],
    "properties": {
        "token": {"type": "string", "minLength": 1, "maxLength": 256, "description": "From the mailed link"},
        "password": {"type": "string", "description": "At least auth.password_min_length (8) characters"},
    },
}

VERIFY_BODY = {
    "type": "object",
    "required": ["token"],
    "properties": {"token": {"type": "string", "minLength": 1, "maxLength": 256}},
}

SET_EMAIL_BODY = {
    "type": "object",
    "required": ["email", "password"],
    "properties": {
        "email": {"type": "string", "maxLength": MAX_ADDRESS},
        "password": {"type": "string", "description": "The account's current password"},
    },
}

EMAIL_SCHEMA = {
    "type": "object",
    "required": ["email", "verified"],
    "properties": {
        "email": {"type": ["string", "null"], "description": "Lower-cased; null: none"},
        "verified": {"type": "boolean"},
    },
}

_EMPTY = {"type": "object"}


def register(api: ApiRoutes, hs) -> None:
    limits = hs.config.limits
    email_ref = api.schema("Email", EMAIL_SCHEMA)

    async def email_json(user_id: str) -> dict:
        record = await hs.email.address_of(user_id)
        return {"email": record.address if record else None, "verified": bool(record and record.verified)}

    async def forgot_password(call: ApiCall):
        address = normalise_address(call.body["email"])
        hs.ratelimiter.check("forgot_password_ip", call.request.client_ip(), *FORGOT_PER_IP)
        hs.ratelimiter.check("forgot_password_address", address, *FORGOT_PER_ADDRESS)
        hs.email.request_reset(address)
        return 202, {}

    async def reset_password(call: ApiCall):
        hs.ratelimiter.check("reset_password", call.request.client_ip(), limits.login_per_second, limits.login_burst)
        await hs.email.reset_password(call.body["token"], call.body["password"])
        return 200, {}

    async def verify_email(call: ApiCall):
        hs.ratelimiter.check("verify_email", call.request.client_ip(), limits.login_per_second, limits.login_burst)
        await hs.email.verify(call.body["token"])
        return 200, {}

    async def get_email(call: ApiCall):
        return 200, await email_json(call.requester.user_id)

    async def put_email(call: ApiCall):
        user_id = call.requester.user_id
        address = normalise_address(call.body["email"])
        hs.ratelimiter.check("email_change", user_id, *EMAIL_CHANGES_PER_USER)
        if not await hs.accounts.check_password(user_id, call.body["password"]):
            raise forbidden("Wrong password")
        await hs.email.set_address(user_id, address)
        return 200, await email_json(user_id)

    api.add("POST", "/auth/forgot-password", forgot_password, tag="auth", auth=False, rate_limited=True,
            status=202, summary="Mail a password-reset link", request=FORGOT_BODY, response=_EMPTY,
            description="Always 202 {} (400 only for a malformed address), whether or not an account has the "
                        "address, so it cannot be used to find accounts. The link goes only to an address its "
                        "account verified; it works once, for email.reset_token_ttl_secs (30 min). 429 after 10 "
                        "requests per 15 minutes for one address or 20 from one client address.")
    api.add("POST", "/auth/reset-password", reset_password, tag="auth", auth=False, rate_limited=True,
            summary="Set a new password with a mailed token", request=RESET_BODY, response=_EMPTY,
            description="Every session of the account ends (access and refresh tokens, devices) and its other "
                        "reset links stop working. 400 M_INVALID_PARAM for an unknown, expired or used token; "
                        "400 M_WEAK_PASSWORD (the token stays usable).")
    api.add("POST", "/auth/verify-email", verify_email, tag="auth", auth=False, rate_limited=True,
            summary="Confirm an address with a mailed token", request=VERIFY_BODY, response=_EMPTY,
            description="400 M_INVALID_PARAM for an unknown, expired (24 h) or used token; 400 "
                        "M_THREEPID_IN_USE when the account has changed its address since or another account "
                        "verified this address first.")
    api.add("GET", "/users/@me/email", get_email, tag="users", summary="One's email address",
            response=email_ref)
    api.add("PUT", "/users/@me/email", put_email, tag="users", rate_limited=True,
            summary="Set one's email address (unverified) and mail it a verification link",
            request=SET_EMAIL_BODY, response=email_ref,
            description="Needs the current password (403 M_FORBIDDEN otherwise). Setting the address it "
                        "already has verified changes nothing. Until verified, the address gets no reset "
                        "mail. 429 after 5 changes an hour.")
