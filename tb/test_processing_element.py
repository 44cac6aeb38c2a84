"""Fast Amaranth-simulator unit tests of one ProcessingElement (no Verilator needed)."""
import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.processing_element import ProcessingElement


def simulate(pe, stimulus, extra_cycles=4):
    """Apply one dict of input values per cycle; return one dict of output values per cycle.

    Each returned entry is sampled after the clock edge that ended that stimulus cycle, i.e.
    it shows the registered outputs the cycle's inputs produced.
    """
    trace = []
    idle = {"ctl_in": {"valid": 0, "first": 0, "last": 0}}

    async def bench(ctx):
        for inputs in [*stimulus, *[idle] * extra_cycles]:
            for name, value in inputs.items():
                ctx.set(getattr(pe, name), value)
            done = ctx.get(pe.done)
            done_early = ctx.get(pe.done_early)
            draining = ctx.get(pe.draining)
            await ctx.tick()
            trace.append({
                "done": done, "done_early": done_early, "draining": draining,
                "result_out": ctx.get(pe.result_out), "a_out": ctx.get(pe.a_out),
                "b_out": ctx.get(pe.b_out), "token_out": ctx.get(pe.drain_token_out),
            })

    sim = Simulator(pe)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return trace


def random_tiles(rng, tiles, max_k, bubble_rate):
    """Per-cycle stimulus for ``tiles`` back-to-back tiles, plus each tile's operands."""
    stimulus, operands = [], []
    for _ in range(tiles):
        k = int(rng.integers(1, max_k + 1))
        a = rng.integers(-128, 128, size=k)
        b = rng.integers(-128, 128, size=k)
        operands.append((a, b))
        for kk in range(k):
            while rng.random() < bubble_rate:
                stimulus.append({"ctl_in": {"valid": 0, "first": 0, "last": 0},
                                 "a_in": int(rng.integers(-128, 128)), "b_in": 5})
            stimulus.append({"a_in": int(a[kk]), "b_in": int(b[kk]),
                             "ctl_in": {"valid": 1, "first": int(kk == 0),
                                        "last": int(kk == k - 1)}})
    return stimulus, operands


def captured_results(trace):
    """The sum each ``done`` pulse captured (visible in result_out after that edge)."""
    return [entry["result_out"] for entry in trace if entry["done"]]


@pytest.mark.parametrize("multiplier, product_stages", [("dsp", 1), ("lut", 1), ("dsp", 2),
                                                        ("lut", 2), ("dsp", 3), ("lut", 3)])
@pytest.mark.parametrize("acc_width", [32, 16])
def test_accumulates_tiles_with_bubbles(rng, acc_width, multiplier, product_stages):
    stimulus, operands = random_tiles(rng, tiles=12, max_k=40, bubble_rate=0.3)
    pe = ProcessingElement(acc_width=acc_width, multiplier=multiplier,
                           product_stages=product_stages)
    got = captured_results(simulate(pe, stimulus))
    half = 1 << (acc_width - 1)
    expected = [((int(np.dot(a.astype(np.int64), b)) + half) % (2 * half)) - half
                for a, b in operands]
    assert got == expected


def test_wraps_at_accumulator_width():
    # 4 x (-128 * -128) = 65536 = 2**16: wraps to 0 in 16 bits; 3 x 16384 wraps to -16384.
    stimulus = [{"a_in": -128, "b_in": -128,
                 "ctl_in": {"valid": 1, "first": int(k == 0), "last": int(k == 3)}}
                for k in range(4)]
    stimulus += [{"a_in": -128, "b_in": -128,
                  "ctl_in": {"valid": 1, "first": int(k == 0), "last": int(k == 2)}}
                 for k in range(3)]
    assert captured_results(simulate(ProcessingElement(acc_width=16), stimulus)) == [0, -16384]


@pytest.mark.parametrize("product_stages", [1, 2, 3])
def test_forwards_operands_after_one_cycle(rng, product_stages):
    values = rng.integers(-128, 128, size=(10, 2))
    stimulus = [{"a_in": int(a), "b_in": int(b), "ctl_in": {"valid": 1, "first": 1, "last": 0}}
                for a, b in values]
    trace = simulate(ProcessingElement(multiplier="lut", product_stages=product_stages),
                     stimulus)
    assert [(t["a_out"], t["b_out"]) for t in trace[:10]] == [tuple(map(int, v)) for v in values]


def test_drain_window_and_capture_priority():
    # drain_start at cycle 2 and the token reaching this PE at cycle 5: the PE loads
    # result_in in cycles 2..5 inclusive and nothing else.
    stimulus = []
    for cycle in range(9):
        stimulus.append({"drain_start": int(cycle == 2), "drain_token_in": int(cycle == 5),
                         "result_in": 100 + cycle})
    trace = simulate(ProcessingElement(), stimulus, extra_cycles=0)
    assert [t["draining"] for t in trace] == [0, 0, 1, 1, 1, 1, 0, 0, 0]
    assert [t["result_out"] for t in trace] == [0, 0, 102, 103, 104, 105, 105, 105, 105]
    assert [t["token_out"] for t in trace] == [0, 0, 0, 0, 0, 1, 0, 0, 0]
    # A capture in the same cycle as a drain shift wins.
    stimulus = [{"a_in": 3, "b_in": 4, "ctl_in": {"valid": 1, "first": 1, "last": 1}},
                {"ctl_in": {"valid": 0, "first": 0, "last": 0}, "drain_start": 1,
                 "result_in": 999}]
    trace = simulate(ProcessingElement(), stimulus, extra_cycles=1)
    assert trace[1]["done"] == 1 and trace[1]["result_out"] == 12


@pytest.mark.parametrize("multiplier", ["dsp", "lut"])
@pytest.mark.parametrize("product_stages", [1, 2, 3])
def test_done_comes_product_stages_cycles_after_the_last_beat(multiplier, product_stages):
    """A tile's ``done`` (the capture) is ``product_stages`` cycles after its ``last`` beat
    is on ``ctl_in``, ``done_early`` one cycle before it; a tile of K = 1 right behind
    another (``first`` and ``last``) does not add the previous sum."""
    stimulus = [{"a_in": 3, "b_in": -7, "ctl_in": {"valid": 1, "first": 1, "last": 0}},
                {"a_in": 5, "b_in": 11, "ctl_in": {"valid": 1, "first": 0, "last": 1}},
                {"a_in": -128, "b_in": -128, "ctl_in": {"valid": 1, "first": 1, "last": 1}}]
    trace = simulate(ProcessingElement(multiplier=multiplier, product_stages=product_stages),
                     stimulus, extra_cycles=3)
    assert [n for n, t in enumerate(trace) if t["done"]] == [1 + product_stages,
                                                            2 + product_stages]
    assert [n for n, t in enumerate(trace) if t["done_early"]] == [product_stages,
                                                                  1 + product_stages]
    assert captured_results(trace) == [3 * -7 + 5 * 11, 16384]


@pytest.mark.parametrize("kwargs, error, message", [
    ({"product_stages": 4}, ValueError, "product_stages must be 1, 2 or 3"),
    ({"product_stages": 0}, ValueError, "product_stages must be 1, 2 or 3"),
    ({"product_stages": "2"}, TypeError, "product_stages must be an integer"),
    ({"product_stages": True}, TypeError, "product_stages must be an integer"),
    ({"product_stages": 2, "multiplier": "external"}, ValueError, "external"),
    ({"product_stages": 2, "datapaths": ("fp16",)}, ValueError, "int8-only"),
    ({"product_stages": 2, "datapaths": ("int8", "fp16")}, ValueError, "int8-only"),
    ({"product_stages": 3, "multiplier": "external"}, ValueError, "external"),
    ({"product_stages": 3, "datapaths": ("fp16",)}, ValueError, "int8-only"),
])
def test_rejects_bad_product_stages(kwargs, error, message):
    with pytest.raises(error, match=message):
        ProcessingElement(**kwargs)


@pytest.mark.parametrize("acc_width, error", [
    (15, ValueError), (0, ValueError), ("32", TypeError), (32.0, TypeError), (True, TypeError),
])
def test_rejects_bad_acc_width(acc_width, error):
    with pytest.raises(error, match="acc_width"):
        ProcessingElement(acc_width=acc_width)
