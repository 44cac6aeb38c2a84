"""The board designs: Loom with on-chip host memory and a UART host bridge.

:class:`LoomSystem` is everything clocked by the design clock (simulable, pins as ports):

    rx pin -> UartRx -> HostBridge -> UartTx -> tx pin
                        |csr (AXI4-Lite)   |mem (AXI4-Lite)
                        v                  v
                  Accelerator.csr      HostRam.lite
                  Accelerator.mem ---> HostRam.bus (AXI4)

:class:`BoardTop` adds what a real board needs: the PLL from the board oscillator to the
design clock, the reset held until lock, and the UART and LED pins of an amaranth-boards
platform. The bridge polls the accelerator's STATUS register for the LEDs: idle (no job
running), busy (a job running), error (the last job stopped on an error).
"""
from dataclasses import dataclass

from amaranth.hdl import Elaboratable, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from fpga.pll import Pll, ecp5_pll, ice40_pll
from hw.accelerator import Accelerator
from hw.axi import connect_members
from hw.csr_map import register
from hw.host_bridge import HostBridge
from hw.host_ram import HostRam
from hw.uart_rx import UartRx
from hw.uart_tx import UartTx

__all__ = ["SystemConfig", "LoomSystem", "BoardTop"]


@dataclass(frozen=True)
class SystemConfig:
    """What a board build instantiates (one row of the board table in ``fpga/bitstream.py``)."""
    rows: int = 4
    cols: int = 4
    datapaths: tuple = ("int8",)
    data_width: int = 64
    depth: int = 256
    #: operand/result slots: 2 double-buffers (loads overlap compute); 1 saves a result
    #: tile's flip-flops and half the buffers on small parts
    slots: int = 2
    ram_size: int = 64 * 1024
    ram_primitive: str = "memory"
    clock_hz: int = 30_000_000
    baud: int = 115_200
    max_words: int = 64
    byte_timeout_s: float = 0.05
    requantizer: str = "parallel"
    lut_multipliers: int = 0
    paired_multipliers: bool = False
    span_multiplier: str = "dsp"
    counter_width: int = 64
    #: the result buffer in flip-flops without the block-RAM pipeline (``"registers"``), for
    #: parts without distributed RAM
    result_storage: str = "ram"
    #: 3: the fp16 accumulation's binary32 adders in three register stages (fp16 beats one
    #: every 3 cycles), for the clock of the int8 builds; 1: one cycle (~27 MHz on ECP5)
    fp32_adder_stages: int = 1
    #: 2: each PE's int8 product over two registers (int8-only, no paired multipliers), for
    #: the array clock; results one cycle later; 1: one register
    product_stages: int = 1
    #: False: the operand buffers straight into the array (2 registers fewer per COMPUTE,
    #: for slow clocks and small parts; ``Accelerator(operand_registers=...)``)
    operand_registers: bool = True
    #: True: each PE's result taken from its accumulator the cycle after a tile's last beat,
    #: which clears it (fewer logic cells; int8 only)
    clear_after_last: bool = False
    #: True: the array's columns drain together, no deskew registers
    aligned_drain: bool = False
    #: True: operand beats reach all PEs of a row / column at once (small arrays: no skew
    #: and forwarding registers)
    broadcast_operands: bool = False
    #: Hz of the array's own clock (a second PLL output, ECP5 only); 0: the array runs on
    #: ``clock_hz`` with everything else
    array_clock_hz: int = 0
    #: the accelerator's DMA address width: 32, or just enough for ``ram_size`` on small parts
    #: (narrower address counters and checks); the RAM sits at address 0 either way
    addr_width: int = 32

    @property
    def divisor(self):
        return round(self.clock_hz / self.baud)


class LoomSystem(wiring.Component):
    """Accelerator + host RAM (at address 0) + UART host bridge, one clock domain.

    Ports: ``rx`` / ``tx`` UART pins (idle high), ``leds`` = (idle, busy, error) from the
    accelerator's STATUS, polled by the bridge every 1024 cycles.
    """

    rx: In(1, init=1)
    tx: Out(1, init=1)
    leds: Out(3)

    def __init__(self, config):
        if config.ram_size > 1 << config.addr_width:
            raise ValueError(f"addr_width {config.addr_width} cannot address the "
                             f"{config.ram_size}-byte host RAM")
        self.config = config
        self.accelerator = Accelerator(config.rows, config.cols, datapaths=config.datapaths,
                                       data_width=config.data_width, depth=config.depth,
                                       slots=config.slots,
                                       requantizer=config.requantizer,
                                       lut_multipliers=config.lut_multipliers,
                                       paired_multipliers=config.paired_multipliers,
                                       span_multiplier=config.span_multiplier,
                                       counter_width=config.counter_width,
                                       addr_width=config.addr_width,
                                       result_storage=config.result_storage,
                                       fp32_adder_stages=config.fp32_adder_stages,
                                       product_stages=config.product_stages,
                                       operand_registers=config.operand_registers,
                                       clear_after_last=config.clear_after_last,
                                       aligned_drain=config.aligned_drain,
                                       broadcast_operands=config.broadcast_operands,
                                       array_clock=config.array_clock_hz != 0,
                                       # the host RAM serves one burst at a time
                                       dma_outstanding=1)
        super().__init__()

    def elaborate(self, platform):
        c = self.config
        m = Module()
        m.submodules.accelerator = accel = self.accelerator
        m.submodules.ram = ram = HostRam(size=c.ram_size, data_width=c.data_width,
                                         primitive=c.ram_primitive)
        status = register("STATUS")
        m.submodules.bridge = bridge = HostBridge(
            max_words=c.max_words, byte_timeout=max(16, int(c.byte_timeout_s * c.clock_hz)),
            mem_size=c.ram_size, clock_hz=c.clock_hz, status_offset=status.offset)
        m.submodules.uart_rx = uart_rx = UartRx(c.divisor)
        m.submodules.uart_tx = uart_tx = UartTx(c.divisor)

        m.d.comb += uart_rx.rx.eq(self.rx)
        m.d.comb += self.tx.eq(uart_tx.tx)
        wiring.connect(m, uart_rx.data, bridge.rx)
        wiring.connect(m, bridge.tx, uart_tx.data)
        wiring.connect(m, bridge.csr, accel.csr)
        wiring.connect(m, bridge.mem, ram.lite)
        connect_members(m, accel.mem, ram.bus)      # a narrower DMA address zero-extends

        fields = {f.name: f for f in status.fields}
        busy = bridge.status[fields["busy"].lsb]
        error = bridge.status[fields["error"].lsb]
        m.d.comb += self.leds.eq(~busy | busy << 1 | error << 2)
        return m


class BoardTop(Elaboratable):
    """:class:`LoomSystem` on an amaranth-boards platform: PLL, UART pins, LEDs.

    ``leds`` names the platform LED resources for (idle, busy, error) as
    ``(name, number)``; missing ones are skipped.
    """

    def __init__(self, config, leds):
        self.config, self.leds = config, leds

    def pll_config(self, platform):
        f_in = platform.default_clk_frequency
        array_hz = self.config.array_clock_hz
        if platform.device.startswith("iCE40"):
            if array_hz:
                raise ValueError("a separate array clock is built for ECP5 boards only")
            return ice40_pll(f_in, self.config.clock_hz)
        config = ecp5_pll(f_in, self.config.clock_hz, array_hz or None)
        if array_hz and abs(config.params["f_secondary"] - array_hz) > 1:
            raise ValueError(f"the PLL makes {config.params['f_secondary'] / 1e6:.4f} MHz for "
                             f"the array, not the configured {array_hz / 1e6} MHz: pick a "
                             f"clock the PLL can make exactly")
        return config

    def elaborate(self, platform):
        m = Module()
        pll_config = self.pll_config(platform)
        if abs(pll_config.f_out - self.config.clock_hz) > 1:
            raise ValueError(f"the PLL makes {pll_config.f_out / 1e6:.4f} MHz, not the "
                             f"configured {self.config.clock_hz / 1e6} MHz: pick a clock the "
                             f"PLL can make exactly (the UART divisor and INFO depend on it)")
        if pll_config.family == "ice40":
            clk = platform.request(platform.default_clk, dir="-").io
        else:
            clk = platform.request(platform.default_clk, dir="i").i
        m.submodules.pll = Pll(pll_config, clk)
        m.submodules.system = system = LoomSystem(self.config)
        uart = platform.request("uart", 0)
        m.d.comb += [system.rx.eq(uart.rx.i), uart.tx.o.eq(system.tx)]
        for bit, (name, number) in enumerate(self.leds):
            try:
                led = platform.request(name, number)
            except Exception:       # a board without this LED  # noqa: BLE001
                continue
            m.d.comb += led.o.eq(system.leds[bit])
        return m
