"""The STORE path (StoreUnit + DmaWriter + buffers) in Verilator against host memory."""
import os

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.dma_writer import DmaWriter
from hw.operand_buffer import OperandBuffer
from hw.result_buffer import ResultBuffer
from hw.store_unit import StoreUnit
from sim.cocotb_run import run_cocotb

#: (rows, cols, bus bits, requantiser): rows of one beat and more; on a 256-bit bus int8
#: and fp16 rows narrower than a beat (four and two rows a beat, packed); and the serial
#: requantisers (one per column, one row at a time; or one for all columns, a column at a
#: time) on a 64-bit bus with int8 rows packed two a beat; and the shared one keeping one
#: column's parameters, read from a slot of 32-bit lanes, on a 32-bit bus
CONFIGS = {"64": (4, 8, 64, "parallel"), "256": (8, 8, 256, "parallel"),
           "64-serial": (4, 4, 64, "serial"), "64-shared": (4, 4, 64, "shared"),
           "32-shared-lanes": (4, 4, 32, "shared"), "32-shared-direct": (4, 4, 32, "shared")}
#: the iCEBreaker's store: no fp16 output, so beats go straight from the result buffer
#: (``StoreUnit.direct``), whose one slot is a block RAM read through one port
DIRECT = dict(fp16_output=False, result_storage="shared_port", slots=1)


class StorePath(wiring.Component):
    """Test top: result and parameter buffers (written by the testbench) -> StoreUnit ->
    DmaWriter -> AXI4 write port."""

    def __init__(self, rows, cols, beat_bits, requantizer="parallel", param_lanes=False, *,
                 fp16_output=True, result_storage="ram", slots=2):
        self.store = StoreUnit(rows=rows, cols=cols, beat_width=beat_bits, addr_width=32,
                               requantizer=requantizer, param_lanes=param_lanes,
                               fp16_output=fp16_output, slots=slots, param_slots=4)
        self.results = ResultBuffer(lanes=cols, depth=rows, slots=slots,
                                    storage=result_storage)
        self.params = OperandBuffer(width=self.store.param_width,
                                    depth=self.store.param_slot_words, slots=4)
        self.writer = DmaWriter(data_width=beat_bits, timeout=1024)
        super().__init__({
            "cmd": In(self.store.cmd.signature.flip()),
            "result_write": In(self.results.write.shape()),
            "param_write": In(self.params.write.shape()),
            "bus": Out(self.writer.bus.signature),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.results, m.submodules.params = self.results, self.params
        m.submodules.store, m.submodules.writer = self.store, self.writer
        store = self.store
        m.d.comb += [self.results.write.eq(self.result_write),
                     self.params.write.eq(self.param_write),
                     store.dma_idle.eq(~self.writer.busy), self.busy.eq(store.busy)]
        wiring.connect(m, wiring.flipped(self.cmd), store.cmd)
        wiring.connect(m, store.result_read, self.results.read)
        wiring.connect(m, self.results.words, store.result_words)
        wiring.connect(m, store.param_read, self.params.read)
        wiring.connect(m, self.params.words, store.param_words)
        wiring.connect(m, store.dma_cmd, self.writer.cmd)
        m.d.comb += [self.writer.data.valid.eq(store.dma_data.valid),
                     self.writer.data.payload.eq(store.dma_data.payload),
                     store.dma_data.ready.eq(self.writer.data.ready)]
        wiring.connect(m, self.writer.bus, wiring.flipped(self.bus))
        return m


@pytest.mark.parametrize("bus", sorted(CONFIGS))
def test_store_path(bus):
    seed = int(os.environ["LOOM_SEED"])
    rows, cols, beat_bits, requantizer = CONFIGS[bus]
    param_lanes = bus.endswith(("-lanes", "-direct"))
    options = DIRECT if bus.endswith("-direct") else {}
    env = {"LOOM_ROWS": str(rows), "LOOM_COLS": str(cols), "LOOM_BEAT_BITS": str(beat_bits),
           "LOOM_PARAM_LANES": str(int(param_lanes)),
           "LOOM_RESULT_SLOTS": str(options.get("slots", 2)),
           "LOOM_FP16": str(int(options.get("fp16_output", True)))}
    name = "store_path" if bus == "64" else f"store_path_{bus}"
    path = StorePath(rows, cols, beat_bits, requantizer, param_lanes, **options)
    assert path.store.direct == bool(options)
    result = run_cocotb(path, "store_path",
                        "tb.store_unit_tb", name, seed, env=env)
    assert result.failed == {}, f"seed {seed}: {result.failed}"
    assert result.passed == ["every_mode_writes_the_golden_bytes_and_nothing_else"]


def test_int8_only_store_units_have_no_fp16_converters():
    from amaranth.back import rtlil

    kwargs = dict(rows=4, cols=4, beat_width=64, addr_width=32)
    assert "fp16_0" in rtlil.convert(StoreUnit(**kwargs))
    assert "fp16_0" not in rtlil.convert(StoreUnit(**kwargs, fp16_output=False))
    with pytest.raises(TypeError, match="fp16_output"):
        StoreUnit(**kwargs, fp16_output="no")
