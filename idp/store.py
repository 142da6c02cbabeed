"""Short-lived key/value state: sessions, throttling counters, one-time challenges.

Two backends with one interface: Redis (shared by every instance) and an in-process store
(single process; ``idp serve`` then runs one worker with threads). Values are strings.
"""
from __future__ import annotations

import threading
import time


class StoreUnavailable(Exception):
    """The backing store cannot be reached; callers answer 503 rather than guess."""


class MemoryStore:
    """A thread-safe in-process store with per-key expiry."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._writes = 0

    def _live(self, key: str, now: float) -> str | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[1] <= now:
            del self._data[key]
            return None
        return item[0]

    def _sweep(self, now: float) -> None:
        self._writes += 1
        if self._writes % 1000 == 0:
            for key in [k for k, (_, exp) in self._data.items() if exp <= now]:
                del self._data[key]

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._live(key, time.monotonic())

    def set(self, key: str, value: str, ttl: int) -> None:
        with self._lock:
            now = time.monotonic()
            self._sweep(now)
            self._data[key] = (value, now + ttl)

    def add(self, key: str, value: str, ttl: int) -> bool:
        """Set only when absent; True when this call set it."""
        with self._lock:
            now = time.monotonic()
            if self._live(key, now) is not None:
                return False
            self._sweep(now)
            self._data[key] = (value, now + ttl)
            return True

    def pop(self, key: str) -> str | None:
        """Atomically read and delete (single-use values)."""
        with self._lock:
            value = self._live(key, time.monotonic())
            self._data.pop(key, None)
            return value

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def incr(self, key: str, ttl: int) -> int:
        """Atomically add one; the expiry is set when the counter is created."""
        with self._lock:
            now = time.monotonic()
            current = self._live(key, now)
            if current is None:
                self._sweep(now)
                self._data[key] = ("1", now + ttl)
                return 1
            value = int(current) + 1
            self._data[key] = (str(value), self._data[key][1])
            return value

    def ping(self) -> bool:
        return True

    def flush(self) -> None:
        with self._lock:
            self._data.clear()


class RedisStore:
    """The same interface over Redis; every operation is a single atomic command."""

    def __init__(self, url: str, prefix: str = "idp:") -> None:
        import redis

        self._errors = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
        self._redis = redis.Redis.from_url(
            url, decode_responses=True, socket_timeout=2, socket_connect_timeout=2,
            health_check_interval=15,
        )
        self._prefix = prefix

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except self._errors as exc:
            raise StoreUnavailable("the session store is not reachable") from exc

    def get(self, key: str) -> str | None:
        return self._call(self._redis.get, self._prefix + key)

    def set(self, key: str, value: str, ttl: int) -> None:
        self._call(self._redis.set, self._prefix + key, value, ex=ttl)

    def add(self, key: str, value: str, ttl: int) -> bool:
        return bool(self._call(self._redis.set, self._prefix + key, value, ex=ttl, nx=True))

    def pop(self, key: str) -> str | None:
        return self._call(self._redis.getdel, self._prefix + key)

    def delete(self, key: str) -> None:
        self._call(self._redis.delete, self._prefix + key)

    def incr(self, key: str, ttl: int) -> int:
        pipe = self._redis.pipeline()
        pipe.incr(self._prefix + key)
        pipe.expire(self._prefix + key, ttl, nx=True)
        return int(self._call(pipe.execute)[0])

    def ping(self) -> bool:
        return bool(self._call(self._redis.ping))

    def flush(self) -> None:
        keys = self._call(self._redis.keys, self._prefix + "*")
        if keys:
            self._call(self._redis.delete, *keys)


def make_store(redis_url: str | None, prefix: str = "idp:"):
    """Redis when a URL is configured, else the in-process store."""
    return RedisStore(redis_url, prefix) if redis_url else MemoryStore()
