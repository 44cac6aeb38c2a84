"""A simple dual-port RAM of ECP5 DP16KD blocks whose read data leaves the blocks' own output
registers (``REGMODE_B="OUTREG"``), hand-instanced: yosys maps memories to DP16KD without
them."""
from amaranth.hdl import ClockSignal, Const, Elaboratable, Instance, Module, Signal

from .block_ram import block_ram
from .platforms import is_ecp5

__all__ = ["DP16KD_PARAMETERS", "Ecp5OutregRam"]

#: Every block: port A writes 18-bit words, port B reads them through the array's read
#: register and then the output register (two clocks from address to data, like a
#: synchronous read port followed by a register). Resets and chip selects are unused.
DP16KD_PARAMETERS = {
    "DATA_WIDTH_A": 18, "DATA_WIDTH_B": 18, "REGMODE_A": "NOREG", "REGMODE_B": "OUTREG",
    "RESETMODE": "SYNC", "ASYNC_RESET_RELEASE": "SYNC", "CSDECODE_A": "0b000",
    "CSDECODE_B": "0b000", "WRITEMODE_A": "NORMAL", "WRITEMODE_B": "NORMAL",
    "CLKAMUX": "CLKA", "CLKBMUX": "CLKB", "GSR": "AUTO"}

#: bits of a block's 18-bit word, and words of a block in that mode
_LANE, _WORDS = 18, 1024


class Ecp5OutregRam(Elaboratable):
    """``depth`` (at most 1,024) words of ``width`` bits in ``ceil(width / 18)`` DP16KD blocks
    (1,024 x 18 each), written in ``write_domain`` and read in ``read_domain``.

    Why
    ---
    A DP16KD's data leaves its read register 5.8 ns after the clock (nextpnr's ECP5
    timing, speed 6): a fabric register after it, the operand buffers' output register,
    was placed 23 tiles away in the 16x16 system and the RAM -> register path (11.5 ns,
    5.6 of it routing) was the array clock's critical path at 87.3 MHz. With
    ``REGMODE_B="OUTREG"`` the block's own output register is that register: the same two
    clocks from address to data, the same enables, and its clock-to-output is short.

    Ports (signals)
    ---------------
    ``w_addr`` (``range(depth)``), ``w_data`` (``width``), ``w_en``: a write at the edge
    (``write_domain``). ``r_addr`` (``range(depth)``), ``r_en``: the read register takes
    word ``r_addr`` at an edge with ``r_en``; ``r_oe``: the output register takes the read
    register at an edge with ``r_oe``; ``r_data`` (``width``): the output register.
    A read of a word written in the same cycle is undefined (as :func:`~hw.block_ram.
    block_ram`'s), and so is the data before the first reads. Elaborated for anything but an
    ECP5 (simulation) it is that behaviour in Amaranth: a :func:`~hw.block_ram.block_ram`
    read port and a register.
    """

    def __init__(self, *, width, depth, write_domain="sync", read_domain="sync"):
        if not isinstance(width, int) or isinstance(width, bool) or width < 1:
            raise ValueError(f"width must be a positive integer, not {width!r}")
        if not isinstance(depth, int) or isinstance(depth, bool) or not 1 <= depth <= _WORDS:
            raise ValueError(f"depth must be an integer from 1 to {_WORDS}, not {depth!r}")
        self.width, self.depth = width, depth
        self.write_domain, self.read_domain = write_domain, read_domain
        self.blocks = -(-width // _LANE)
        self.w_addr = Signal(range(depth), name="w_addr")
        self.w_data = Signal(width, name="w_data")
        self.w_en = Signal(name="w_en")
        self.r_addr = Signal(range(depth), name="r_addr")
        self.r_en = Signal(name="r_en")
        self.r_oe = Signal(name="r_oe")
        self.r_data = Signal(width, name="r_data")

    def elaborate(self, platform):
        m = Module()
        if not is_ecp5(platform):
            ram = m.submodules.model = block_ram(shape=self.width, depth=self.depth)
            wr = ram.write_port(domain=self.write_domain)
            rd = ram.read_port(domain=self.read_domain)
            m.d.comb += [wr.addr.eq(self.w_addr), wr.data.eq(self.w_data), wr.en.eq(self.w_en),
                         rd.addr.eq(self.r_addr), rd.en.eq(self.r_en)]
            with m.If(self.r_oe):
                m.d[self.read_domain] += self.r_data.eq(rd.data)
            return m
        zero = Const(0, 1)

        def address(word, port):
            """A 1,024 x 18 port's address pins: the word on bits 13..4; bits 1..0 are the
            two 9-bit bytes' write enables (both on for the writing port), 3..2 unused."""
            word = [word[n] if n < len(word) else zero for n in range(10)]
            low = [Const(1, 1)] * 2 if port == "A" else [zero] * 2
            bits = [*low, zero, zero, *word]
            return {f"i_AD{port}{n}": bit for n, bit in enumerate(bits)}

        # bit b of a word is pin b % 18 of block b // 18 on both ports
        padded_out = Signal(self.blocks * _LANE, name="r_data_blocks")
        m.d.comb += self.r_data.eq(padded_out[:self.width])
        for n in range(self.blocks):
            data_in = [self.w_data[b] if b < self.width else zero
                       for b in range(n * _LANE, (n + 1) * _LANE)]
            data_out = [padded_out[b] for b in range(n * _LANE, (n + 1) * _LANE)]
            m.submodules[f"block_{n}"] = Instance(
                "DP16KD",
                **{f"p_{name}": value for name, value in DP16KD_PARAMETERS.items()},
                i_CLKA=ClockSignal(self.write_domain), i_CEA=Const(1, 1),
                i_OCEA=Const(1, 1), i_WEA=self.w_en, i_RSTA=zero,
                i_CSA0=zero, i_CSA1=zero, i_CSA2=zero,
                **address(self.w_addr, "A"),
                **{f"i_DIA{bit}": data_in[bit] for bit in range(_LANE)},
                i_CLKB=ClockSignal(self.read_domain), i_CEB=self.r_en, i_OCEB=self.r_oe,
                i_WEB=zero, i_RSTB=zero, i_CSB0=zero, i_CSB1=zero, i_CSB2=zero,
                **address(self.r_addr, "B"),
                **{f"i_DIB{bit}": zero for bit in range(_LANE)},
                **{f"o_DOB{bit}": data_out[bit] for bit in range(_LANE)})
        return m
