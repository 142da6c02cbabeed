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
    status = 429
