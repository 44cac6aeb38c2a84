"""A Verilator simulation running a cocotb module in a background thread, reached over a
local socket: what the ``rtl`` backend and the simulated board port share.

The design is built once per build directory (a file lock keeps parallel test workers from
building it twice at the same time), then cocotb's runner starts the simulation in a
thread. The cocotb module connects back to a ``multiprocessing.connection`` listener whose
address and key it finds in ``<prefix>_ADDRESS`` / ``<prefix>_KEY``; each request is a
tuple sent over that connection and answered by one reply. A reply ``("error", text)`` (or
``("bus", text)``) raises ``error`` with that text.
"""
import fcntl
import os
import secrets
import select
import shutil
import tempfile
import threading
from multiprocessing.connection import Listener
from pathlib import Path

from .toolchain import setup_verilator, verilator_waiver_args
from .verilog import write_verilog

__all__ = ["SimulationServer"]


class SimulationServer:
    """``top`` (an Amaranth component, Verilog module ``toplevel``) in Verilator under
    ``build_dir``, running cocotb module ``test_module``.

    ``env``: extra environment of the simulation; ``env_prefix``: names the address/key
    variables; ``build_args``: more Verilator arguments (after the project's waivers and
    ``-O3``); ``error``: the exception class requests raise; ``what``: how messages name the
    simulation; ``start_timeout``: seconds for the build and start-up.
    """

    def __init__(self, top, *, toplevel, test_module, build_dir, env_prefix, env=None,
                 seed=0, waves=False, build_args=(), error=OSError, what="the simulation",
                 start_timeout=900):
        setup_verilator()
        self.build_dir = Path(build_dir)
        self.toplevel, self.test_module = toplevel, test_module
        self.error, self.what = error, what
        self._build(top, waves, build_args)
        self.run_dir = Path(tempfile.mkdtemp(prefix="run_", dir=self.build_dir))
        key = secrets.token_hex(16)
        # The socket in a short directory of its own: an AF_UNIX path holds 107 bytes, which
        # a deep checkout's build directory with a long build tag can exceed.
        self._socket_dir = Path(tempfile.mkdtemp(prefix="loom_"))
        address = str(self._socket_dir / "socket")
        self._listener = Listener(address, family="AF_UNIX", authkey=key.encode())
        self._conn = None
        self._failure = None
        env = {**(env or {}), f"{env_prefix}_ADDRESS": address, f"{env_prefix}_KEY": key}
        self._thread = threading.Thread(target=self._simulate, args=(env, seed, waves),
                                        daemon=True, name=f"loom-{self.build_dir.name}")
        self._thread.start()
        self._accept(start_timeout)

    def _build(self, top, waves, build_args):
        from cocotb_tools.runner import get_runner

        self.build_dir.mkdir(parents=True, exist_ok=True)
        with open(self.build_dir / "build.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)       # one build per configuration at a time
            source = write_verilog(top, self.toplevel, self.build_dir / f"{self.toplevel}.v")
            self._runner = get_runner("verilator")
            self._runner.build(
                sources=[source], hdl_toplevel=self.toplevel, build_dir=self.build_dir,
                build_args=[*verilator_waiver_args(), "-O3", "--x-assign", "fast",
                            "--x-initial", "fast", *build_args],
                timescale=("1ns", "1ps"), waves=waves, log_file=self.build_dir / "build.log")

    def _simulate(self, env, seed, waves):
        try:
            self._runner.test(
                test_module=self.test_module, hdl_toplevel=self.toplevel,
                build_dir=self.build_dir, test_dir=self.run_dir, seed=seed, extra_env=env,
                results_xml=str(self.run_dir / "results.xml"), waves=waves,
                log_file=self.run_dir / "sim.log")
        except BaseException as exc:  # noqa: BLE001 - reported by the next request
            self._failure = exc

    def _accept(self, start_timeout):
        sock = self._listener._listener._socket
        waited = 0.0
        while self._conn is None:
            ready, _, _ = select.select([sock], [], [], 1.0)
            waited += 1.0
            if ready:
                self._conn = self._listener.accept()
            elif not self._thread.is_alive() or waited > start_timeout:
                self._failure = self._failure or "no connection"     # keeps the run files
                self.close()
                raise self.error(f"{self.what} did not start (see {self.run_dir / 'sim.log'})"
                                 f": {self._failure}")

    def request(self, *message, timeout=None):
        """Send one request; return its reply (waiting at most ``timeout`` seconds for it
        when given)."""
        if self._conn is None:
            raise self.error(f"{self.what} is closed")
        try:
            self._conn.send(message)
            if timeout is not None and not self._conn.poll(timeout):
                raise self.error(f"{self.what} did not answer {message[0]!r} in {timeout} s "
                                 f"(see {self.run_dir / 'sim.log'})")
            reply = self._conn.recv()
        except (EOFError, OSError) as exc:
            raise self.error(f"{self.what} stopped (see {self.run_dir / 'sim.log'})") from exc
        if isinstance(reply, tuple) and reply and reply[0] in ("bus", "error"):
            raise self.error(reply[1])
        return reply

    def close(self):
        """Ask the simulation to finish, wait for it, and remove its run directory unless it
        failed (or ``LOOM_KEEP_RUNS`` is set)."""
        if self._conn is not None:
            try:
                self.request("close", timeout=60)   # a hung simulation must not hang us
            except self.error:
                pass
            self._conn.close()
            self._conn = None
            self._thread.join(timeout=60)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        shutil.rmtree(self._socket_dir, ignore_errors=True)
        if (os.environ.get("LOOM_KEEP_RUNS") is None and not self._thread.is_alive()
                and self._failure is None):
            shutil.rmtree(self.run_dir, ignore_errors=True)
