"""ClickHouse's HTTP interface over the embedded engine, so other processes can share it.

A chdb directory opens in one process only: `govpulse serve`. Serving the engine's HTTP
interface from that process lets other processes use the store as if it were a ClickHouse
server at `http://127.0.0.1:<port>`: more sinks (the multi-worker set-up), `govpulse audit`,
a standalone dashboard, or `curl 'http://127.0.0.1:8123/?query=SELECT+1'`.

It speaks the part of the protocol clickhouse-connect and curl use: the query in the body or
the `query` parameter, `database`, `default_format`, server-side parameters (`param_*`, in
the URL or as multipart form fields), settings as URL parameters, inserts whose data follows
`INSERT … FORMAT <fmt>` (gzip, lz4 or zstd encoded), `/ping`, the summary headers, and
errors the way ClickHouse reports them (status 500, `X-ClickHouse-Exception-Code`). No users
and no sessions: it binds to loopback, like every embedded server.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import queue
import re
import tempfile
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from govpulse.clickhouse import ENGINE_DIR_HEADER

# URL parameters that steer the HTTP layer instead of being ClickHouse settings.
_TRANSPORT = frozenset(
    {
        "query",
        "database",
        "default_format",
        "query_id",
        "session_id",
        "session_timeout",
        "session_check",
        "compress",
        "decompress",
        "user",
        "password",
        "quota_key",
        "buffer_size",
        "wait_end_of_query",
        "enable_http_compression",
        "send_progress_in_http_headers",
        "http_headers_progress_interval_ms",
        "client_protocol_version",
        "role",
    }
)
_INSERT = re.compile(
    r"^\s*(?P<head>INSERT\s+INTO\s+.+?)\s+(?:SETTINGS\s+(?P<settings>.+?)\s+)?"
    r"FORMAT\s+(?P<format>\w+)[ \t]*(?:\r?\n|$)",  # the data starts after this one newline
    re.IGNORECASE | re.DOTALL,
)
_TRAILING_FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
_ERROR_CODE = re.compile(r"Code:\s*(\d+)")
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class RequestError(ValueError):
    """A request this endpoint cannot run (reported like ClickHouse's own 400s)."""


@dataclass(frozen=True)
class Statement:
    """One request, parsed: what to run, with which data, settings and parameters."""

    sql: str
    data: bytes
    database: str | None
    output_format: str
    settings: dict[str, str]
    parameters: dict[str, str]


def _decoded(body: bytes, encoding: str) -> bytes:
    """The request body without its Content-Encoding."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "lz4":
        import lz4.frame

        return lz4.frame.decompress(body)
    if encoding == "zstd":
        from backports import zstd  # what clickhouse-connect compresses with

        return zstd.decompress(body)
    raise RequestError(f"Content-Encoding {encoding!r} is not supported (gzip, lz4, zstd are)")


def parse_request(params: Mapping[str, str], body: bytes) -> Statement:
    """The statement of one HTTP request, following ClickHouse's rules.

    With a `query` parameter the body is the data; without one the body is the query, and
    for an insert the data follows the `FORMAT <name>` line.
    """
    data = b""
    if "query" in params:
        sql, data = params["query"], body
    else:
        text = body
        match = _INSERT.match(text[:4096].decode("utf-8", "replace"))
        if match:
            head_len = len(match.group(0).encode())
            sql, data = text[:head_len].decode().rstrip("\n"), text[head_len:]
        else:
            sql = text.decode("utf-8", "replace")
    if not sql.strip():
        raise RequestError("Empty query")
    settings = {}
    for name, value in params.items():
        if name in _TRANSPORT or name.startswith("param_"):
            continue
        if not _SETTING_NAME.match(name):
            raise RequestError(f"Unknown setting {name!r}")
        settings[name] = value
    return Statement(
        sql=sql,
        data=data,
        database=params.get("database") or None,
        output_format=params.get("default_format") or "TabSeparated",
        settings=settings,
        parameters={k[len("param_") :]: v for k, v in params.items() if k.startswith("param_")},
    )


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class EngineConnections:
    """A few chdb connections to the directory the process already has open, one per call."""

    def __init__(self, path: str, size: int = 4) -> None:
        import chdb

        self._free: queue.Queue[Any] = queue.Queue()
        for _ in range(size):
            self._free.put(chdb.connect(os.path.realpath(path)))
        self.size = size

    @contextmanager
    def connection(self) -> Iterator[Any]:
        conn = self._free.get()
        try:
            yield conn
        finally:
            self._free.put(conn)

    def run(self, statement: Statement) -> tuple[bytes, str, dict[str, Any]]:
        """(response body, its format, summary) of one statement; raises the engine's error."""
        with self.connection() as conn:
            conn.query(f"USE {_identifier(statement.database or 'default')}", "TabSeparated")
            if statement.data:
                return self._insert(conn, statement)
            names = list(statement.settings)
            for name in names:
                conn.query(f"SET {name} = {_literal(statement.settings[name])}", "TabSeparated")
            try:
                result = conn.query(statement.sql, statement.output_format, statement.parameters)
            finally:
                for name in names:
                    conn.query(f"SET {name} = DEFAULT", "TabSeparated")
            trailing = _TRAILING_FORMAT.search(statement.sql)
            fmt = trailing.group(1) if trailing else statement.output_format
            return result.bytes() or b"", fmt, _summary(result)

    @staticmethod
    def _insert(conn: Any, statement: Statement) -> tuple[bytes, str, dict[str, Any]]:
        match = _INSERT.match(statement.sql + "\n")
        if not match:
            raise RequestError("Data was sent with a statement that is not INSERT … FORMAT <name>")
        clauses = [match.group("settings")] if match.group("settings") else []
        clauses += [f"{k} = {_literal(v)}" for k, v in statement.settings.items()]
        settings = f" SETTINGS {', '.join(clauses)}" if clauses else ""
        with tempfile.NamedTemporaryFile(suffix=".insert") as data:
            data.write(statement.data)
            data.flush()
            sql = (
                f"{match.group('head')} FROM INFILE {_literal(data.name)}{settings} "
                f"FORMAT {match.group('format')}"
            )
            result = conn.query(sql, "TabSeparated", statement.parameters)
        return b"", "TabSeparated", _summary(result)


def _identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _summary(result: Any) -> dict[str, Any]:
    return {
        "read_rows": str(result.rows_read()),
        "read_bytes": str(result.bytes_read()),
        "written_rows": str(result.rows_written()),
        "written_bytes": str(result.bytes_written()),
        "elapsed_ns": str(int(result.elapsed() * 1e9)),
    }


def _error_response(message: str, status: int, code: str) -> web.Response:
    return web.Response(
        status=status,
        text=message if message.endswith("\n") else message + "\n",
        headers={"X-ClickHouse-Exception-Code": code},
    )


def build_app(path: str, connections: int = 4) -> web.Application:
    """An aiohttp app speaking ClickHouse's HTTP interface over the chdb directory `path`."""
    engine = EngineConnections(path, connections)
    executor = ThreadPoolExecutor(max_workers=engine.size, thread_name_prefix="clickhouse-http")
    timezone = engine_timezone(engine)

    served = os.path.realpath(path)

    async def ping(_: web.Request) -> web.Response:
        return web.Response(text="Ok.\n", headers={ENGINE_DIR_HEADER: served})

    async def handle(request: web.Request) -> web.Response:
        try:
            if request.content_type == "multipart/form-data":
                # clickhouse-connect sends the query and its parameters as form fields when
                # they would make the URL too long (a look-up of thousands of ids)
                form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
                statement = parse_request({**request.query, **form}, b"")
            else:
                body = _decoded(await request.read(), request.headers.get("Content-Encoding", ""))
                statement = parse_request(request.query, body)
            loop = asyncio.get_running_loop()
            output, fmt, summary = await loop.run_in_executor(executor, engine.run, statement)
        except RequestError as exc:
            return _error_response(f"Code: 27. DB::Exception: {exc}. (BAD_REQUEST)", 400, "27")
        except Exception as exc:  # the engine's own error: pass it on as ClickHouse would
            message = str(exc)
            code = _ERROR_CODE.search(message)
            return _error_response(message, 500, code.group(1) if code else "1001")
        return web.Response(
            body=output,
            headers={
                "X-ClickHouse-Format": fmt,
                "X-ClickHouse-Timezone": timezone,
                "X-ClickHouse-Summary": json.dumps(summary),
                "X-ClickHouse-Query-Id": request.query.get("query_id", ""),
                "Content-Type": "text/plain; charset=UTF-8",
            },
        )

    async def close(_: web.Application) -> None:
        executor.shutdown(wait=False, cancel_futures=True)

    app = web.Application(client_max_size=1 << 30)
    app.router.add_get("/ping", ping)
    app.router.add_route("*", "/", handle)
    app.on_cleanup.append(close)
    return app


async def start(path: str, port: int, host: str = "127.0.0.1") -> web.AppRunner:
    """Serve `path`'s engine on host:port; the caller cleans the runner up.

    Bodies are decoded here (lz4 included), not by aiohttp, so the server is run with
    auto_decompress off.
    """
    runner = web.AppRunner(build_app(path), auto_decompress=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def engine_timezone(engine: EngineConnections) -> str:
    with engine.connection() as conn:
        return conn.query("SELECT timezone()", "TabSeparated").bytes().decode().strip()
