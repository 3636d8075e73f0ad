"""What asyncpg raises when PostgreSQL is out of reach for a while, rather than when a statement is wrong:
the worker retries these (on a new connection), the API answers them 503, and the live listener
reconnects after them.

    OSError, TimeoutError               no server at the address, a dropped socket, no answer in time
    PostgresConnectionError (08...)     a connection lost or refused, e.g. mid-statement
    InterfaceError                      an operation on a connection that was closed
    InternalClientError                 a pooled connection's next use after the server ended it
    OperatorInterventionError (57...)   shutting down, starting up, a crash of another backend, a statement
                                        cancelled by an administrator or a timeout
    InsufficientResourcesError (53...)  too many connections, disk or memory full
"""

from __future__ import annotations

import asyncpg

DATABASE_UNAVAILABLE = (OSError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
                        asyncpg.InternalClientError, asyncpg.OperatorInterventionError,
                        asyncpg.InsufficientResourcesError)
