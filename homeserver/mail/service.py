"""Password reset and address verification by email.

- A forgot-password request is answered before anything is looked up: the lookup,
  the token and the mail happen in the background, so neither the answer nor its
  timing tells whether the address has an account. Only *verified* addresses get a
  reset mail: an address someone merely typed in proves nothing.
- Tokens are 256 random bits, mailed as a link and stored as their SHA-256; a new
  token of the same purpose retires the user's older ones. Reset tokens live
  ``email.reset_token_ttl_secs`` (30 minutes), verification tokens a day.
- A reset, in one transaction: uses the token up (a conditional UPDATE: of two
  redemptions at once one wins), sets the password, retires the user's other reset
  tokens and deletes every device with its access and refresh tokens.
"""

from __future__ import annotations

import re
import secrets

from twisted.internet import defer
from twisted.logger import Logger

from homeserver.handlers.auth import hash_token
from homeserver.http.errors import MatrixError, invalid_param
from homeserver.mail import MailError, build_mailer, mask_address, templates
from storage.database import Transaction
from storage.stores import devices as device_sql
from storage.stores import email_tokens as email_sql
from storage.stores.email_tokens import RESET, VERIFY, EmailTokenStore

log = Logger(namespace="mail")

VERIFY_TOKEN_TTL_SECS = 24 * 3600
MAX_ADDRESS = 254
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalise_address(address: str) -> str:
    """The stored form of an address (trimmed, lower case); M_INVALID_PARAM if it is none."""
    address = address.strip().lower()
    if len(address) > MAX_ADDRESS or not _ADDRESS.match(address):
        raise invalid_param("'email' is not an email address")
    return address


def bad_token() -> MatrixError:
    return MatrixError(400, "M_INVALID_PARAM", "Invalid or expired token")


class EmailService:
    def __init__(self, hs, mailer=None):
        self._hs = hs
        self._config = hs.config
        self._clock = hs.clock
        self._db = hs.db
        self.store = EmailTokenStore(hs.db)
        self.mailer = mailer if mailer is not None else build_mailer(hs.config, hs.reactor)
        self._pending: set[defer.Deferred] = set()
        if self.mailer is None:
            log.info("mail is not configured: password-reset and verification mails are not sent")

    # -- background work --------------------------------------------------------------

    def _background(self, name: str, coroutine) -> None:
        finished = defer.Deferred()
        self._pending.add(finished)

        async def run() -> None:
            try:
                await coroutine
            finally:
                self._pending.discard(finished)
                finished.callback(None)
        self._hs.run_in_background(name, run())

    async def idle(self) -> None:
        """Wait until every mail started so far has been sent or has failed (for tests)."""
        while self._pending:
            await defer.DeferredList(list(self._pending))

    async def _mail(self, kind: str, user_id: str, address: str, subject: str, text: str, html: str) -> None:
        if self.mailer is None:
            log.warn("mail is not configured: {kind} mail for {user_id} not sent", kind=kind, user_id=user_id)
            return
        try:
            await self.mailer.send(address, subject, text, html)
        except MailError as error:
            log.warn("{kind} mail for {user_id} to {to} via {mailer} failed: {error}", kind=kind,
                     user_id=user_id, to=mask_address(address), mailer=self.mailer.name, error=str(error))
            return
        log.info("{kind} mail for {user_id} sent to {to} via {mailer}", kind=kind, user_id=user_id,
                 to=mask_address(address), mailer=self.mailer.name)

    async def _new_token(self, user_id: str, purpose: str, address: str, ttl_secs: int) -> str:
        token = secrets.token_urlsafe(32)
        now = self._clock.time_ms()
        await self.store.create_token(hash_token(token), user_id, purpose, address, now, now + ttl_secs * 1000)
        return token

    # -- password reset ---------------------------------------------------------------

    def request_reset(self, address: str) -> None:
        """Start the reset of whichever account verified ``address`` (normalised); returns
        at once and does the same whether or not there is one."""
        self._background("password_reset_mail", self._send_reset(address))

    async def _send_reset(self, address: str) -> None:
        user_id = await self.store.verified_owner(address)
        if user_id is None:
            log.info("password reset asked for an address no account verified ({to})", to=mask_address(address))
            return
        ttl = self._config.email.reset_token_ttl_secs
        token = await self._new_token(user_id, RESET, address, ttl)
        url = templates.link(self._config.server.public_baseurl, "reset-password", token)
        await self._mail("password reset", user_id, address,
                         *templates.reset_mail(self._config.instance.name, url, ttl))

    async def reset_password(self, token: str, new_password: str) -> str:
        """Use the token up and set the password; every session of the user ends. The
        user ID; 400 when the token is unknown, expired or used."""
        self._hs.accounts.check_password_strength(new_password)
        password_hash = await self._hs.passwords.hash(new_password)
        now = self._clock.time_ms()

        def txn_func(txn: Transaction) -> str | None:
            redeemed = email_sql.redeem_txn(txn, hash_token(token), RESET, now)
            if redeemed is None:
                return None
            user_id = redeemed.user_id
            row = txn.select_one("SELECT deactivated FROM users WHERE user_id = ?", (user_id,))
            if row is None or row[0]:
                return None
            txn.execute("UPDATE users SET password_hash = ? WHERE user_id = ?", (password_hash, user_id))
            email_sql.invalidate_tokens_txn(txn, user_id, RESET, now)
            device_sql.delete_devices_txn(txn, user_id, device_sql.device_ids_txn(txn, user_id))
            return user_id

        user_id = await self._db.run_interaction("reset_password", txn_func)
        if user_id is None:
            raise bad_token()
        log.info("password of {user_id} reset by email; every session ended", user_id=user_id)
        return user_id

    # -- addresses and verification ---------------------------------------------------

    async def address_of(self, user_id: str):
        return await self.store.get_address(user_id)

    async def set_address(self, user_id: str, address: str) -> None:
        """Give the account ``address`` (normalised), unverified, and mail it a
        verification link; nothing happens when it is already the verified address."""
        if await self.store.set_address(user_id, address, self._clock.time_ms()):
            self._background("verification_mail", self._send_verification(user_id, address))

    async def _send_verification(self, user_id: str, address: str) -> None:
        token = await self._new_token(user_id, VERIFY, address, VERIFY_TOKEN_TTL_SECS)
        url = templates.link(self._config.server.public_baseurl, "verify-email", token)
        await self._mail("verification", user_id, address, *templates.verify_mail(self._config.instance.name, url))

    async def verify(self, token: str) -> str:
        """Mark the token's address verified; the user ID. 400 when the token is unknown,
        expired or used, or the address is no longer the account's or another account
        verified it first."""
        redeemed, verified = await self.store.redeem_verification(hash_token(token), self._clock.time_ms())
        if redeemed is None:
            raise bad_token()
        if not verified:
            raise MatrixError(400, "M_THREEPID_IN_USE", "This address can no longer be verified for this account")
        return redeemed.user_id
