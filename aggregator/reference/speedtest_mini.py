"""The reference server's self-hosted Speedtest "mini" endpoints (plain HTTP).

What speedtest-cli (and Ookla's mini page) ask a server for, under
`/speedtest/`:

- `latency.txt`: the body `test=test` (timed by the client as its "ping");
- `random<N>x<N>.jpg`: the download files, N in 350..4000. Ookla's mini
  ships JPEGs of about 2·N² bytes (random350x350.jpg is 245,388 B,
  random4000x4000.jpg 31,625,365 B); we serve exactly 2·N² bytes of
  random data, which is what the client counts;
- `upload.php`: takes a POST body and answers `size=<bytes read>`;
- `speedtest-config.php`: the configuration speedtest-cli would otherwise
  fetch from www.speedtest.net (threads, test lengths, upload sizes), so a
  probe never needs speedtest.net; the values are speedtest.net's usual
  ones and can be changed in `SpeedtestMiniConfig`;
- `/speedtest/` itself: a one-line index naming the upload extension, as
  the mini's index page does (speedtest-cli's set_mini_server reads it).

One small asyncio HTTP/1.1 server: each request on its own connection or
kept alive; bodies are written from one pre-made random buffer through
memoryviews, so serving a 1 Gb/s download costs no copying.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import Sequence
from http import HTTPStatus

from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)

_RANDOM_FILE = re.compile(r"^/speedtest/random(\d{3,4})x(\d{3,4})\.jpg$")
_MAX_SIDE = 4000
_MAX_HEADER_BYTES = 16_384
_MAX_UPLOAD_BYTES = 64 * 1024 * 1024  # speedtest-cli's largest upload chunk is 7 MiB
_CHUNK_BYTES = 1024 * 1024


class SpeedtestMiniConfig(BaseModel):
    """The configuration the mini hands out (speedtest.net's usual values)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threadcount: int = Field(default=4, ge=1, le=32)  # download threads = 2 x this
    download_threadsperurl: int = Field(default=4, ge=1, le=16)
    download_testlength_s: int = Field(default=10, ge=1, le=60)
    upload_threads: int = Field(default=4, ge=1, le=32)
    upload_testlength_s: int = Field(default=10, ge=1, le=60)
    upload_ratio: int = Field(default=5, ge=1, le=7)  # first upload size: 512 KiB
    upload_maxchunkcount: int = Field(default=50, ge=1, le=1000)


def file_bytes(side: int) -> int:
    """Size of random<side>x<side>.jpg: 2·side² (Ookla's files are about that)."""
    return 2 * side * side


def config_xml(config: SpeedtestMiniConfig, client_ip: str) -> bytes:
    """The speedtest-config.php document, in speedtest.net's shape."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<settings>\n'
        f'<client ip="{client_ip}" lat="10.0341" lon="105.7880" isp="wardprobe reference" '
        'isprating="3.7" rating="0" ispdlavg="0" ispulavg="0" loggedin="0" country="VN"/>\n'
        f'<server-config threadcount="{config.threadcount}" ignoreids="" notonmap="" '
        'forcepingid="" preferredserverid=""/>\n'
        f'<download testlength="{config.download_testlength_s}" initialtest="250K" '
        f'mintestsize="250K" threadsperurl="{config.download_threadsperurl}"/>\n'
        f'<upload testlength="{config.upload_testlength_s}" ratio="{config.upload_ratio}" '
        'initialtest="0" mintestsize="32K" threads="'
        f'{config.upload_threads}" maxchunksize="512K" '
        f'maxchunkcount="{config.upload_maxchunkcount}" threadsperurl="4"/>\n'
        "</settings>\n"
    ).encode()


class SpeedtestMini:
    """The HTTP server; `start()` binds, `stop()` closes."""

    def __init__(
        self, addresses: Sequence[str], port: int, config: SpeedtestMiniConfig | None = None
    ) -> None:
        """Nothing listens until `start()`; port 0 picks a free one."""
        self._addresses = tuple(addresses)
        self._port = port
        self._config = config or SpeedtestMiniConfig()
        self._servers: list[asyncio.Server] = []
        # Random, so no compression on the path can flatter the figure.
        self._payload = memoryview(os.urandom(file_bytes(_MAX_SIDE)))
        self.port: int | None = None

    async def start(self) -> None:
        """Listen on every address (all on one port)."""
        port = self._port
        for address in self._addresses:
            server = await asyncio.start_server(self._serve, host=address, port=port)
            self._servers.append(server)
            port = server.sockets[0].getsockname()[1]
        self.port = port

    async def stop(self) -> None:
        """Close the listeners."""
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers = []
        self.port = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._one_request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # a client gone mid-request: nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _one_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Answer one request; False when the connection should close."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        if len(head) > _MAX_HEADER_BYTES:
            await self._respond(writer, 431, b"headers too large\n", close=True)
            return False
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            await self._respond(writer, 400, b"bad request line\n", close=True)
            return False
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name:
                headers[name.strip().lower()] = value.strip()
        close = version == "HTTP/1.0" or headers.get("connection", "").lower() == "close"
        path = target.split("?", 1)[0]
        if method == "POST" and path.startswith("/speedtest/upload."):
            length = int(headers.get("content-length", "0") or 0)
            if not 0 <= length <= _MAX_UPLOAD_BYTES:
                await self._respond(writer, 413, b"upload too large\n", close=True)
                return False
            remaining = length
            while remaining:
                chunk = await reader.read(min(remaining, _CHUNK_BYTES))
                if not chunk:
                    return False
                remaining -= len(chunk)
            await self._respond(writer, 200, f"size={length}".encode(), close=close)
            return not close
        if method not in ("GET", "HEAD"):
            await self._respond(writer, 405, b"method not allowed\n", close=True)
            return False
        body: bytes | memoryview
        if path == "/speedtest/latency.txt":
            body = b"test=test\n"
        elif path in ("/speedtest/speedtest-config.php", "/speedtest-config.php"):
            peer = writer.get_extra_info("peername")
            body = config_xml(self._config, str(peer[0]) if peer else "")
        elif path in ("/speedtest/", "/speedtest", "/"):
            body = b'var uploadExtension: "php";\n'
        elif match := _RANDOM_FILE.match(path):
            side = int(match.group(1))
            if side != int(match.group(2)) or not 100 <= side <= _MAX_SIDE:
                await self._respond(writer, 404, b"no such file\n", close=close)
                return not close
            body = self._payload[: file_bytes(side)]
        else:
            await self._respond(writer, 404, b"no such file\n", close=close)
            return not close
        await self._respond(writer, 200, body, close=close, head_only=method == "HEAD")
        return not close

    async def _respond(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes | memoryview,
        *,
        close: bool,
        head_only: bool = False,
    ) -> None:
        reason = HTTPStatus(status).phrase
        writer.write(
            (
                f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(body)}\r\n"
                "Content-Type: application/octet-stream\r\nCache-Control: no-cache\r\n"
                f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n"
            ).encode()
        )
        if not head_only:
            for offset in range(0, len(body), _CHUNK_BYTES):
                writer.write(body[offset : offset + _CHUNK_BYTES])
                await writer.drain()
        await writer.drain()
