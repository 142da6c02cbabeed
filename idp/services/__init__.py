"""Business rules. Services take plain values, return plain results or raise a DomainError,
and never touch ``flask.request``."""


class DomainError(Exception):
    """A rule refused the operation. ``code`` is stable; ``message`` is safe to show."""

    status = 400

    def __init__(self, code: str, message: str = ""):
        self.code = code
        self.message = message or code
        super().__init__(self.message)


class NotFound(DomainError):
    status = 404


class Throttled(DomainError):
    """Too many attempts; ``retry_after`` (seconds), when given, becomes the Retry-After header."""

    status = 429

    def __init__(self, code: str, message: str = "", *, retry_after: int | None = None):
        super().__init__(code, message)
        self.retry_after = retry_after
