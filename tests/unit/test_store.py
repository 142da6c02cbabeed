"""Both store backends keep the same promises: expiry, set-if-absent, single-use pop and
atomic counters."""
import threading
import time
import uuid

import pytest

from idp.store import MemoryStore, RedisStore, make_store
from tests.support.databases import redis_url

BACKENDS = ["memory", "redis"]


@pytest.fixture(params=BACKENDS)
def store(request):
    if request.param == "memory":
        yield MemoryStore()
        return
    url = redis_url(3)
    if not url:
        pytest.skip("IDP_TEST_REDIS_URL is not set")
    backend = RedisStore(url, prefix=f"test-{uuid.uuid4().hex[:8]}:")
    yield backend
    backend.flush()


def test_make_store_picks_the_backend():
    assert isinstance(make_store(None), MemoryStore)
    assert isinstance(make_store("redis://127.0.0.1:1/0"), RedisStore)


def test_set_get_and_delete(store):
    assert store.get("k") is None
    store.set("k", "v1", 60)
    assert store.get("k") == "v1"
    store.set("k", "v2", 60)
    assert store.get("k") == "v2"
    store.delete("k")
    assert store.get("k") is None


def test_values_expire(store):
    store.set("short", "v", 1)
    store.set("long", "v", 60)
    time.sleep(1.3)
    assert store.get("short") is None
    assert store.get("long") == "v"


def test_add_only_when_absent(store):
    assert store.add("once", "first", 60) is True
    assert store.add("once", "second", 60) is False
    assert store.get("once") == "first"


def test_add_succeeds_again_after_expiry(store):
    assert store.add("lease", "a", 1)
    time.sleep(1.3)
    assert store.add("lease", "b", 60)
    assert store.get("lease") == "b"


def test_pop_is_single_use(store):
    store.set("challenge", "c", 60)
    assert store.pop("challenge") == "c"
    assert store.pop("challenge") is None
    assert store.get("challenge") is None


def test_pop_is_single_use_under_threads(store):
    store.set("code", "x", 60)
    results = []
    barrier = threading.Barrier(8)

    def take():
        barrier.wait()
        results.append(store.pop("code"))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("x") == 1
    assert results.count(None) == 7


def test_incr_counts_and_keeps_the_first_expiry(store):
    assert store.incr("n", 1) == 1
    assert store.incr("n", 60) == 2  # a later ttl does not extend the window
    time.sleep(1.3)
    assert store.incr("n", 60) == 1


def test_incr_is_atomic_under_threads(store):
    per_thread, threads_n = 50, 8
    barrier = threading.Barrier(threads_n)

    def bump():
        barrier.wait()
        for _ in range(per_thread):
            store.incr("hits", 60)

    threads = [threading.Thread(target=bump) for _ in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert int(store.get("hits")) == per_thread * threads_n


def test_flush_empties_the_store(store):
    store.set("a", "1", 60)
    store.set("b", "2", 60)
    store.flush()
    assert store.get("a") is None and store.get("b") is None


def test_ping(store):
    assert store.ping() is True


def test_unreachable_redis_raises_store_unavailable():
    from idp.store import StoreUnavailable
    from tests.support.smtp import free_port

    backend = RedisStore(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(StoreUnavailable):
        backend.get("k")
    with pytest.raises(StoreUnavailable):
        backend.incr("k", 10)
