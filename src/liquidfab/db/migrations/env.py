"""Alembic environment: always given a connection by liquidfab.db.migrate."""

from alembic import context

from liquidfab.db.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - offline mode is not used
    raise RuntimeError("liquidfab migrations run through liquidfab.db.migrate.upgrade")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
