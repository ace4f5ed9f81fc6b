"""Alembic environment shared by every plugin; :mod:`kabinet.migrations` drives it.

The connection and the plugin's schema (its ``MetaData``, version table and the filter
that limits autogenerate to its own tables) arrive in ``config.attributes``.
"""

from alembic import context

config = context.config
connection = config.attributes["connection"]
schema = config.attributes["schema"]

context.configure(connection=connection, **schema.context_options(connection.dialect.name))
with context.begin_transaction():
    context.run_migrations()
