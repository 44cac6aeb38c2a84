"""``rtl`` backend: the Amaranth accelerator in Verilator under cocotb: the simulated DMA path.

The backend generates the ``Accelerator`` Verilog for the requested configuration, builds it
with Verilator (once per configuration, under ``build/sim/rtl_<config>/``, shared safely
between processes by a file lock) and starts the simulation in a background thread. Inside
the simulator, ``sw/backends/rtl_server.py`` models host memory with cocotbext-axi's
``AxiRam`` and the CPU with its ``AxiLiteMaster``, and serves this transport's requests
over a local socket. The driver on top is the same as for every backend.
"""
from ..errors import TransportError
from ..transport import Transport

__all__ = ["RtlTransport"]

_TOPLEVEL = "accelerator"


class RtlTransport(Transport):
    """Loom in Verilator. Parameters as ``hw.accelerator.Accelerator`` (``rows``, ``cols``,
    ``datapaths``, ``data_width``, ``depth``, ``slots``, ``timeout``, ``requantizer``,
    ``counter_width``, ``fp32_adder_stages``, ``lut_multipliers``, ``product_stages``,
    ``span_multiplier``, ``result_storage``, ``operand_registers``, ``clear_after_last``,
    ``aligned_drain``, ``broadcast_operands``), plus
    ``array_clock_ratio`` (the array's clock frequency over the system clock's, which runs
    at 100 MHz in simulation; ``None``: one clock for everything, else
    ``array_clock=True``), ``memory_size``
    (bytes of simulated host memory), ``seed`` (cocotb's) and ``waves`` (VCD under the
    build directory). ``start_timeout``: seconds to wait for the build and start-up."""

    name = "rtl"

    def __init__(self, rows=8, cols=8, *, datapaths=("int8",), data_width=64, depth=256,
                 slots=2, timeout=1 << 16, requantizer="parallel", counter_width=64,
                 fp32_adder_stages=1, array_clock_ratio=None, lut_multipliers=0,
                 product_stages=1, memory_size=4 << 20, seed=0, waves=False,
                 start_timeout=900, span_multiplier="dsp", result_storage="ram",
                 operand_registers=True, clear_after_last=False, aligned_drain=False,
                 broadcast_operands=False):
        from hw.accelerator import Accelerator
        from sim.simulation_server import SimulationServer
        from sim.toolchain import BUILD_DIR

        self.memory_base, self.memory_size = 0, memory_size
        top = Accelerator(rows, cols, datapaths=datapaths, data_width=data_width, depth=depth,
                          slots=slots, timeout=timeout, requantizer=requantizer,
                          counter_width=counter_width, fp32_adder_stages=fp32_adder_stages,
                          lut_multipliers=lut_multipliers, product_stages=product_stages,
                          array_clock=array_clock_ratio is not None,
                          span_multiplier=span_multiplier, result_storage=result_storage,
                          operand_registers=operand_registers,
                          clear_after_last=clear_after_last, aligned_drain=aligned_drain,
                          broadcast_operands=broadcast_operands)
        env = {"LOOM_RTL_MEMORY": str(memory_size)}
        if array_clock_ratio is not None:
            if not 0.1 <= array_clock_ratio <= 10:
                raise ValueError(f"array_clock_ratio must be from 0.1 to 10, not "
                                 f"{array_clock_ratio!r}")
            # cocotb's Clock wants an even number of time steps: periods in 2 ps units
            env["LOOM_RTL_ARRAY_PERIOD_PS"] = str(2 * round(10_000 / array_clock_ratio / 2))
        tag = f"{rows}x{cols}_{'_'.join(top.datapaths)}_{data_width}b_d{depth}_s{slots}"
        if requantizer != "parallel":
            tag += f"_{requantizer}"
        if counter_width != 64:
            tag += f"_c{counter_width}"
        if fp32_adder_stages != 1:
            tag += f"_a{fp32_adder_stages}"
        if lut_multipliers:
            tag += f"_lut{lut_multipliers}"
        if product_stages != 1:
            tag += f"_p{product_stages}"
        if array_clock_ratio is not None:
            tag += "_clk2"        # the Verilog differs; the period is the run's
        # (short suffixes: one build directory per distinct Verilog)
        if span_multiplier != "dsp":
            tag += f"_{span_multiplier[:3]}"
        if result_storage != "ram":
            tag += f"_{result_storage[:3]}"
        if not operand_registers:
            tag += "_dir"
        if clear_after_last:
            tag += "_clr"
        if aligned_drain:
            tag += "_aln"
        if broadcast_operands:
            tag += "_bc"
        self.build_dir = BUILD_DIR / "sim" / f"rtl_{tag}"
        self._server = SimulationServer(
            top, toplevel=_TOPLEVEL, test_module="sw.backends.rtl_server",
            build_dir=self.build_dir, env_prefix="LOOM_RTL",
            env=env, seed=seed, waves=waves,
            error=TransportError, what="the rtl simulator", start_timeout=start_timeout)

    # --- Transport -----------------------------------------------------------------------------
    def read_word(self, offset):
        return self._server.request("read_word", offset)

    def write_word(self, offset, value):
        self._server.request("write_word", offset, value)

    def read_memory(self, addr, length):
        return self._server.request("read_memory", addr, length)

    def write_memory(self, addr, data):
        self._server.request("write_memory", addr, bytes(data))

    def wait(self, cycles):
        self._server.request("wait", int(cycles))

    def close(self):
        self._server.close()
