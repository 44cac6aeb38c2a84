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
import hashlib
from pathlib import Path

from .simulation_server import SimulationServer
from .toolchain import BUILD_DIR

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

        self.config = config
        self.timeout = 1.0                  # what a pyserial port has; reads use cycles
        self.timeout_cycles = timeout_cycles
        byte_timeout = max(16, int(config.byte_timeout_s * config.clock_hz))
        self.quiet_cycles = (byte_timeout + 64 * config.divisor if quiet_cycles is None
                             else quiet_cycles)
        self.build_dir = BUILD_DIR / "sim" / build_name(config)
        self.build_dir.mkdir(parents=True, exist_ok=True)
        env = {"LOOM_BOARD_DIVISOR": str(config.divisor), "LOOM_SEED": str(seed)}
        if config.array_clock_hz:
            # the system clock is 10 ns in simulation; the array's keeps the board's ratio
            # (cocotb's Clock wants an even number of picoseconds)
            env["LOOM_BOARD_ARRAY_PERIOD_PS"] = str(
                2 * round(5_000 * config.clock_hz / config.array_clock_hz))
        self._server = SimulationServer(
            LoomSystem(config), toplevel=TOPLEVEL, test_module=TEST_MODULE,
            build_dir=self.build_dir, env_prefix="LOOM_BOARD",
            env=env, seed=seed, waves=waves,
            build_args=top_ports_only_args(self.build_dir, TOPLEVEL),
            what="the board simulation", start_timeout=start_timeout)
        self._request = self._server.request

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
        self._server.close()

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
