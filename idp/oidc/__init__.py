"""The OpenID Provider: Authlib's authorization server wired to our storage and policy."""
from flask import Flask


def init_app(app: Flask) -> None:
    """Create the authorization server and register the protocol endpoints."""
    from idp.extensions import csrf
    from idp.oidc import routes
    from idp.oidc.server import init_server

    init_server(app)
    # Back-channel endpoints authenticate clients instead of carrying a CSRF token; the
    # end-session endpoint accepts the RP's cross-site POST and checks CSRF on confirmation.
    for view in (routes.token, routes.revoke, routes.introspect, routes.userinfo, routes.end_session):
        csrf.exempt(view)
    app.register_blueprint(routes.bp)
