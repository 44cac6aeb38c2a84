"""The LOAD path (LoadUnit + DmaReader + buffers) in Verilator against host memory."""
import os

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.dma_reader import DmaReader
from hw.load_unit import LoadUnit
from hw.operand_buffer import OperandBuffer
from sim.cocotb_run import run_cocotb

DEPTH = 40
#: (bus bits, word bits of each target): words of one and of four beats; and on a 256-bit
#: bus words of a quarter and half a beat (packed or strided rows) and of two beats. A pair
#: ``(row bits, word bits)`` is a lane-by-lane target: rows of four beats written as words
#: of half a beat; rows of one beat as words of a quarter.
CONFIGS = {"64": (64, (64, 256, (256, 32))), "256": (256, (64, 128, 512, (256, 64)))}


def _word(bits):
    """A target's buffer word width."""
    return bits[1] if isinstance(bits, tuple) else bits


class LoadPath(wiring.Component):
    """Test top: a LoadUnit feeding one buffer per target word width through a DmaReader."""

    def __init__(self, beat_bits, word_bits):
        self.reader = DmaReader(data_width=beat_bits, timeout=1024)
        self.loader = LoadUnit(beat_width=beat_bits, addr_width=32,
                               targets={f"t{n}": w for n, w in enumerate(word_bits)})
        self.buffers = [OperandBuffer(width=_word(w), depth=DEPTH) for w in word_bits]
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


@pytest.mark.parametrize("bus", sorted(CONFIGS))
def test_load_path(bus):
    seed = int(os.environ["LOOM_SEED"])
    beat_bits, word_bits = CONFIGS[bus]
    targets = ",".join(f"{w[0]}x{w[1]}" if isinstance(w, tuple) else str(w) for w in word_bits)
    env = {"LOOM_BEAT_BITS": str(beat_bits), "LOOM_WORD_BITS": targets,
           "LOOM_DEPTH": str(DEPTH)}
    name = "load_path" if bus == "64" else f"load_path_{bus}"
    result = run_cocotb(LoadPath(beat_bits, word_bits), "load_path", "tb.load_unit_tb", name,
                        seed, env=env)
    assert result.failed == {}, f"seed {seed}: {result.failed}"
    assert result.passed == ["loads_land_in_the_right_slot_words"]


def test_rejects_a_lane_target_whose_rows_are_not_whole_beats():
    with pytest.raises(ValueError, match="'p'.*whole beats"):
        LoadUnit(beat_width=64, addr_width=32, targets={"p": (32, 16)})
    with pytest.raises(ValueError, match="'p'.*whole beats"):
        LoadUnit(beat_width=64, addr_width=32, targets={"p": (256, 128)})
