"""Alembic environment: migrates the database named by the caller (see indexer.database.migrate), then
grants the analysts' read-only role what it may read."""

import asyncio
import logging

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from indexer.tables import READER_ROLE, metadata

config = context.config
log = logging.getLogger("flowfi.migrate")


def grant_reader(connection: Connection) -> None:
    """Create the read-only role for analysts if it is missing (NOLOGIN: analysts' own login roles are
    granted it) and let it read every table and view of the schema, now and later; nothing else.

    It runs with every migration, not in one revision, so that granting it again is `flowfi migrate`
    again: after an administrator created the role where the migrating user may not create roles, or
    after a migration added a table."""
    exists = connection.scalar(text("SELECT true FROM pg_roles WHERE rolname = :role"), {"role": READER_ROLE})
    if not exists:
        may_create = connection.scalar(
            text("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user"))
        if not may_create:
            log.warning("the read-only role %s does not exist and %s may not create roles: have an administrator run "
                        "CREATE ROLE %s NOLOGIN, then run flowfi migrate again", READER_ROLE,
                        connection.scalar(text("SELECT current_user")), READER_ROLE)
            return
        connection.execute(text(f"""
            DO $$ BEGIN
                CREATE ROLE {READER_ROLE} NOLOGIN;
            EXCEPTION WHEN duplicate_object THEN NULL;  -- created meanwhile, by a migration of another database
            END $$"""))
    # SELECT on what the migrating user owns: a table of someone else's in the same schema is not the index's
    connection.execute(text(f"""
        DO $$ DECLARE relation regclass;
        BEGIN
            EXECUTE format('GRANT USAGE ON SCHEMA %I TO {READER_ROLE}', current_schema());
            FOR relation IN SELECT c.oid::regclass FROM pg_class c
                            WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
                              AND pg_has_role(c.relowner, 'USAGE') LOOP
                EXECUTE format('GRANT SELECT ON %s TO {READER_ROLE}', relation);
            END LOOP;
            EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES TO {READER_ROLE}',
                           current_schema());
        END $$"""))


def run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()
        grant_reader(connection)


async def run_online() -> None:
    engine = create_async_engine(config.get_main_option("sqlalchemy.url") or "")
    async with engine.connect() as connection:
        await connection.run_sync(run_migrations)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(run_online())
