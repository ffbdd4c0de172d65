"""Wiring: builds every component once, starts the listeners, stops gracefully.

Read this file to see what the homeserver is made of; each attribute of ``Homeserver``
is one component, built from the configuration and the components before it.
"""

from __future__ import annotations

from twisted.internet import defer, error as internet_error
from twisted.python import failure
from twisted.logger import Logger

from homeserver import __version__
from federation import key_server
from homeserver import api
from homeserver.client import (account, capabilities, directory, keys, login, media, push_rules,
                               registration, relations, room_activity, rooms, sync, user_data, versions)
from homeserver.client import discovery, presence
from homeserver.client import appservice_ping
from homeserver.voice import matrixrtc
from appservice.loading import WEBHOOKS_SERVICE_ID, create_sender_users, load_registrations, webhook_registration
from homeserver.clock import Clock
from homeserver.handlers.accounts import AccountHandler
from homeserver.handlers.auth import Authenticator
from homeserver.handlers.event_ingest import EventIngester
from homeserver.handlers.event_sender import EventSender
from homeserver.handlers.membership import MembershipHandler
from homeserver.handlers.passwords import PasswordHashing
from homeserver.handlers.power import PowerLevels
from homeserver.handlers.presence import PresenceHandler
from homeserver.handlers.profiles import ProfileHandler
from homeserver.handlers.receipts import AccountDataHandler, ReceiptsHandler
from homeserver.handlers.relations import RelationsHandler
from homeserver.handlers.ratelimit import RateLimiter
from homeserver.handlers.room_creation import RoomCreator
from homeserver.handlers.room_heads import RoomHeads
from homeserver.handlers.room_reads import RoomReader
from homeserver.handlers.room_writer import RoomWriter
from homeserver.handlers.sync import SyncHandler
from homeserver.handlers.typing import TypingHandler
from homeserver.handlers.unread import UnreadCounter
from homeserver.handlers.ui_auth import UserInteractiveAuth
from homeserver.drocsid.enforcement import DrocsidRules
from homeserver.drocsid.mirror_keeper import MirrorKeeper
from homeserver.http.router import Router
from homeserver.http.site import build_site
from homeserver.notifier import Notifier
from homeserver.signing_key import load_or_create_signing_key
from storage.database import DatabasePool
from storage.migrations import migrate
from storage.stores.account_data import AccountDataStore
from storage.stores.devices import DeviceStore
from storage.stores.events import EventStore
from storage.stores.invite_codes import InviteCodeStore
from storage.stores.relationships import RelationshipStore
from storage.stores.webhooks import WebhookStore
from storage.stores.presence import PresenceStore
from storage.stores.profiles import FilterStore, ProfileStore
from storage.stores.receipts import ReceiptStore
from storage.stores.relations import RelationStore
from storage.stores.rooms import RoomStore
from storage.stores.state import StateStore
from storage.stores.tokens import TokenStore
from storage.stores.ui_auth import UIAuthStore
from storage.stores.users import UserStore

log = Logger(namespace="drocsid.app")

_SERVLETS = (versions, registration, login, account, capabilities, rooms, directory, key_server, sync,
             room_activity, relations, user_data, media, push_rules, keys, discovery, presence, api,
             appservice_ping, matrixrtc)


class StartupError(Exception):
    """The homeserver cannot start; the message says why in one line."""


class Homeserver:
    def __init__(self, config, reactor):
        self.config = config
        self.reactor = reactor
        self.clock = Clock(reactor)

        # Application-service registrations: an invalid one stops the start (a ValueError).
        self.appservices = load_registrations(config) + [webhook_registration(config.server_name)]
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.signing_key = load_or_create_signing_key(config.signing_key_path)
        self.db = DatabasePool.from_url(reactor, config.database_url, config.database.max_connections)
        if self.db.target.engine == "sqlite":
            from pathlib import Path
            Path(self.db.target.path).parent.mkdir(parents=True, exist_ok=True)

        self.users = UserStore(self.db)
        self.devices = DeviceStore(self.db)
        self.tokens = TokenStore(self.db)
        self.ui_auth_store = UIAuthStore(self.db)
        self.rooms = RoomStore(self.db)
        self.events = EventStore(self.db)
        self.state = StateStore(self.db)
        self.account_data = AccountDataStore(self.db)
        self.receipts = ReceiptStore(self.db)
        self.profiles = ProfileStore(self.db)
        self.filters = FilterStore(self.db)
        self.relations = RelationStore(self.db)
        self.presence_store = PresenceStore(self.db)
        self.relationship_store = RelationshipStore(self.db)
        self.invite_codes = InviteCodeStore(self.db)
        self.webhooks_store = WebhookStore(self.db)

        auth = config.auth
        self.passwords = PasswordHashing(reactor, auth.password_hash_time_cost, auth.password_hash_memory_kib,
                                         auth.password_hash_parallelism)
        self.ratelimiter = RateLimiter(self.clock)
        self.auth = Authenticator(self.clock, self.tokens, self.devices, users=self.users,
                                  appservices=self.appservices, server_name=config.server_name)
        self.ui_auth = UserInteractiveAuth(self.clock, self.ui_auth_store)
        self.accounts = AccountHandler(config, self.clock, self.db, self.users, self.devices, self.tokens,
                                       self.passwords)
        self.accounts.appservices = self.appservices

        self.notifier = Notifier()
        self.room_heads = RoomHeads(self.rooms, self.events, self.state)
        self.room_writer = RoomWriter(self.clock, self.rooms, self.events, self.state, self.room_heads,
                                      self.notifier)
        self.event_sender = EventSender(config.server_name, self.signing_key, self.room_writer)
        self.event_ingester = EventIngester(self.room_writer)
        self.drocsid_rules = DrocsidRules(self.room_heads, self.room_writer)
        self.event_sender.extra_rules = self.event_ingester.extra_rules = self.drocsid_rules.check
        self.profiles_handler = ProfileHandler(config.server_name, self.profiles, self.users, self.rooms,
                                               self.room_heads, self.room_writer, self.event_sender)
        self.room_creator = RoomCreator(config.server_name, self.event_sender, self.rooms, self.clock,
                                        self.profiles_handler.member_content)
        self.membership = MembershipHandler(config.server_name, self.event_sender, self.room_heads, self.events,
                                            self.rooms, self.profiles_handler)
        self.room_reader = RoomReader(self.clock, self.room_heads, self.events, self.state, self.membership,
                                      self.room_writer)
        self.power = PowerLevels(self.room_heads, self.events)
        self.typing = TypingHandler(self.clock, self.notifier)
        self.account_data_handler = AccountDataHandler(self.account_data, self.notifier)
        self.receipts_handler = ReceiptsHandler(self.clock, self.receipts, self.membership, self.events,
                                                self.notifier, self.account_data_handler)
        self.relations_handler = RelationsHandler(self.clock, self.relations, self.room_writer)
        self.room_reader.relations = self.relations_handler
        self.presence = PresenceHandler(self.clock, self.presence_store, self.rooms, self.notifier)
        from homeserver.handlers.presence_timers import PresenceTimers
        self.presence_timers = PresenceTimers(self)
        self.drocsid_mirror = MirrorKeeper(self)
        from homeserver.voice.openid import OpenIdTokens
        from homeserver.voice.service import VoiceService
        self.voice = VoiceService(self)
        self.openid_tokens = OpenIdTokens(self.clock)
        from homeserver.mail.service import EmailService
        self.email = EmailService(self)  # password resets and address verification
        # Shared by /sync and the /api/v1 read states (homeserver.drocsid.read_states).
        self.unread = UnreadCounter(self.db, self.events, self.room_writer, self.room_heads,
                                    lambda: getattr(self, "push_rules", None))
        self.sync = SyncHandler(self.clock, self.notifier, self.rooms, self.events, self.state, self.room_heads,
                                self.room_writer, self.receipts, self.account_data, self.typing,
                                self.relations_handler, self.unread)

        self.federation_sender = None
        if config.federation.enabled:
            from federation import wiring as federation_wiring
            federation_wiring.attach(self)
        if config.federation.enabled:
            self.federation_route_modules.append(matrixrtc.register_federation)
        # Pushing to application services (transactions, queries, ping): appservice/.
        from appservice import queries as appservice_queries
        from appservice.client import ApplicationServiceClient
        from appservice.sender import ApplicationServiceSender
        self.appservice_client = ApplicationServiceClient(reactor, self.clock)
        self.appservice_sender = ApplicationServiceSender(self)
        self.auth.on_appservice_seen = self.appservice_sender.on_service_seen
        appservice_queries.attach(self)

        self.router = Router()
        for servlet in _SERVLETS:
            servlet.register_routes(self.router, self)
        self.sync.add_section_provider(self.presence.sync_section)
        self.db.hooks["devices_deleted"] = lambda user_id, stream_id: self.run_in_background(
            "device_list_change", self.e2e_keys.notify_device_list_change(user_id, stream_id))
        # Clients learn of push rule changes through m.push_rules account data.
        self.push_rules.add_change_listener(self._push_rules_changed)
        from homeserver.gateway import ClientRoot, Gateway
        self.gateway = Gateway(self)
        web_client = None
        if config.web_client.enabled:
            from homeserver.webclient import STATIC_DIR, WebClient, content_security_policy, origins_of
            static_dir = config.web_client.static_dir
            from homeserver.gif.service import media_origins
            policy = content_security_policy(connect=origins_of(config.livekit.public_url),
                                             images=media_origins(config.gif))
            web_client = WebClient(static_dir or STATIC_DIR, reload=bool(static_dir), policy=policy)
        self.site = build_site(ClientRoot(self.router, self.gateway, web_client), config, reactor)
        self.client_port = None
        self._federation_port = None
        self._federation_site = None
        self._stopping = False
        self._background: set[defer.Deferred] = set()

    def run_in_background(self, name: str, coroutine) -> None:
        """Start work nobody waits for; a shutdown waits for it before closing the database."""
        task = defer.ensureDeferred(coroutine)
        self._background.add(task)

        def done(result):
            self._background.discard(task)
            if isinstance(result, failure.Failure):
                log.failure("background task {name} failed", result, name=name)
        task.addBoth(done)

    def _push_rules_changed(self, user_id: str) -> None:
        async def publish() -> None:
            content = await self.push_rules.ruleset_json(user_id)
            await self.account_data_handler.put(user_id, "", "m.push_rules", content)
        self.run_in_background("publish_push_rules", publish())

    @property
    def listening_port(self) -> int:
        return self.client_port.getHost().port

    async def start(self) -> None:
        self.db.start()
        try:
            applied = await migrate(self.db)
        except Exception as error:
            reason = " ".join(str(error).split())  # psycopg2 messages span lines
            raise StartupError(f"cannot open the database at {self.db.target.describe()}: {reason}") from error
        for migration in applied:
            log.info("applied migration {version:04d}_{name}", version=migration.version, name=migration.name)
        self.notifier.set_position("events", await self.events.max_stream_ordering())
        self.notifier.set_position("account_data", await self.account_data.max_stream_id())
        self.notifier.set_position("receipts", await self.receipts.max_stream_id())
        self.notifier.set_position("presence", await self.presence_store.max_stream_id())
        await self.e2e_keys.load_stream_positions()
        # Clients retry a send for minutes at most; a day of transaction IDs covers that.
        await self.event_sender.load_recent_transactions(self.clock.time_ms() - 24 * 3600 * 1000)
        # The built-in webhooks service never acts as its sender: no account for it.
        configured = [r for r in self.appservices if r.id != WEBHOOKS_SERVICE_ID]
        for sender in await create_sender_users(self.db, configured, self.clock.time_ms()):
            log.info("created application service sender {user_id}", user_id=sender)
        await self.gateway.start()
        await self.appservice_sender.start()
        self.presence_timers.start()
        server = self.config.server
        try:
            self.client_port = self.reactor.listenTCP(server.port, self.site, interface=server.host)
        except internet_error.CannotListenError as error:
            raise StartupError(f"cannot listen on {server.host}:{server.port}: {error.socketError}") from error
        if self.config.federation.enabled:
            from federation import wiring as federation_wiring
            await federation_wiring.start(self)
            await self._listen_federation()
        log.info("listening for clients on http://{host}:{port}", host=server.host, port=self.listening_port,
                 event="listening", version=__version__, server_name=self.config.server_name,
                 database=self.db.target.describe(), federation_port=self.federation_port)

    @property
    def federation_port(self) -> int | None:
        return self._federation_port.getHost().port if self._federation_port is not None else None

    async def _listen_federation(self) -> None:
        from federation import server as federation_server
        from federation.tls import ensure_certificate

        federation = self.config.federation
        try:
            cert, key, made = ensure_certificate(self.config)
        except (OSError, ValueError) as error:
            raise StartupError(f"cannot prepare the federation TLS certificate: {error}") from error
        if made:
            log.info("generated a self-signed federation certificate {cert}", cert=str(cert))
        try:
            self._federation_port, self._federation_site = federation_server.listen(self, cert, key)
        except (OSError, ValueError) as error:
            raise StartupError(f"cannot use the federation TLS certificate: {error}") from error
        except internet_error.CannotListenError as error:
            raise StartupError(f"cannot listen for federation on {federation.host}:{federation.port}:"
                               f" {error.socketError}") from error
        log.info("listening for federation on https://{host}:{port}", host=federation.host,
                 port=self.federation_port)

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (up to the grace period), close the DB."""
        if self._stopping:
            return
        self._stopping = True
        try:
            await self._drain_requests()
            await self.gateway.stop()
            await self.appservice_sender.stop()
            self.presence_timers.stop()
            await self.appservice_client.close()
            if self.config.federation.enabled:
                from federation import wiring as federation_wiring
                await federation_wiring.stop(self)
            if self._background:
                await defer.DeferredList(list(self._background))
        finally:
            # Whatever happened above, the database threads must stop or the process hangs.
            await self.db.close()
        log.info("stopped", event="stopped")

    async def _drain_requests(self) -> None:
        if self.client_port is not None:
            await self.client_port.stopListening()
        if self._federation_port is not None:
            await self._federation_port.stopListening()
            self._federation_site.close_connections()
        self.typing.stop()
        self.notifier.wake_everyone()
        if self.site.in_flight:
            log.info("waiting for {count} requests to finish", count=self.site.in_flight)
            idle = self.site.wait_until_idle()
            timeout = self.reactor.callLater(self.config.server.shutdown_grace_secs, idle.cancel)
            try:
                await idle
            except defer.CancelledError:
                log.warn("shutdown grace period over; {count} requests abandoned", count=self.site.in_flight)
            if timeout.active():
                timeout.cancel()
        self.site.close_connections()
