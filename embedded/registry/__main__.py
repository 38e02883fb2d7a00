"""`python -m govpulse.embedded.registry`: serve the embedded registry until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from aiohttp import web

from govpulse.embedded.registry.app import build_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m govpulse.embedded.registry",
        description="Confluent-compatible schema registry (Avro), durable under --data-dir.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8081, help="port to bind (default 8081)")
    parser.add_argument(
        "--data-dir", type=Path, default=Path(".govpulse/registry"), help="where state is kept"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    web.run_app(
        build_app(args.data_dir),
        host=args.host,
        port=args.port,
        print=lambda _: logging.getLogger("registry").info(
            "schema registry on http://%s:%d (state in %s)", args.host, args.port, args.data_dir
        ),
        access_log=None,
    )


if __name__ == "__main__":
    main()
