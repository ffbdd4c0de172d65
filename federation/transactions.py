"""``PUT /_matrix/federation/v1/send/{txnId}``: a transaction of PDUs and EDUs from one
server. Transactions from one origin are handled one at a time, in arrival order, and a
retried transaction ID gets the first answer. A PDU that is refused does not fail the
others: its entry in the answer carries the error."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from twisted.logger import Logger

from federation.pdu_handler import PduHandler, PduRefused
from homeserver.http.errors import MatrixError
from homeserver.locks import KeyedLock
from storage.cache import LruCache

log = Logger(namespace="drocsid.federation.transactions")

EduHandler = Callable[[str, dict], Awaitable[None]]


class TransactionReceiver:
    def __init__(self, hs, pdu_handler: PduHandler):
        self._hs = hs
        self._pdus = pdu_handler
        self._max_pdus = hs.config.federation.max_transaction_pdus
        self._max_edus = hs.config.federation.max_transaction_edus
        self._origins = KeyedLock()
        self._answers: LruCache[tuple[str, str], dict] = LruCache(10_000)
        self._edu_handlers: dict[str, EduHandler] = {}

    def register_edu_handler(self, edu_type: str, handler: EduHandler) -> None:
        self._edu_handlers[edu_type] = handler

    def check_shape(self, body: dict) -> tuple[list, list]:
        pdus = body.get("pdus", [])
        edus = body.get("edus", [])
        if not isinstance(pdus, list) or not isinstance(edus, list):
            raise MatrixError(400, "M_BAD_JSON", "'pdus' and 'edus' must be arrays")
        if len(pdus) > self._max_pdus or len(edus) > self._max_edus:
            raise MatrixError(400, "M_BAD_JSON", f"a transaction carries at most {self._max_pdus} PDUs"
                                                 f" and {self._max_edus} EDUs")
        return pdus, edus

    async def on_transaction(self, origin: str, txn_id: str, body: dict) -> dict:
        pdus, edus = self.check_shape(body)
        async with self._origins.hold(origin):
            earlier = self._answers.get((origin, txn_id))
            if earlier is not None:
                return earlier
            results: dict[str, dict] = {}
            for pdu in pdus:
                event_id, outcome = await self._one_pdu(origin, pdu)
                if event_id is not None:
                    results[event_id] = outcome
            for edu in edus:
                await self._one_edu(origin, edu)
            answer = {"pdus": results}
            self._answers.set((origin, txn_id), answer)
            return answer

    async def _one_pdu(self, origin: str, pdu: Any) -> tuple[str | None, dict]:
        event_id = None
        try:
            event = await self._pdus.on_pdu(origin, pdu)
            event_id = event.event_id
            if event.rejected:
                return event_id, {"error": f"rejected: {event.rejected_reason}"}
            return event_id, {}
        except PduRefused as refused:
            log.info("refused a PDU from {origin}: {reason}", origin=origin, reason=str(refused),
                     event="pdu_refused")
            return refused.event_id, {"error": str(refused)}
        except Exception as error:
            log.failure("handling a PDU from {origin} failed", origin=origin)
            return event_id, {"error": f"internal error: {type(error).__name__}"}

    async def _one_edu(self, origin: str, edu: Any) -> None:
        if not isinstance(edu, dict) or not isinstance(edu.get("edu_type"), str) \
                or not isinstance(edu.get("content"), dict):
            return
        handler = self._edu_handlers.get(edu["edu_type"])
        if handler is None:
            return  # unknown EDU types are ignored, as the specification asks
        try:
            await handler(origin, edu["content"])
        except Exception:
            log.failure("handling a {edu_type} EDU from {origin} failed", edu_type=edu["edu_type"], origin=origin)
