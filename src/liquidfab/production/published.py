"""Published product versions, compiled once per process: a version never changes, and
placing an order or recording a unit should not parse the definition again."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from liquidfab.product.configurator import Configurator
from liquidfab.product.definition import Product, product_from_data

__all__ = ["published_product"]

_CACHE_SIZE = 64
# (product id, version) -> (the digest it was compiled from, product, configurator)
_compiled: OrderedDict[tuple[str, str], tuple[str, Product, Configurator]] = OrderedDict()
_compiled_lock = threading.Lock()


def published_product(row: dict[str, Any]) -> tuple[Product, Configurator]:
    """The product of a ``product_versions`` row and its configurator, from the cache when
    the cached one has the row's digest."""
    key = (row["product_id"], row["version"])
    with _compiled_lock:
        found = _compiled.get(key)
        if found is not None and found[0] == row["digest"]:
            _compiled.move_to_end(key)
            return found[1], found[2]
    product = product_from_data(row["definition"], file=f"{key[0]}@{key[1]}")
    configurator = Configurator(product, time_limit=5.0)
    with _compiled_lock:
        _compiled[key] = (row["digest"], product, configurator)
        while len(_compiled) > _CACHE_SIZE:
            _compiled.popitem(last=False)
    return product, configurator
