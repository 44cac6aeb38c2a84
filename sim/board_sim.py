"""The board design in Verilator behind a serial-port-like object, for the ``serial`` backend.

:class:`BoardSimPort` generates ``fpga/board_top.py``'s ``LoomSystem`` for a
:class:`~fpga.board_top.SystemConfig`, builds it with Verilator (once per configuration,
under ``build/sim/board_<config>/``, shared between processes by a file lock, as the ``rtl``
backend does) and runs ``tb/board_system_tb.py`` on it in a background thread. That cocotb
module bit-bangs the UART pins and serves this object's requests over a local socket, so
``SerialTransport(port_object=BoardSimPort(config), quiet_time=0)`` drives the simulated
board through exactly the byte stream a real board would see.

Simulated time passes only inside ``read`` and ``reset_input_buffer`` (and :meth:`run`):
``read(n)`` first lets every written byte go out on the ``rx`` pin, then waits up to
``timeout_cycles`` for ``n`` reply bytes, as a serial port's read timeout would.
``reset_input_buffer`` also lets ``quiet_cycles`` pass first (the bridge's byte timeout plus
margin), so the ``quiet_time`` the serial backend sleeps before a retry happens in simulated
time and the transport can be given ``quiet_time=0``.
"""
import fcntl
import hashlib
import os
import secrets
import select
import shutil
import tempfile
import threading
from multiprocessing.connection import Listener
from pathlib import Path

from .toolchain import BUILD_DIR, setup_verilator, verilator_waiver_args
from .verilog import write_verilog

__all__ = ["BoardSimPort", "build_name", "top_ports_only_args"]

TOPLEVEL = "loom_system"
TEST_MODULE = "tb.board_system_tb"


def top_ports_only_args(build_dir, toplevel):
    """Verilator arguments that keep VPI access to the ports of ``toplevel`` only.

    cocotb's runner builds with ``--public-flat-rw``: every signal of the design stays
    visible, which stops Verilator from optimising most of them away. A testbench that only
    touches top-level ports does not need that; measured on a 4x4 board design, the
    simulation runs 3.5-7x faster without it (the build takes as long).
    """
    vlt = Path(build_dir) / "public_top.vlt"
    text = f'`verilator_config\npublic_flat_rw -module "{toplevel}" -var "*"\n'
    if not vlt.exists() or vlt.read_text() != text:
        vlt.write_text(text)
    return ["--no-public-flat-rw", str(vlt)]


def build_name(config):
    """``build/sim/`` directory name of a configuration: readable, plus a hash of all of it."""
    digest = hashlib.sha1(repr(config).encode()).hexdigest()[:8]
    return (f"board_{config.rows}x{config.cols}_{'_'.join(config.datapaths)}_"
            f"{config.data_width}b_d{config.depth}_{digest}")


class BoardSimPort:
    """``LoomSystem(config)`` in Verilator, reached through its UART pins.

    The pyserial surface: ``write(data)``, ``read(n)``, ``timeout``, ``reset_input_buffer()``,
    ``close()``. Extras for tests: :meth:`run`, :meth:`leds`, :meth:`cycles`.
    ``timeout_cycles``: how long ``read`` waits (device cycles) once the written bytes are
    out; ``quiet_cycles``: what ``reset_input_buffer`` lets pass (default: the bridge's byte
    timeout plus 64 bit times); ``seed``: cocotb's; ``waves``: a VCD in the run directory;
    ``start_timeout``: seconds for the build and start-up.
    """

    def __init__(self, config, *, timeout_cycles=20_000, quiet_cycles=None, seed=0,
                 waves=False, start_timeout=900):
        from fpga.board_top import LoomSystem

        setup_verilator()
        self.config = config
        self.timeout = 1.0                  # what a pyserial port has; reads use cycles
        self.timeout_cycles = timeout_cycles
        byte_timeout = max(16, int(config.byte_timeout_s * config.clock_hz))
        self.quiet_cycles = (byte_timeout + 64 * config.divisor if quiet_cycles is None
                             else quiet_cycles)
        self.build_dir = BUILD_DIR / "sim" / build_name(config)
        self._build(LoomSystem(config), waves)
        self._run_dir = Path(tempfile.mkdtemp(prefix="run_", dir=self.build_dir))
        key = secrets.token_hex(16)
        address = str(self._run_dir / "socket")
        self._listener = Listener(address, family="AF_UNIX", authkey=key.encode())
        self._conn = None
        self._failure = None
        env = {"LOOM_BOARD_ADDRESS": address, "LOOM_BOARD_KEY": key,
               "LOOM_BOARD_DIVISOR": str(config.divisor), "LOOM_SEED": str(seed)}
        self._thread = threading.Thread(target=self._simulate, args=(env, seed, waves),
                                        daemon=True, name=f"loom-{self.build_dir.name}")
        self._thread.start()
        self._accept(start_timeout)

    # --- simulator life cycle ----------------------------------------------------------------
    def _build(self, top, waves):
        from cocotb_tools.runner import get_runner

        self.build_dir.mkdir(parents=True, exist_ok=True)
        with open(self.build_dir / "build.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)       # one build per configuration at a time
            source = write_verilog(top, TOPLEVEL, self.build_dir / f"{TOPLEVEL}.v")
            self._runner = get_runner("verilator")
            self._runner.build(
                sources=[source], hdl_toplevel=TOPLEVEL, build_dir=self.build_dir,
                build_args=[*verilator_waiver_args(), "-O3", "--x-assign", "fast",
                            "--x-initial", "fast",
                            *top_ports_only_args(self.build_dir, TOPLEVEL)],
                timescale=("1ns", "1ps"), waves=waves, log_file=self.build_dir / "build.log")

    def _simulate(self, env, seed, waves):
        try:
            self._runner.test(
                test_module=TEST_MODULE, hdl_toplevel=TOPLEVEL, build_dir=self.build_dir,
                test_dir=self._run_dir, seed=seed, extra_env=env,
                results_xml=str(self._run_dir / "results.xml"), waves=waves,
                log_file=self._run_dir / "sim.log")
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
                raise OSError(f"the board simulation did not start (see "
                              f"{self._run_dir / 'sim.log'}): {self._failure}")

    def _request(self, *message):
        if self._conn is None:
            raise OSError("the simulated board is closed")
        try:
            self._conn.send(message)
            reply = self._conn.recv()
        except (EOFError, OSError) as exc:
            raise OSError(f"the board simulation stopped (see {self._run_dir / 'sim.log'})"
                          ) from exc
        if isinstance(reply, tuple) and reply and reply[0] == "error":
            raise OSError(reply[1])
        return reply

    # --- the pyserial surface ----------------------------------------------------------------
    def write(self, data):
        data = bytes(data)
        self._request("write", data)
        return len(data)

    def read(self, n=1):
        return self._request("read", int(n), self.timeout_cycles)

    def reset_input_buffer(self):
        self._request("flush", self.quiet_cycles)

    def close(self):
        if self._conn is not None:
            try:
                self._request("close")
            except OSError:
                pass
            self._conn.close()
            self._conn = None
            self._thread.join(timeout=60)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if (os.environ.get("LOOM_KEEP_RUNS") is None and not self._thread.is_alive()
                and self._failure is None):
            shutil.rmtree(self._run_dir, ignore_errors=True)

    # --- for tests ---------------------------------------------------------------------------
    def run(self, cycles):
        """Let ``cycles`` device cycles pass (after the written bytes are out)."""
        self._request("run", int(cycles))

    def leds(self):
        """The ``leds`` port now: bit 0 idle, bit 1 busy, bit 2 error."""
        return self._request("leds")

    def cycles(self):
        """(device cycles simulated so far, framing errors seen on ``tx``)."""
        return self._request("cycles")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
