"""Published products, compiled once and kept with their configurators and AAS exports.

Compiling a definition and building its solver model take milliseconds; a form that
narrows as you pick asks many times a minute, so the node keeps what it built per
(product, version). Versions never change once published, so nothing goes stale.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from liquidfab.db import Database
from liquidfab.product import Product, catalog, product_from_data
from liquidfab.product.aas import AasExport, aas_id_b64, type_shell
from liquidfab.product.configurator import Configurator
from liquidfab.product.value_chart import write_chart

__all__ = ["Shelf", "ShelfItem"]

T = TypeVar("T")


@dataclass
class ShelfItem:
    product: Product
    configurator: Configurator
    lock: threading.Lock = field(default_factory=threading.Lock)
    _aas: AasExport | None = None
    _chart: bytes | None = None

    def solve(self, fn: Callable[[Configurator], T]) -> T:
        """Run ``fn`` on the configurator, one request at a time for this product."""
        with self.lock:
            return fn(self.configurator)

    def chart_png(self, report: Callable[[], Any]) -> bytes:
        """The value chart, drawn once per version (a version never changes)."""
        if self._chart is None:
            with tempfile.TemporaryDirectory() as tmp:
                self._chart = write_chart(report(), Path(tmp) / "value.png").read_bytes()
        return self._chart

    @property
    def aas(self) -> AasExport:
        if self._aas is None:
            self._aas = type_shell(self.product)
        return self._aas


class Shelf:
    """What the node holds of each published product version, built on first use."""

    def __init__(self, database: Database, *, time_limit: float = 2.0) -> None:
        self.database = database
        self.time_limit = time_limit
        self._items: dict[tuple[str, str], ShelfItem] = {}
        self._lock = threading.Lock()

    def latest(self, product_id: str) -> str | None:
        """The version a product's page shows: the newest not retired (see catalog.latest)."""
        return self.database.read(lambda c: catalog.latest(c, product_id))

    def get(self, product_id: str, version: str | None = None) -> ShelfItem | None:
        """The compiled product, or None when the node holds no such version."""
        if version is None:
            version = self.latest(product_id)
            if version is None:
                return None
        key = (product_id, version)
        item = self._items.get(key)
        if item is not None:
            return item
        row = self.database.read(lambda c: catalog.get_version(c, product_id, version))
        if row is None:
            return None
        product = product_from_data(row["definition"], file=f"{product_id}@{version}")
        item = ShelfItem(product, Configurator(product, time_limit=self.time_limit))
        with self._lock:
            return self._items.setdefault(key, item)

    def all_versions(self) -> list[tuple[str, str]]:
        def load(conn: Any) -> list[tuple[str, str]]:
            return [
                (p["id"], v["version"])
                for p in catalog.list_products(conn)
                for v in catalog.versions_of(conn, p["id"])
            ]

        return self.database.read(load)

    def shells(self) -> dict[str, tuple[ShelfItem, str | None]]:
        """Every AAS the node serves, by base64url id: (item, None) for a shell,
        (item, submodel id) for a submodel."""
        out: dict[str, tuple[ShelfItem, str | None]] = {}
        for product_id, version in self.all_versions():
            item = self.get(product_id, version)
            if item is None:  # pragma: no cover - listed a moment ago, never deleted
                continue
            export = item.aas
            out[aas_id_b64(export.shell_id)] = (item, None)
            for sm in export.submodel_ids:
                out[aas_id_b64(sm)] = (item, sm)
        return out
