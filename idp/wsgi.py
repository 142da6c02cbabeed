"""WSGI entry point for servers other than ``idp serve``: ``gunicorn 'idp.wsgi:app'``.

``idp serve`` is the supported way to run the IdP (it validates the worker count against the
session store); this module exists for platforms that expect a WSGI callable."""
from idp import create_app

app = create_app()
