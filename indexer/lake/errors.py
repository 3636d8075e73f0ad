"""The data-lake reader's errors. Every message says which source or object, and what to do:

    LakeError
    ├── LakeSourceError    the source is not a lake, an object or a file of ledgers, or lacks the range asked
    │   └── LakeNetworkMismatch   the lake holds another network's ledgers
    ├── LakeUnavailable    the store could not be reached, even after the store client's own retries
    └── LakeDataError      an object is truncated or is not LedgerCloseMeta XDR
"""

from __future__ import annotations


class LakeError(Exception):
    """Any failure reading a data lake."""


class LakeSourceError(LakeError):
    """The source is not what it should be; retrying cannot help."""


class LakeEndsBefore(LakeSourceError):
    """An object or a file read from a ledger holds none from it on: it ends before that ledger."""


class LakeUnavailable(LakeError):
    """The store is unreachable or failing; trying again later may help."""


class LakeDataError(LakeError):
    """An object's bytes are not ledgers: truncated, corrupt, or not LedgerCloseMeta."""


class LakeNetworkMismatch(LakeSourceError):
    """The lake's manifest names another network than the one asked for."""
