"""``rtl`` backend: the Amaranth accelerator in Verilator under cocotb: the simulated DMA path.

The backend generates the ``Accelerator`` Verilog for the requested configuration, builds it
with Verilator (once per configuration, under ``build/sim/rtl_<config>/``, shared safely
between processes by a file lock) and starts the simulation in a background thread. Inside
the simulator, ``sw/backends/rtl_server.py`` models host memory with cocotbext-axi's
``AxiRam`` and the CPU with its ``AxiLiteMaster``, and serves this transport's requests
over a local socket. The driver on top is the same as for every backend.
"""
import fcntl
import os
import secrets
import tempfile
import threading
from multiprocessing.connection import Listener
from pathlib import Path

from ..errors import TransportError
from ..transport import Transport

__all__ = ["RtlTransport"]

_TOPLEVEL = "accelerator"


class RtlTransport(Transport):
    """Loom in Verilator. Parameters as ``hw.accelerator.Accelerator`` (``rows``, ``cols``,
    ``datapaths``, ``data_width``, ``depth``, ``slots``, ``timeout``, ``requantizer``), plus
    ``memory_size``
    (bytes of simulated host memory), ``seed`` (cocotb's) and ``waves`` (VCD under the
    build directory). ``start_timeout``: seconds to wait for the build and start-up."""

    name = "rtl"

    def __init__(self, rows=8, cols=8, *, datapaths=("int8",), data_width=64, depth=256,
                 slots=2, timeout=1 << 16, requantizer="parallel", memory_size=4 << 20, seed=0,
                 waves=False, start_timeout=900):
        from hw.accelerator import Accelerator
        from sim.toolchain import BUILD_DIR, setup_verilator

        setup_verilator()
        self.memory_base, self.memory_size = 0, memory_size
        top = Accelerator(rows, cols, datapaths=datapaths, data_width=data_width, depth=depth,
                          slots=slots, timeout=timeout, requantizer=requantizer)
        tag = f"{rows}x{cols}_{'_'.join(top.datapaths)}_{data_width}b_d{depth}_s{slots}"
        if requantizer != "parallel":
            tag += f"_{requantizer}"
        self.build_dir = BUILD_DIR / "sim" / f"rtl_{tag}"
        self._build(top, waves)
        self._run_dir = Path(tempfile.mkdtemp(prefix="run_", dir=self.build_dir))
        key = secrets.token_hex(16)
        address = str(self._run_dir / "socket")
        self._listener = Listener(address, family="AF_UNIX", authkey=key.encode())
        self._conn = None
        self._failure = None
        env = {"LOOM_RTL_ADDRESS": address, "LOOM_RTL_KEY": key,
               "LOOM_RTL_MEMORY": str(memory_size)}
        self._thread = threading.Thread(target=self._simulate, args=(env, seed, waves),
                                        daemon=True, name=f"loom-rtl-{tag}")
        self._thread.start()
        self._accept(start_timeout)

    # --- simulator life cycle ----------------------------------------------------------------
    def _build(self, top, waves):
        from cocotb_tools.runner import get_runner

        from sim.toolchain import verilator_waiver_args
        from sim.verilog import write_verilog

        self.build_dir.mkdir(parents=True, exist_ok=True)
        with open(self.build_dir / "build.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)       # one build per configuration at a time
            source = write_verilog(top, _TOPLEVEL, self.build_dir / f"{_TOPLEVEL}.v")
            self._runner = get_runner("verilator")
            self._runner.build(
                sources=[source], hdl_toplevel=_TOPLEVEL, build_dir=self.build_dir,
                build_args=[*verilator_waiver_args(), "-O3", "--x-assign", "fast",
                            "--x-initial", "fast"],
                timescale=("1ns", "1ps"), waves=waves, log_file=self.build_dir / "build.log")

    def _simulate(self, env, seed, waves):
        try:
            self._runner.test(
                test_module="sw.backends.rtl_server", hdl_toplevel=_TOPLEVEL,
                build_dir=self.build_dir, test_dir=self._run_dir, seed=seed, extra_env=env,
                results_xml=str(self._run_dir / "results.xml"), waves=waves,
                log_file=self._run_dir / "sim.log")
        except BaseException as exc:  # noqa: BLE001 - reported by the next request
            self._failure = exc

    def _accept(self, start_timeout):
        import select
        sock = self._listener._listener._socket
        waited = 0.0
        while self._conn is None:
            ready, _, _ = select.select([sock], [], [], 1.0)
            waited += 1.0
            if ready:
                self._conn = self._listener.accept()
            elif not self._thread.is_alive() or waited > start_timeout:
                self.close()
                raise TransportError(f"the simulator did not start (see "
                                     f"{self._run_dir / 'sim.log'}): {self._failure}")

    def _request(self, *message):
        if self._conn is None:
            raise TransportError("the rtl backend is closed")
        try:
            self._conn.send(message)
            reply = self._conn.recv()
        except (EOFError, OSError) as exc:
            raise TransportError(f"the simulator stopped (see {self._run_dir / 'sim.log'})"
                                 ) from exc
        if isinstance(reply, tuple) and reply and reply[0] in ("bus", "error"):
            raise TransportError(reply[1])
        return reply

    # --- Transport -----------------------------------------------------------------------------
    def read_word(self, offset):
        return self._request("read_word", offset)

    def write_word(self, offset, value):
        self._request("write_word", offset, value)

    def read_memory(self, addr, length):
        return self._request("read_memory", addr, length)

    def write_memory(self, addr, data):
        self._request("write_memory", addr, bytes(data))

    def wait(self, cycles):
        self._request("wait", int(cycles))

    def close(self):
        if self._conn is not None:
            try:
                self._request("close")
            except TransportError:
                pass
            self._conn.close()
            self._conn = None
            self._thread.join(timeout=60)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if (os.environ.get("LOOM_KEEP_RUNS") is None and not self._thread.is_alive()
                and self._failure is None):
            import shutil
            shutil.rmtree(self._run_dir, ignore_errors=True)
