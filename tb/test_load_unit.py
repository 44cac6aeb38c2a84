"""The LOAD path (LoadUnit + DmaReader + buffers) in Verilator against host memory."""
import os

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.dma_reader import DmaReader
from hw.load_unit import LoadUnit
from hw.operand_buffer import OperandBuffer
from sim.cocotb_run import run_cocotb

BEAT_BITS, WORD_BITS, DEPTH = 64, (64, 256), 40


class LoadPath(wiring.Component):
    """Test top: a LoadUnit feeding two buffers (1 and 4 beats per word) through a DmaReader."""

    def __init__(self):
        self.reader = DmaReader(data_width=BEAT_BITS, timeout=1024)
        self.loader = LoadUnit(beat_width=BEAT_BITS, addr_width=32,
                               targets={f"t{n}": w for n, w in enumerate(WORD_BITS)})
        self.buffers = [OperandBuffer(width=w, depth=DEPTH) for w in WORD_BITS]
        members = {"cmd": In(self.loader.cmd.signature.flip()),
                   "bus": Out(self.reader.bus.signature), "busy": Out(1)}
        for n, buffer in enumerate(self.buffers):
            members[f"read{n}"] = In(buffer.read.signature.flip())
            members[f"words{n}"] = Out(buffer.words.signature)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.reader, m.submodules.loader = self.reader, self.loader
        wiring.connect(m, wiring.flipped(self.cmd), self.loader.cmd)
        wiring.connect(m, self.loader.dma_cmd, self.reader.cmd)
        wiring.connect(m, self.reader.data, self.loader.dma_data)
        wiring.connect(m, self.reader.bus, wiring.flipped(self.bus))
        m.d.comb += self.busy.eq(self.loader.busy | self.reader.busy)
        for n, buffer in enumerate(self.buffers):
            m.submodules[f"buffer{n}"] = buffer
            port = getattr(self.loader, f"write_t{n}")
            m.d.comb += [buffer.write.valid.eq(port.valid), buffer.write.slot.eq(port.slot),
                         buffer.write.index.eq(port.index), buffer.write.data.eq(port.data)]
            wiring.connect(m, wiring.flipped(getattr(self, f"read{n}")), buffer.read)
            wiring.connect(m, buffer.words, wiring.flipped(getattr(self, f"words{n}")))
        return m


def test_load_path():
    seed = int(os.environ["LOOM_SEED"])
    env = {"LOOM_BEAT_BITS": str(BEAT_BITS), "LOOM_WORD_BITS": ",".join(map(str, WORD_BITS)),
           "LOOM_DEPTH": str(DEPTH)}
    result = run_cocotb(LoadPath(), "load_path", "tb.load_unit_tb", "load_path", seed, env=env)
    assert result.failed == {}, f"seed {seed}: {result.failed}"
    assert result.passed == ["loads_land_in_the_right_slot_words"]
