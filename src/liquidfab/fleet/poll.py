"""The device poll: one small answer a device asks for at every interval (hawkBit's DDI
base resource). It says how long to sleep and whether anything moved for the device, its
assignment's counter and when its licenses last changed, so a device fetches the signed
documents only when they changed.

Polls are by far the most frequent request a node serves (a million devices polling
every 30 minutes make 556 a second), so the answers are kept in memory. The dispatcher's
commit listener forgets a device's answer when a message touched it; an answer computed
while such a commit happened is not kept, so a stale one never sticks.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, func, select

from liquidfab.db import Database
from liquidfab.db.tables import assignments, devices, entitlements

__all__ = ["DEFAULT_SLEEP_SECONDS", "PollBoard", "poll_answer"]

DEFAULT_SLEEP_SECONDS = 300
_MAX_ENTRIES = 500_000  # about 150 bytes each


def poll_answer(conn: Connection, did: str, sleep_seconds: int) -> dict[str, Any] | None:
    """The poll document for ``did``, or None for a device this node does not know."""
    if conn.execute(select(devices.c.did).where(devices.c.did == did)).first() is None:
        return None
    counter = conn.execute(
        select(assignments.c.counter).where(assignments.c.device == did)
    ).scalar()
    e = entitlements.c
    issued, revoked, changed = conn.execute(
        select(func.max(e.issued_us), func.max(e.revoked_us), func.max(e.changed_us)).where(
            e.device == did
        )
    ).one()
    return {
        "device": did,
        "sleep_seconds": sleep_seconds,
        "assignment": int(counter or 0),
        "licenses": max(int(issued or 0), int(revoked or 0), int(changed or 0)),
    }


class PollBoard:
    """Poll answers by device, as JSON bytes, forgotten when a commit touches the device."""

    def __init__(self, database: Database, sleep_seconds: int = DEFAULT_SLEEP_SECONDS) -> None:
        self.database = database
        self.sleep_seconds = sleep_seconds
        self._answers: OrderedDict[str, bytes] = OrderedDict()
        self._epoch = 0  # moves on every forget: an answer read across one is not kept
        self._lock = threading.Lock()
        self.served = 0  # polls answered, for the benchmark and the status page
        self.computed = 0

    def cached(self, did: str) -> bytes | None:
        with self._lock:
            answer = self._answers.get(did)
            if answer is not None:
                self.served += 1
            return answer

    def compute(self, did: str) -> bytes | None:
        """Read the answer from the database (blocking), keep it unless a commit raced."""
        with self._lock:
            epoch = self._epoch
        document = self.database.read(lambda c: poll_answer(c, did, self.sleep_seconds))
        if document is None:
            return None
        answer = json.dumps(document, separators=(",", ":")).encode()
        with self._lock:
            self.computed += 1
            self.served += 1
            if self._epoch == epoch:
                self._answers[did] = answer
                if len(self._answers) > _MAX_ENTRIES:
                    self._answers.popitem(last=False)
        return answer

    def forget(self, notices: Iterable[tuple[str, str]]) -> None:
        """The commit listener: drop the answers of the devices a commit touched."""
        dids = [subject for kind, subject in notices if kind == "device"]
        if not dids:
            return
        with self._lock:
            self._epoch += 1
            for did in dids:
                self._answers.pop(did, None)
