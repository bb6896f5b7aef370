"""Apply signed messages to shared state: the one path every message takes.

Cheap checks come first (size, schema, type, time, payload), the signature
after them, and only then the database: one write transaction per request,
one savepoint per message, so a refused message changes nothing and its
neighbours in a batch still commit. Dedup is by ``source`` + ``id``: an
identical retry returns the stored first receipt, a different message under a
used id is refused.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection

from liquidfab.db import Database, DuplicateKey, GroupCommitter, savepoint
from liquidfab.db import messages as message_log
from liquidfab.db import participants as directory
from liquidfab.errors import ProtocolError
from liquidfab.protocol.envelope import Envelope
from liquidfab.protocol.limits import DEFAULT_LIMITS, Limits
from liquidfab.protocol.registry import Context, MessageType, Registry

_log = logging.getLogger(__name__)

__all__ = ["Dispatcher", "NodeSettings", "Outcome", "Prepared", "receipt_of", "verify_all"]


@dataclass(frozen=True)
class NodeSettings:
    """What handlers may need to know about the node applying them."""

    node_did: str | None = None
    operators: frozenset[str] = frozenset()
    uploads: Path | None = None  # where creators' uploaded artifacts wait (the market)


@dataclass(frozen=True)
class Prepared:
    """A message that passed every check that needs no database."""

    envelope: Envelope
    message_type: MessageType
    payload: Any


@dataclass
class _Batch:
    """What one write transaction knows already: logged messages and registered signers."""

    logged: dict[tuple[str, str], dict[str, Any]]
    signers: set[str]
    notices: list[tuple[str, str]]


@dataclass(frozen=True)
class Outcome:
    """What became of one message: a receipt (accepted) or a problem (refused)."""

    status: int
    body: dict[str, Any]
    duplicate: bool = False

    @property
    def accepted(self) -> bool:
        return self.status < 400


def receipt_of(row: dict[str, Any]) -> dict[str, Any]:
    """The receipt for a logged message row: the same bytes every time it is asked for."""
    return {
        "status": "accepted",
        "source": row["source"],
        "id": row["msg_id"],
        "type": row["type"],
        "seq": row["seq"],
        "digest": row["digest"],
        "received_us": row["received_us"],
        "result": row["result"],
    }


def _named(item: Any) -> dict[str, str] | None:
    """source and id of a refused item, when it carries them as strings."""
    attrs = item.attributes if isinstance(item, Envelope) else item
    if isinstance(attrs, dict):
        source, msg_id = attrs.get("source"), attrs.get("id")
        if isinstance(source, str) and isinstance(msg_id, str):
            return {"source": source[:200], "id": msg_id[:200]}
    return None


def _problem(error: ProtocolError, named: Envelope | dict[str, str] | None = None) -> Outcome:
    """A refusal; it names the message's source and id when they are known."""
    body = error.problem()
    if isinstance(named, Envelope):
        named = {"source": named.source, "id": named.id}
    if named:
        body.update(named)
    return Outcome(error.status, body)


_VERIFY_CHUNK = 32  # messages per task: large enough that handing off costs little
_verifier: ThreadPoolExecutor | None = None
_verifier_lock = threading.Lock()


def verify_all(envelopes: list[Envelope]) -> list[bool]:
    """Each envelope's signature verdict, on every core for a large batch.

    libsodium releases the GIL while it verifies, so threads give real parallelism;
    a small batch is verified in line, where handing off would cost more than it saves.
    """
    global _verifier
    if len(envelopes) < 2 * _VERIFY_CHUNK or (os.cpu_count() or 1) < 2:
        return [env.verify() for env in envelopes]
    with _verifier_lock:
        if _verifier is None:
            _verifier = ThreadPoolExecutor(os.cpu_count(), thread_name_prefix="liquidfab-verify")
    chunks = [envelopes[i : i + _VERIFY_CHUNK] for i in range(0, len(envelopes), _VERIFY_CHUNK)]
    verdicts = _verifier.map(lambda chunk: [env.verify() for env in chunk], chunks)
    return [verdict for chunk in verdicts for verdict in chunk]


def _forget_verifier() -> None:
    """A forked child has none of its parent's threads: start a pool afresh on first use."""
    global _verifier, _verifier_lock
    _verifier, _verifier_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_verifier)


class Dispatcher:
    """Checks and applies messages against one database and one registry."""

    def __init__(
        self,
        database: Database,
        registry: Registry,
        *,
        limits: Limits = DEFAULT_LIMITS,
        node: NodeSettings | None = None,
        clock: Callable[[], float] = time.time,
        settle: Callable[[Context], list[dict[str, Any]]] | None = None,
    ) -> None:
        """``settle`` applies a message's legs inside its transaction (the ledger's
        ``apply_settlement``); without it the node refuses messages that carry legs."""
        self.settle = settle
        self.database = database
        self.registry = registry
        self.limits = limits
        self.node = node or NodeSettings()
        self.clock = clock
        self._writer = GroupCommitter(database)
        # called after each commit with the handlers' notices (kind, subject), in order
        self.listeners: list[Callable[[list[tuple[str, str]]], None]] = []

    # checks without the database ----------------------------------------------

    def prepare(self, message: Envelope | dict[str, Any]) -> Prepared:
        """Every check that needs no database; ProtocolError says what failed."""
        prepared = self._check(message)
        self._signed(prepared, prepared.envelope.verify())
        return prepared

    def _check(self, message: Envelope | dict[str, Any]) -> Prepared:
        """The checks before the signature: cheap ones first."""
        env = message if isinstance(message, Envelope) else Envelope.from_dict(message, self.limits)
        # The request body was capped already; this caps each message inside a batch.
        size = len(env.signed_bytes)
        if size > self.limits.max_message_bytes:
            raise ProtocolError(
                "too-large",
                f"the message is {size} bytes in canonical form; at most "
                f"{self.limits.max_message_bytes} are accepted. Split it or shrink its data.",
                413,
            )
        message_type = self.registry.get(env.type)
        if message_type is None:
            raise ProtocolError(
                "unknown-type",
                f"this node does not serve message type {env.type!r}; "
                "GET /.well-known/liquidfab lists the types it serves.",
                422,
            )
        skew = abs(env.moment.timestamp() - self.clock())
        if skew > self.limits.clock_skew_seconds:
            raise ProtocolError(
                "stale-time",
                f"the message time {env.time} is {skew:.0f} s from the node's clock; "
                f"at most {self.limits.clock_skew_seconds} s is accepted. Sign it again with "
                "the current time (and check the sender's clock).",
                422,
            )
        if message_type.subject_required and env.subject is None:
            raise ProtocolError("schema-invalid", f"{env.type} needs a subject attribute.", 422)
        try:
            payload = message_type.payload.model_validate(env.data)
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise ProtocolError(
                "schema-invalid",
                f"data{'.' + where if where else ''}: {err['msg']} (schema of {env.type}: "
                "GET /v1/schemas).",
                422,
            ) from e
        return Prepared(env, message_type, payload)

    def _signed(self, prepared: Prepared, verified: bool) -> None:
        """The signature's verdict, and the checks that only a signed message deserves."""
        if not verified:
            raise ProtocolError(
                "bad-signature",
                "the signature does not match the message and its source key; sign the RFC "
                "8785 canonical bytes of every attribute but 'signature' with the source's key.",
                401,
            )
        legs = prepared.envelope.settlement
        policy = prepared.message_type.settlement
        if legs and (self.settle is None or policy == "forbidden"):
            why = (
                "this node does not settle transfers"
                if self.settle is None
                else f"{prepared.envelope.type} carries no settlement"
            )
            raise ProtocolError(
                "settlement-unsupported",
                f"{why}; send the message without a settlement attribute.",
                422,
            )
        if not legs and policy == "required":
            raise ProtocolError(
                "settlement-required",
                f"{prepared.envelope.type} moves value: put its transfers in the settlement "
                "attribute.",
                422,
            )

    # the transaction ------------------------------------------------------------

    def submit(self, message: Envelope | dict[str, Any]) -> Outcome:
        """Check and apply one message."""
        return self.submit_many([message])[0]

    def submit_many(
        self, messages: Iterable[Envelope | dict[str, Any] | ProtocolError]
    ) -> list[Outcome]:
        """Check and apply messages in order, in one transaction; an outcome each.

        An item that is already a ProtocolError (refused while decoding) keeps its place.
        """
        slots: list[Prepared | Outcome] = []
        for item in messages:
            if isinstance(item, ProtocolError):
                slots.append(_problem(item))
                continue
            try:
                slots.append(self._check(item))
            except ProtocolError as e:
                slots.append(_problem(e, _named(item)))
        checked = [(i, s) for i, s in enumerate(slots) if isinstance(s, Prepared)]
        verdicts = verify_all([prepared.envelope for _, prepared in checked])
        ready: list[Envelope] = []
        for (i, prepared), verified in zip(checked, verdicts, strict=True):
            try:
                self._signed(prepared, verified)
            except ProtocolError as e:
                slots[i] = _problem(e, prepared.envelope)
            else:
                ready.append(prepared.envelope)
        if not ready:
            return [s for s in slots if isinstance(s, Outcome)]

        def apply_all(conn: Connection) -> list[Outcome]:
            notices.clear()  # a transaction run again starts its notices afresh
            now_us = int(self.clock() * 1_000_000)
            # Two queries for the whole batch instead of two per message. Participants are
            # never deleted, so a signer found registered here stays registered.
            batch = _Batch(
                logged=message_log.get_messages(conn, ((e.source, e.id) for e in ready)),
                signers=directory.registered_among(conn, (e.source for e in ready)),
                notices=notices,
            )
            return [
                self._apply(conn, s, now_us, batch) if isinstance(s, Prepared) else s for s in slots
            ]

        notices: list[tuple[str, str]] = []
        outcomes = self._writer.run(apply_all)
        if notices:
            for listener in list(self.listeners):
                try:
                    listener(notices)
                except Exception:  # a notice is a hint; the messages are committed
                    _log.exception("a commit listener failed")
        return outcomes

    def close(self) -> None:
        """Apply what is queued, then stop the writer thread."""
        self._writer.close()

    def _apply(self, conn: Connection, prepared: Prepared, now_us: int, batch: _Batch) -> Outcome:
        env = prepared.envelope
        stored = batch.logged.get((env.source, env.id))
        if stored is not None:
            return self._repeat(stored, env)
        for _ in range(2):
            try:
                return self._attempt(conn, prepared, now_us, batch)
            except DuplicateKey:
                # A concurrent transaction (another node on the same PostgreSQL database)
                # committed a row this message needed first. If it was this message, answer
                # as for a retry; otherwise run the message again: its statements now see
                # that row, and its handler refuses or applies accordingly.
                stored = message_log.get_message(conn, env.source, env.id)
                if stored is not None:
                    return self._repeat(stored, env)
        return _problem(
            ProtocolError(
                "store-unavailable",
                "the message collided twice with concurrent writes; send it again.",
                503,
            ),
            env,
        )

    def _attempt(self, conn: Connection, prepared: Prepared, now_us: int, batch: _Batch) -> Outcome:
        """One try at a message, inside its savepoint; DuplicateKey escapes to ``_apply``."""
        env = prepared.envelope
        try:
            with savepoint(conn):
                if (
                    prepared.message_type.signer_must_be_registered
                    and env.source not in batch.signers
                    and not directory.get_participant(conn, env.source)
                ):
                    raise ProtocolError(
                        "unknown-signer",
                        f"{env.source} is not registered on this node; send "
                        "org.liquidfab.identity.register first.",
                        403,
                    )
                ctx = Context(conn, env, prepared.payload, now_us, self.node, env.settlement)
                if ctx.settlement and self.settle is not None:
                    ctx.transfers = self.settle(ctx)
                result = prepared.message_type.handler(ctx)
                notices = ctx.notices
                if ctx.transfers:
                    result = {**result, "transfers": ctx.transfers}
                row = {
                    "source": env.source,
                    "msg_id": env.id,
                    "type": env.type,
                    "subject": env.subject,
                    "time": env.time,
                    "received_us": now_us,
                    "digest": env.digest,
                    "envelope": env.attributes,
                    "result": result,
                }
                row["seq"] = message_log.insert_message(conn, **row)
        except ProtocolError as e:
            # The batch's log lookup may predate a racing node's commit of this very
            # message, whose state change is what the handler refused on; a retry answer
            # is owed then, not the refusal.
            stored = message_log.get_message(conn, env.source, env.id)
            if stored is not None:
                return self._repeat(stored, env)
            return _problem(e, env)
        batch.logged[(env.source, env.id)] = row  # a repeat later in the batch finds it
        batch.notices.extend(notices)
        return Outcome(201, receipt_of(row))

    @staticmethod
    def _repeat(stored: dict[str, Any], env: Envelope) -> Outcome:
        if stored["digest"] == env.digest:
            return Outcome(200, receipt_of(stored), duplicate=True)
        return _problem(
            ProtocolError(
                "replayed-conflict",
                f"{env.source} already sent a different message with id {env.id!r}; "
                "every new message needs a new id (retries of the same message may reuse it).",
                409,
            ),
            env,
        )
