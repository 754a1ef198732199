"""``perdure server``: the HTTP API (and web UI) of a perdure database, as one ASGI app.

Needs the ``server`` extra: ``pip install 'perdure[server]'``. Run it with ``perdure server
--db URL``, or mount it in an ASGI application of your own::

    from perdure.server import create_app

    client = await Client.connect("sqlite:///app.db")
    app.mount("/perdure", create_app(client, token_file="app.db.tokens"))

docs/server.md describes the routes, authentication and tokens.
"""

from perdure.server._app import create_app

__all__ = ["create_app"]
