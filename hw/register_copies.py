"""Copies of one register that synthesis keeps apart, each driving part of a wide fan-out."""
from amaranth.hdl import ClockSignal, Const, Instance, ResetSignal, Signal

from .platforms import is_ecp5

__all__ = ["register_copies", "TRELLIS_FF_PARAMETERS"]

#: A plain D flip-flop: always enabled, outside the global set/reset, ``LSR`` a synchronous
#: reset to 0 (tied low, or the domain's reset with ``reset=True``). It powers up as
#: ``REGSET`` says (0), as the Amaranth registers do in simulation.
TRELLIS_FF_PARAMETERS = {"GSR": "DISABLED", "CEMUX": "1", "CLKMUX": "CLK", "LSRMUX": "LSR",
                         "REGSET": "RESET", "SRMODE": "LSR_OVER_CE"}


def register_copies(m, platform, domain, value, count, *, name, reset=False):
    """``count`` registers in ``domain`` that each hold ``value`` one clock later.

    Why
    ---
    One register driving a multiplexer per bit of a wide word (the result buffer's bypass
    choice: 512 multiplexers in a 16x16 build) is one net spread across the die: on the
    ECP5-85F that route alone was 11.8 ns, the array clock's critical path. With a copy per
    lane each register drives its lane's 32 multiplexers and can be placed among them.
    yosys merges identical registers (``opt_merge``, even those marked ``keep``), so on an
    ECP5 ``platform`` each bit of each copy is a hand-instanced ``TRELLIS_FF``
    (:data:`TRELLIS_FF_PARAMETERS`), which yosys keeps as it is. Elsewhere (simulation,
    other families) the copies are plain ``reset_less`` registers (and may be merged).

    Without ``reset`` the copies have no reset: use them only where the value of a register
    that was never written does not matter (a choice that is qualified by a valid bit
    elsewhere). With it they reset to 0 with ``domain`` (synchronously); on the ECP5 that is
    the instance's ``LSR`` wired to ``ResetSignal(domain)``, which a ``ResetInserter`` above
    does not reach (it only adds resets to Amaranth's own registers): use ``reset`` only in a
    domain whose reset is its own (the array clock of a two-clock build, which the
    accelerator's soft reset leaves alone).

    Returns the list of copies, signals of ``len(value)`` bits named ``{name}_{n}``.
    """
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError(f"count must be a positive integer, not {count!r}")
    copies = [Signal(len(value), name=f"{name}_{n}", reset_less=not reset)
              for n in range(count)]
    if not is_ecp5(platform):
        m.d[domain] += [copy.eq(value) for copy in copies]
        return copies
    for n, copy in enumerate(copies):
        for bit in range(len(value)):
            m.submodules[f"{name}_{n}_ff{bit}"] = Instance(
                "TRELLIS_FF",
                **{f"p_{param}": setting for param, setting in TRELLIS_FF_PARAMETERS.items()},
                i_CLK=ClockSignal(domain),
                i_LSR=ResetSignal(domain) if reset else Const(0, 1), i_CE=Const(1, 1),
                i_DI=value[bit], o_Q=copy[bit])
    return copies
