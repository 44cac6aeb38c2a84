"""The simulator side of :class:`sim.simulation_server.SimulationServer`: inside a cocotb
test, connect back to the host process and answer its requests one at a time.

A request is a tuple ``(op, *args)``; ``handlers[op](*args)`` (a plain or ``async``
function; simulated time passes only while one runs) gives the reply. ``("close",)`` is
answered with ``None`` and ends the loop, which ends the test and the simulation. An
unknown ``op`` or a handler's exception is answered ``("error", text)``, which the host
raises; the simulation goes on serving.
"""
import inspect
import os
from multiprocessing.connection import Client

__all__ = ["serve_requests"]


async def serve_requests(env_prefix, handlers):
    """Serve the host named by ``<env_prefix>_ADDRESS`` / ``<env_prefix>_KEY`` until it
    sends ``close`` (or goes away: then ``recv`` raises ``EOFError`` and the test fails)."""
    conn = Client(os.environ[f"{env_prefix}_ADDRESS"],
                  authkey=os.environ[f"{env_prefix}_KEY"].encode())
    while True:
        op, *args = conn.recv()
        if op == "close":
            conn.send(None)
            conn.close()
            return
        try:
            handler = handlers.get(op)
            if handler is None:
                raise LookupError(f"unknown request {op!r}")
            reply = handler(*args)
            if inspect.isawaitable(reply):
                reply = await reply
        except Exception as exc:  # noqa: BLE001 - reported to the host, which raises
            reply = ("error", f"{type(exc).__name__}: {exc}")
        conn.send(reply)
