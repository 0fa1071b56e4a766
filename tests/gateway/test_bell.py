"""gateway/bell.py: ingest's commit wakes the console's live feeds (rung from another thread,
waited on in an asyncio loop), and a ring between a feed's query and its wait is not lost."""

from __future__ import annotations

import asyncio
import threading
import time

from gateway.bell import Bell


def test_ring_from_another_thread_wakes_a_waiter_at_once() -> None:
    bell = Bell()

    async def main() -> tuple[int, float]:
        seen = bell.rings
        t0 = time.monotonic()
        threading.Timer(0.05, bell.ring).start()
        got = await bell.wait(seen, 10)
        return got, time.monotonic() - t0

    got, waited = asyncio.run(main())
    assert got == 1
    assert waited < 5  # woken by the ring, not by the 10 s timeout


def test_a_ring_before_the_wait_is_not_missed() -> None:
    bell = Bell()

    async def main() -> int:
        seen = bell.rings  # read before the (here simulated) query
        bell.ring()  # a commit while the feed queries
        return await bell.wait(seen, 10)

    t0 = time.monotonic()
    assert asyncio.run(main()) == 1
    assert time.monotonic() - t0 < 5


def test_timeout_without_a_ring_and_no_waiter_left_behind() -> None:
    bell = Bell()

    async def main() -> int:
        return await bell.wait(bell.rings, 0.05)

    assert asyncio.run(main()) == 0
    assert not bell._waiters
    bell.ring()  # nobody waits; a closed loop's waiter would be skipped


def test_many_waiters_in_two_loops() -> None:
    bell = Bell()
    woke: list[int] = []
    ready = threading.Barrier(3)

    def loop_thread() -> None:
        async def main() -> None:
            seen = bell.rings
            ready.wait()
            got = await asyncio.gather(*(bell.wait(seen, 10) for _ in range(5)))
            woke.extend(got)

        asyncio.run(main())

    threads = [threading.Thread(target=loop_thread) for _ in range(2)]
    for t in threads:
        t.start()
    ready.wait()
    time.sleep(0.1)
    bell.ring()
    for t in threads:
        t.join(10)
    assert woke == [1] * 10


def test_another_process_commit_rings_through_postgresql(pg_url: str) -> None:
    """NOTIFY from another process's token rings; this process's own token does not (its
    commits ring directly)."""
    import subprocess
    import sys

    from gateway import bell as bell_mod
    from gateway import db

    engine = db.make_engine(pg_url)
    b = Bell()
    listener = bell_mod.Listener(engine, b)
    listener.start()
    try:
        assert listener.listening.wait(10)
        bell_mod.notify(engine)  # our own: ignored
        time.sleep(0.5)
        assert b.rings == 0
        code = "import sys; from gateway import bell, db; bell.notify(db.make_engine(sys.argv[1]))"
        subprocess.run([sys.executable, "-c", code, pg_url], check=True, timeout=60)
        deadline = time.monotonic() + 10
        while b.rings == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert b.rings == 1 and listener.heard == 1
    finally:
        listener.stop()
        engine.dispose()
