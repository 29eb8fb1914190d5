"""A TCP proxy on 127.0.0.1 that delays what a client sends (not the answers): a node
whose link to Redis is slow, in a test, in front of a real redis-server."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from types import TracebackType


class DelayProxy:
    """Forwards ``127.0.0.1:port`` to ``127.0.0.1:target``; bytes towards the target
    leave ``delay`` seconds after they arrived, in order."""

    def __init__(self, target: int, delay: float) -> None:
        self.target = target
        self.delay = delay
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self) -> DelayProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _listen(self) -> asyncio.Server:
        return await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            client_w.close()
            return
        late: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def read_client() -> None:
            while data := await client_r.read(65536):
                late.put_nowait((time.monotonic() + self.delay, data))
            late.put_nowait((0.0, b""))

        async def send_late() -> None:
            while True:
                due, data = await late.get()
                if not data:
                    break
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                up_w.write(data)
                await up_w.drain()
            up_w.close()

        async def answer() -> None:
            while data := await up_r.read(65536):
                client_w.write(data)
                await client_w.drain()
            client_w.close()

        with contextlib.suppress(OSError, asyncio.CancelledError):
            await asyncio.gather(read_client(), send_late(), answer())
        client_w.close()
        up_w.close()
