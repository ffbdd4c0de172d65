"""Putting federation together on a Homeserver: the outbound client, the keyring, the
handlers for what arrives, and the sender. ``homeserver/app.py`` calls ``attach`` when
``federation.enabled`` is on, ``start`` once the database is migrated, and ``stop``."""

from __future__ import annotations

from federation import edus, queries
from federation.backfill import Backfiller
from federation.client import FederationClient
from federation.keyring import Keyring
from federation.membership_server import MembershipServer, RelayedEvents
from federation.pdu_handler import PduHandler
from federation.remote_membership import RemoteMembership
from federation.sender import FederationSender
from federation.transactions import TransactionReceiver
from storage.stores.federation import FederationStore
from storage.stores.server_keys import ServerKeyStore


def attach(hs) -> None:
    config = hs.config
    hs.federation_store = FederationStore(hs.db)
    hs.federation_client = FederationClient(hs.reactor, hs.clock, config.server_name, hs.signing_key,
                                            config.federation)
    hs.keyring = Keyring(ServerKeyStore(hs.db), hs.federation_client, hs.clock, config.server_name,
                         hs.signing_key, list(config.federation.trusted_key_servers))
    hs.federation_pdus = PduHandler(hs)
    hs.federation_transactions = TransactionReceiver(hs, hs.federation_pdus)
    hs.federation_relay = RelayedEvents(hs.federation_store)
    hs.federation_membership = MembershipServer(hs, hs.federation_pdus, hs.federation_relay)
    hs.remote_membership = RemoteMembership(hs, hs.federation_pdus)
    hs.membership.remote = hs.remote_membership
    hs.federation_backfill = Backfiller(hs, hs.federation_pdus)
    hs.room_reader.backfill = hs.federation_backfill.backfill
    hs.sync.remote_invite_state = hs.federation_store.get_remote_invite_state
    hs.federation_sender = FederationSender(hs, hs.federation_store)
    # Query, EDU and media modules add their routes here: register(router, hs, authenticated).
    hs.federation_route_modules = []
    edus.attach(hs)
    queries.attach(hs)


async def start(hs) -> None:
    await hs.federation_sender.start()


async def stop(hs) -> None:
    await hs.federation_sender.stop()
    await hs.federation_client.close()
