"""The data-lake reader: Stellar ledgers (LedgerCloseMeta XDR) turned into contract events exactly as
Stellar RPC's getEvents gives them.

    walk (XDR to events; skip and skip_tx step over the rest; reference is stellar-sdk's reading) ─▶ LedgerEvents
"""
