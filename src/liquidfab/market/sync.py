"""Bring the TUF repository's market roles up to the store's, after each commit.

A handler cannot write files inside its transaction (a refusal rolls the store back,
not the disk), so the store is the truth: territories say whom the ``market`` role
delegates to, ``market_roles`` holds each territory's latest role metadata as its
creator signed it, ``market_releases`` the targets. After a commit whose notices touch
the market, and once at start (a crash between a commit and its files), this writes
what the repository lacks: the uploaded target files, the territories' role metadata,
a market role re-signed by the node when the delegations changed, then a new snapshot
and timestamp.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import Connection, select
from tuf.api.metadata import Metadata

from liquidfab.db import Database
from liquidfab.db.tables import market_releases, market_roles, territories
from liquidfab.fleet.repository import EXPIRY, MARKET_ROLE, TargetInfo
from liquidfab.fleet.service import RepositoryService
from liquidfab.market.delegation import market_metadata

__all__ = ["MarketSync"]

log = logging.getLogger(__name__)


class MarketSync:
    """Writes the store's market state into a repository (see the module)."""

    def __init__(self, database: Database, service: RepositoryService) -> None:
        self.database = database
        self.service = service
        self._lock = threading.Lock()  # listeners run in each submitting thread

    def on_commit(self, notices: Iterable[tuple[str, str]]) -> None:
        if any(kind == "market" for kind, _ in notices):
            try:
                self.sync()
            except Exception:  # a listener must not fail the commit it follows
                log.exception("writing the market's roles into the repository failed")

    def _read(self, conn: Connection) -> tuple[list, list, list]:
        terr = [dict(r._mapping) for r in conn.execute(select(territories))]
        roles = list(conn.execute(select(market_roles.c.role, market_roles.c.document)))
        releases = list(
            conn.execute(
                select(market_releases.c.target, market_releases.c.sha256, market_releases.c.length)
            )
        )
        return terr, roles, releases

    def sync(self) -> bool:
        """Write what the repository lacks; True when it changed."""
        with self._lock:  # one sync at a time, each reading the store afresh
            return self._sync()

    def _sync(self) -> bool:
        terr, roles, releases = self.database.read(self._read)
        repo = self.service.repository
        files: dict[str, bytes] = {}
        for target, sha256, length in releases:
            stored = TargetInfo(target, length, sha256, {}).stored_as
            if (repo.targets_dir / stored).exists():
                continue
            upload = self.service.uploads / sha256
            if upload.exists():
                files[stored] = upload.read_bytes()
            else:  # pragma: no cover - the handler saw it; only a wiped folder loses it
                log.error("the upload of %s (%s) is gone", target, sha256)
        wanted = {}
        current = repo.delegated(MARKET_ROLE)
        version = current.signed.version if current else 0
        now = datetime.now(UTC).replace(microsecond=0)
        market = market_metadata(terr, version + 1, self.service.market_key, now)
        held = current.signed.delegations if current else None
        stale = current is None or current.signed.expires - now < EXPIRY["targets"] / 2
        if stale or held is None or held.to_dict() != market.signed.delegations.to_dict():
            wanted[MARKET_ROLE] = market
        for role, document in roles:
            wanted[role] = Metadata.from_bytes(document.encode())
        return self.service.write_delegated(wanted, files)
