"""The server as a program: `magenta-bridge serve` runs `serve()` until Ctrl-C or SIGTERM.

It says where the bridge listens, what it serves and which bundles it refused, and warns when
it listens beyond this machine. SIGTERM answers every open request with `shutting_down` and
stops the running tool at its next progress report, so the process ends within a second.
"""
from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Sequence

from bridge import protocol as P
from bridge.ableton import AbletonOSC
from bridge.model_store import DEFAULT_BUNDLES_DIR
from bridge.server import DEFAULT_OUTPUT_DIR, BridgeServer

log = logging.getLogger(__name__)


def exposure_warning(host: str, allow: Sequence[str] | None = None) -> str | None:
    """What to tell the user when the bridge listens beyond this machine; None on loopback.

    Kept apart from `serve` so the decision is testable without binding a public address.
    """
    if P.is_loopback(host):
        return None
    if allow:
        return (f"WARNING: listening on {host}, not loopback: only {', '.join(allow)} will be answered; "
                "bind to 127.0.0.1 if no other machine needs the bridge")
    return (f"WARNING: listening on {host}, not loopback: anyone who can reach this machine can use "
            "the bridge; pass --allow with your clients' addresses or bind to 127.0.0.1")


def serve(host: str = "127.0.0.1", port: int = P.DEFAULT_PORT, tcp_port: int | None = None,
          bundles_dir: str | Path | None = DEFAULT_BUNDLES_DIR, log_level: str = "info", *,
          queue_size: int | None = None, workers: int = 1, default_timeout: float = 60.0,
          allow: Sequence[str] | None = None, max_notes: int | None = None,
          output_dir: str | Path = DEFAULT_OUTPUT_DIR, ableton: AbletonOSC | None = None) -> None:
    """Run the bridge until Ctrl-C or SIGTERM, saying where it listens and what it serves."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def main() -> None:
        server = BridgeServer(host, port, tcp_port, bundles_dir, queue_size=queue_size, workers=workers,
                              default_timeout=default_timeout, allow=allow, max_notes=max_notes,
                              output_dir=output_dir, ableton=ableton)
        await server.start()
        where = f"udp {host}:{server.port}" + (f", tcp (SLIP) {host}:{server.tcp_port}" if server.tcp_port else "")
        print(f"magenta-bridge listening on {where}", flush=True)
        names = ", ".join(item.name for item in server.store.loaded) or "none (tool requests answer model_not_installed)"
        print(f"models loaded from {bundles_dir}: {names}", flush=True)
        for name, reason in server.store.refused.items():
            print(f"refused bundle {name}: {reason}", flush=True)
        warning = exposure_warning(host, allow)
        if warning:
            print(warning, flush=True)
            log.warning("bound to non-loopback address %s", host)
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                asyncio.get_running_loop().add_signal_handler(signum, stop.set)
            except NotImplementedError:  # Windows: Ctrl-C raises KeyboardInterrupt instead
                pass
        try:
            await stop.wait()
        finally:
            await server.stop()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
