"""Accounts: registration, login, sessions (devices and tokens), password changes.

Every change is one database transaction: a registration writes the user, its first
device and its tokens together, so an account that got a 200 can always log in.
"""

from __future__ import annotations

from dataclasses import dataclass

from homeserver.clock import Clock
from homeserver.handlers.auth import (Requester, hash_token, new_access_token, new_device_id,
                                      new_refresh_token)
from homeserver.handlers.passwords import PasswordHashing
from homeserver.identifiers import localpart_from_login, user_id_for, validate_new_localpart
from homeserver.http.errors import MatrixError, forbidden, unknown_token
from storage.database import DatabasePool, Transaction
from storage.stores import devices as device_sql
from storage.stores import tokens as token_sql
from storage.stores import users as user_sql
from storage.stores.devices import DeviceStore
from storage.stores.tokens import TokenStore
from storage.stores.users import UserStore


@dataclass(frozen=True)
class Session:
    """What a client gets back from register, login or refresh."""
    user_id: str
    device_id: str
    access_token: str
    refresh_token: str | None = None
    expires_in_ms: int | None = None

    def to_json(self, server_name: str) -> dict:
        body = {"user_id": self.user_id, "device_id": self.device_id,
                "access_token": self.access_token, "home_server": server_name}
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
            body["expires_in_ms"] = self.expires_in_ms
        return body


class AccountHandler:
    def __init__(self, config, clock: Clock, db: DatabasePool, users: UserStore, devices: DeviceStore,
                 tokens: TokenStore, passwords: PasswordHashing):
        self._config = config
        self._server_name = config.server_name
        self._clock = clock
        self._db = db
        self._users = users
        self._devices = devices
        self._tokens = tokens
        self._passwords = passwords
        # Application-service registrations (appservice.registration.Registration): their
        # exclusive users namespaces are closed to everyone else.
        self.appservices: list = []

    # -- registration -----------------------------------------------------------------

    async def check_username_available(self, localpart: str, appservice=None) -> str:
        """The user ID ``localpart`` would have; M_INVALID_USERNAME or M_USER_IN_USE otherwise.
        M_EXCLUSIVE when an application service's exclusive namespace covers it, unless
        ``appservice`` (the registering service) is that service."""
        validate_new_localpart(localpart, self._server_name)
        user_id = user_id_for(localpart, self._server_name)
        if appservice is not None:
            if not appservice.is_user_in_namespace(user_id):
                raise MatrixError(400, "M_EXCLUSIVE", "This user ID is not in the application service's namespace")
        for registration in self.appservices:
            if registration is not appservice and registration.claims_user(user_id):
                raise MatrixError(400, "M_EXCLUSIVE", "This user ID is reserved by an application service")
        if await self._users.user_exists(user_id):
            raise MatrixError(400, "M_USER_IN_USE", "User ID already taken")
        return user_id

    def check_password_strength(self, password: str) -> None:
        minimum = self._config.auth.password_min_length
        if len(password) < minimum:
            raise MatrixError(400, "M_WEAK_PASSWORD", f"Password must be at least {minimum} characters")
        if len(password) > 512:
            raise MatrixError(400, "M_INVALID_PARAM", "Password is longer than 512 characters")

    async def register(self, localpart: str, password: str | None, *, device_id: str | None = None,
                       device_name: str | None = None, inhibit_login: bool = False,
                       want_refresh: bool = False, admin: bool = False, ip: str | None = None,
                       appservice=None) -> tuple[str, Session | None]:
        user_id = await self.check_username_available(localpart, appservice)
        appservice_id = appservice.id if appservice is not None else None
        password_hash = await self._passwords.hash(password) if password is not None else None
        now = self._clock.time_ms()
        tokens = None if inhibit_login else self._new_tokens(want_refresh, now)
        device_id = device_id or new_device_id()

        def txn_func(txn: Transaction) -> bool:
            if not user_sql.insert_user_txn(txn, user_id, password_hash, now, admin=admin,
                                            appservice_id=appservice_id):
                return False
            if tokens is not None:
                self._store_session_txn(txn, user_id, device_id, device_name, ip, now, tokens)
            return True

        if not await self._db.run_interaction("register", txn_func):
            raise MatrixError(400, "M_USER_IN_USE", "User ID already taken")
        return user_id, (tokens and self._session(user_id, device_id, tokens, now))

    # -- login and sessions -----------------------------------------------------------

    async def check_password(self, user_id: str, password: str) -> bool:
        user = await self._users.get_user(user_id)
        stored = user.password_hash if user is not None and not user.deactivated else None
        ok, needs_rehash = await self._passwords.verify(stored, password)
        if ok and needs_rehash:
            await self._users.set_password_hash(user_id, await self._passwords.hash(password))
        return ok

    def user_id_from_login(self, identifier: str) -> str | None:
        localpart = localpart_from_login(identifier, self._server_name)
        return None if localpart is None else user_id_for(localpart, self._server_name)

    async def login(self, user_id: str, password: str, *, device_id: str | None, device_name: str | None,
                    want_refresh: bool, ip: str | None) -> Session:
        if not await self.check_password(user_id, password):
            user = await self._users.get_user(user_id)
            if user is not None and user.deactivated:
                raise MatrixError(403, "M_USER_DEACTIVATED", "This account has been deactivated")
            raise forbidden("Invalid username or password")
        return await self.create_session(user_id, device_id=device_id, device_name=device_name,
                                         want_refresh=want_refresh, ip=ip)

    async def create_session(self, user_id: str, *, device_id: str | None = None,
                             device_name: str | None = None, want_refresh: bool = False,
                             ip: str | None = None) -> Session:
        """A new (or reused) device with fresh tokens for an existing account."""
        now = self._clock.time_ms()
        tokens = self._new_tokens(want_refresh, now)
        device_id = device_id or new_device_id()
        await self._db.run_interaction("create_session", self._store_session_txn, user_id, device_id,
                                       device_name, ip, now, tokens)
        return self._session(user_id, device_id, tokens, now)

    async def refresh(self, refresh_token: str) -> Session:
        now = self._clock.time_ms()
        tokens = self._new_tokens(True, now)
        access, refresh, access_expires, refresh_expires = tokens
        owner = await self._tokens.rotate_refresh_token(
            hash_token(refresh_token), now, hash_token(access), hash_token(refresh),
            access_expires, refresh_expires)
        if owner is None:
            raise unknown_token("Unknown or already used refresh token")
        return self._session(owner[0], owner[1], tokens, now)

    async def logout(self, requester: Requester) -> None:
        """Spec: logging out ends the session's device, with every token it holds."""
        await self._devices.delete_devices(requester.user_id, [requester.device_id])

    async def logout_all(self, requester: Requester) -> None:
        def txn_func(txn: Transaction) -> None:
            device_sql.delete_devices_txn(txn, requester.user_id, device_sql.device_ids_txn(txn, requester.user_id))
        await self._db.run_interaction("logout_all", txn_func)

    async def change_password(self, requester: Requester, new_password: str, logout_devices: bool) -> None:
        self.check_password_strength(new_password)
        password_hash = await self._passwords.hash(new_password)

        def txn_func(txn: Transaction) -> None:
            txn.execute("UPDATE users SET password_hash = ? WHERE user_id = ?", (password_hash, requester.user_id))
            if logout_devices:
                others = [d for d in device_sql.device_ids_txn(txn, requester.user_id) if d != requester.device_id]
                device_sql.delete_devices_txn(txn, requester.user_id, others)
                # Other sessions of this device (older tokens) end too; this request's stays.
                token_sql.delete_device_tokens_txn(txn, requester.user_id, requester.device_id,
                                                   keep_hash=requester.token_hash)
        await self._db.run_interaction("change_password", txn_func)

    # -- helpers ----------------------------------------------------------------------

    def _new_tokens(self, want_refresh: bool, now: int) -> tuple[str, str | None, int | None, int | None]:
        if not want_refresh:
            return new_access_token(), None, None, None
        auth = self._config.auth
        return (new_access_token(), new_refresh_token(), now + auth.access_token_ttl_secs * 1000,
                now + auth.refresh_token_ttl_secs * 1000)

    def _store_session_txn(self, txn: Transaction, user_id: str, device_id: str, device_name: str | None,
                           ip: str | None, now: int, tokens) -> None:
        access, refresh, access_expires, refresh_expires = tokens
        device_sql.upsert_device_txn(txn, user_id, device_id, device_name, now, ip)
        refresh_hash = hash_token(refresh) if refresh else None
        if refresh_hash:
            token_sql.insert_refresh_token_txn(txn, refresh_hash, user_id, device_id, now, refresh_expires)
        token_sql.insert_access_token_txn(txn, hash_token(access), user_id, device_id, now, access_expires,
                                          refresh_hash)

    @staticmethod
    def _session(user_id: str, device_id: str, tokens, now: int) -> Session:
        access, refresh, access_expires, _ = tokens
        expires_in = access_expires - now if access_expires is not None else None
        return Session(user_id, device_id, access, refresh, expires_in)
