"""cocotb testbench: LoadUnit + DmaReader + one OperandBuffer per target against AxiRamRead.

Built by ``tb/test_load_unit.py`` (the top, ``LoadPath``, is defined there). Loads random
2-D regions into buffer slots (packed and strided rows when words are narrower than a beat),
streams the whole slots back out and compares with host memory.
"""
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge
from cocotbext.axi import AxiRamRead, AxiReadBus

from hw.load_unit import LoadUnit
from tb.bus_models import random_pauses
from tb.payload import pack

SEED = int(os.environ.get("LOOM_SEED", "0"))
BEAT_BITS = int(os.environ["LOOM_BEAT_BITS"])
#: per target (host row bits, buffer word bits): equal, or a lane-by-lane target ("RxW")
TARGETS = [tuple(int(x) for x in w.split("x")) if "x" in w else (int(w), int(w))
           for w in os.environ["LOOM_WORD_BITS"].split(",")]
WORD_BITS = [word for _, word in TARGETS]
DEPTH = int(os.environ["LOOM_DEPTH"])
ADDR_BITS = 32
MEMORY = 1 << 18
CMD_LAYOUT = LoadUnit(beat_width=BEAT_BITS, addr_width=ADDR_BITS,
                      targets={f"t{n}": w if w[0] != w[1] else w[0]
                               for n, w in enumerate(TARGETS)}).cmd.payload.shape()



async def drive_stream(dut, prefix, payload):
    valid = getattr(dut, f"{prefix}__valid")
    getattr(dut, f"{prefix}__payload").value = payload
    valid.value = 1
    while True:
        await FallingEdge(dut.clk)
        if getattr(dut, f"{prefix}__ready").value:
            break
    await RisingEdge(dut.clk)
    valid.value = 0


@cocotb.test()
async def loads_land_in_the_right_slot_words(dut):
    rng = random.Random(SEED)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    ram = AxiRamRead(AxiReadBus.from_prefix(dut, "bus", bus_separator="__"), dut.clk, dut.rst,
                     size=MEMORY)
    ram.write(0, rng.randbytes(MEMORY))
    ram.ar_channel.set_pause_generator(random_pauses(rng, 0.3))
    ram.r_channel.set_pause_generator(random_pauses(rng, 0.3))
    dut.cmd__valid.value = 0
    for target in range(len(WORD_BITS)):
        getattr(dut, f"read{target}__valid").value = 0
        getattr(dut, f"words{target}__ready").value = 1
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await RisingEdge(dut.clk)

    beat = BEAT_BITS // 8
    # what every buffer slot must hold (block RAM starts zeroed): a load must write its
    # words and nothing else, e.g. no word past `count` from a packed block's final beat
    model = {(t, s): [0] * DEPTH for t in range(len(WORD_BITS)) for s in range(2)}
    for _ in range(16):
        target = rng.randrange(len(WORD_BITS))
        row_bytes, word_bytes = (bits // 8 for bits in TARGETS[target])
        per_row = row_bytes // word_bytes         # words a host row becomes
        slot = rng.randrange(2)
        count = rng.randint(1, DEPTH // per_row)
        if row_bytes >= beat:
            pitch = row_bytes + beat * rng.randint(0, 4)
        else:    # narrower than a beat: packed (pitch = word) or strided (whole beats)
            pitch = rng.choice([word_bytes, word_bytes, beat * rng.randint(1, 4)])
        addr = rng.randrange(0, MEMORY - pitch * count - beat, beat)
        await drive_stream(dut, "cmd", pack(CMD_LAYOUT, {
            "target": target, "slot": slot, "addr": addr, "pitch": pitch, "count": count}))
        for _ in range(100_000):
            await RisingEdge(dut.clk)
            if not dut.busy.value:
                break
        # read the whole slot back out of the buffer
        await drive_stream(dut, f"read{target}", slot | DEPTH << 1)  # {slot: 1 bit, count}
        words = []
        while len(words) < DEPTH:
            await FallingEdge(dut.clk)
            if getattr(dut, f"words{target}__valid").value:
                value = getattr(dut, f"words{target}__payload").value.to_unsigned()
                words.append(value & ((1 << WORD_BITS[target]) - 1))
        model[target, slot][:count * per_row] = [
            int.from_bytes(ram.read(addr + n * pitch + w * word_bytes, word_bytes), "little")
            for n in range(count) for w in range(per_row)]
        assert words == model[target, slot], (f"target {target} slot {slot} count {count} "
                                              f"pitch {pitch} (seed {SEED})")
        await RisingEdge(dut.clk)
