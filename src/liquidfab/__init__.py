"""liquidfab: an open platform for the liquefied factory.

The capabilities live in subpackages (``liquidfab.identity``, ``liquidfab.protocol``,
``liquidfab.db``, ``liquidfab.node``); the error tree is re-exported here.
"""

from liquidfab.errors import IdentityError, LiquidfabError, ProtocolError, Refused, StoreError

__version__ = "0.1.0"

__all__ = [
    "IdentityError",
    "LiquidfabError",
    "ProtocolError",
    "Refused",
    "StoreError",
    "__version__",
]
