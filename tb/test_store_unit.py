"""The STORE path (StoreUnit + DmaWriter + buffers) in Verilator against host memory."""
import os

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.dma_writer import DmaWriter
from hw.operand_buffer import OperandBuffer
from hw.result_buffer import ResultBuffer
from hw.store_unit import PARAM_WORDS, StoreUnit
from sim.cocotb_run import run_cocotb

ROWS, COLS, BEAT_BITS = 4, 8, 64


class StorePath(wiring.Component):
    """Test top: result and parameter buffers (written by the testbench) -> StoreUnit ->
    DmaWriter -> AXI4 write port."""

    def __init__(self):
        self.results = ResultBuffer(lanes=COLS, depth=ROWS)
        self.params = OperandBuffer(width=COLS * 32, depth=PARAM_WORDS, slots=4)
        self.store = StoreUnit(rows=ROWS, cols=COLS, beat_width=BEAT_BITS, addr_width=32)
        self.writer = DmaWriter(data_width=BEAT_BITS, timeout=1024)
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


def test_store_path():
    seed = int(os.environ["LOOM_SEED"])
    env = {"LOOM_ROWS": str(ROWS), "LOOM_COLS": str(COLS), "LOOM_BEAT_BITS": str(BEAT_BITS)}
    result = run_cocotb(StorePath(), "store_path", "tb.store_unit_tb", "store_path", seed,
                        env=env)
    assert result.failed == {}, f"seed {seed}: {result.failed}"
    assert result.passed == ["every_mode_writes_the_golden_bytes_and_nothing_else"]
