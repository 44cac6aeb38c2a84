"""Small helpers shared by the testbenches that drive AXI buses with cocotbext-axi."""

__all__ = ["random_pauses"]


def random_pauses(rng, rate):
    """A cocotbext-axi pause generator: True (stall this cycle) with probability ``rate``.

    ``rng`` is any object with ``random()`` (``random.Random`` or a NumPy ``Generator``), so
    the stalls repeat from the test's printed seed."""
    while True:
        yield rng.random() < rate
