"""Cycle model: predicts PERF_TOTAL_CYCLES of a descriptor program (all figures in cycles).

``predict(descriptors, config)`` runs an event simulation of the accelerator at the level of
commands, not gates, with the hardware's structure:

* **Fetch.** The sequencer reads descriptors by DMA in batches of 4 (``_FETCH_BATCH``), a
  batch only when the 8-entry descriptor queue has room for it, on the DMA reader it shares
  with the LOAD unit. The reader runs one command at a time and takes the next one the cycle
  after the last beat of the current one; when both want it, fetch wins
  (``hw/accelerator.py: _share_reader``). The room is a registered count: a descriptor
  dispatched in cycle ``t`` leaves it in ``t + 1``.
* **Dispatch** is in order, one descriptor a cycle (one every 13 on a 32-bit bus, whose
  sequencer checks one descriptor at a time, in the register that gathers its 8 beats;
  ``check_steps - 1`` more with a serial span multiply), into per-unit queues of 8; the
  model's dispatch cycle is the sequencer's (it takes the checked descriptor), the command
  is in its unit's queue a cycle later and the unit can take it the cycle after that; a
  command a unit takes leaves its queue's room a cycle later (the queue's RAM level is a
  register).
  FENCE/END wait until every unit is idle. With full queues (long programs), a unit taking
  a LOAD frees the room for a fetch only two cycles later (queue, then count), while the
  LOAD asks for the reader one cycle later (``load_issue``): the LOAD gets the reader and
  the fetch waits for its end.
* **Units** LOAD, COMPUTE and STORE each run one command at a time, in order, after taking
  the tokens their ``wait_*`` flags ask for; tokens are given when a command ends
  (``signal_*``), exactly the ISA's counting semaphores.
* **DMA.** A read or write command is split into INCR bursts of at most 256 beats that never
  cross a 4 KiB boundary, one burst per host row; at most 4 bursts are outstanding; data
  moves at one beat per cycle per direction (slower when a beat carries several narrow
  buffer words: the buffer takes one word a cycle, and a packed block's final beat may
  carry fewer). The first beat of a read burst arrives
  ``read_latency`` cycles after its address; a write burst's response ``write_latency``
  cycles after its last beat.
* **COMPUTE** streams ``k`` operand beats, then the array drains: the last result row
  lands ``rows + cols + product_stages - 1 + rows - 1`` cycles after the last beat
  (``SystolicArray.latency`` plus the rows; ``product_stages`` from
  ``ARRAY_CONFIG.product_stages``, 1 unless the PEs' products are pipelined; one more with
  ``ARRAY_CONFIG.clear_after_last``, ``rows + cols - 2`` fewer with
  ``ARRAY_CONFIG.broadcast_operands``), plus fixed pipeline cycles. The compute unit reports
  busy until then, so COMPUTEs do not overlap each other. With ``fp16_beat_cycles`` 3
  (pipelined binary32 adders) an fp16 COMPUTE's beats come every 3 cycles and its sums 3
  cycles later (``3 * k + 1`` instead of ``k``), and every COMPUTE's rows land 2 cycles
  later (the result buffer's adder stages and output register: writes land 5 cycles after
  they are presented instead of 3).
* **STORE** reads the parameter slot (int8 mode; with one shared requantiser and parameter
  rows of whole beats, every column's words, ``PARAM_WORDS * cols``, through two more
  registers), then streams ``rows`` result rows through the post-processing pipeline
  (or the bit-serial requantisers: a row every ``cols * 65`` cycles through a shared one)
  to the DMA writer, rows narrower than a beat packed (the packer registers each beat),
  and ends when every write response is back.

The fixed per-command overheads (:class:`Timing`) were measured on the Verilator RTL with
cocotbext-axi ``AxiRam`` host memory (see ``tb/test_cycle_model.py`` and ``sim/sweep.py``);
``Timing(read_latency=..., write_latency=...)`` models a slower memory. Not modelled: bus
backpressure from anything but the latencies above, DRAM refresh/page effects, errors.
Measured against the RTL: ``tb/test_cycle_model.py``'s sweep (22 shapes, int32 and int8
outputs, and 5 fp16 ones on the dual build) is exact, to the cycle, on the 8x8 64-bit
build and on the iCEBreaker row's build (4x4, one shared requantiser, one slot) on its
32-bit bus (with a one-cycle or, as on the board, a serial span multiply) and on a 64-bit
one; on the 4x8 dual 64-bit build too but for int8 outputs,
3 cycles a program short (0.04 to 0.24 %); ``tb/test_rtl_backend.py``'s shapes are exact
on its int8, serial, shared and 128-bit dual builds, and within 1.2 % on the one with an
array clock (the crossings' fit). The dual build's residue is the STORE's write side,
whose constants (``store_data``, ``write_latency``) are a fit, not AxiRam's AW/W/B
timeline (it takes three write addresses ahead of their data and answers two cycles after
a burst's last beat). The 32-bit build was once predicted up to 6.9 % high for int32
outputs (2.5 % on 64 bits): the model let a descriptor fetch take the reader ahead of the
LOAD that had just started (see Dispatch), a fetch's time (8 beats a descriptor at 32
bits) per tile in long programs. ``start``, ``end`` and ``params`` (then 2, 2, 2) had
been fitted around that and around a reader hand-off one cycle early; they are 1, 1 and 0
as measured. Its reader-bound shapes (64x16x8, 128x32x8) were then still up to 2.1 % high:
the room a dispatch leaves is seen by the fetch a cycle later, but the event loop did not
wake up for it, so when nothing else happened in that cycle the fetch waited for the next
event (the next dispatch, 12 cycles on, or a LOAD's end): 11 cycles of reader lost, by the
fetch and by the LOAD behind it, several times a program. And the model's dispatch cycle
was the unit queue's entry for a descriptor that came out of the check but the sequencer's
for one a full queue had held, so after the first kind the fetch saw the room a cycle
late; with that and a serial span multiply's steps counted in the gap between dispatches
but not in a descriptor's arrival, the board build (``check_steps`` 7) was -1.5 to +2.5 %
off. Both builds' sweeps are now exact.
"""
import math
from dataclasses import dataclass, field, replace

from hw.isa import DESCRIPTOR_BYTES, Opcode, Target, decode
from hw.processing_element import fp16_delay
from hw.requantizer import Requantizer
from hw.result_buffer import write_latency
from hw.serial_requantizer import SerialRequantizer
from hw.store_unit import SERIAL_REQUANTIZERS

__all__ = ["Timing", "AXIRAM", "Prediction", "predict", "golden_model", "gemm_program",
           "predict_gemm", "Projection", "project", "Projections",
           "layer_gemms", "LAYERS", "projection_table"]

_FETCH_BATCH = 4
_QUEUE_DEPTH = 8
_MAX_BURST = 256
_OUTSTANDING = 4
_PAGE = 4096
_PARAM_WORDS = 3


@dataclass(frozen=True)
class Timing:
    """Fixed latencies of the hardware and its memory, in cycles.

    Memory: ``read_latency``: cycles a read burst's first data beat comes after the cycle
    its address is issued, beyond the one the model always counts (0 for AxiRam, which
    answers in the next cycle); ``write_latency``: last W beat of a burst to its B response.
    The rest are pipeline cycles of the units (register stages and FSM states), measured on
    the RTL with single-command programs (``end`` alone, LOADs of 1/8/64 words, COMPUTEs of
    k = 1/8/64, STOREs per mode, and chains of two or three with tokens) and then fitted on
    whole GEMM programs: ``start``: the first counted cycle (PERF_TOTAL_CYCLES counts from
    the cycle that checks the descriptor table) to the first fetch request (2: that check,
    registered, then decided on);
    ``dispatch``: a descriptor's last fetched beat to its entry in its unit's queue (8:
    three of them are the Sequencer's register stages of the descriptor check, added to
    clock the ECP5 build higher; 5 before; one more on a 32-bit bus, whose sequencer checks
    one descriptor at a time and splits the last stage in two, and ``check_steps - 1``
    more with a serial span multiply; the sequencer dispatches it a cycle before its entry);
    ``load_issue``: LOAD taken to its DMA read granted; ``dma_setup``: cycles a DMA
    command's first address comes later than the cycle after the engine takes it (2: the
    engine works the first burst out from registers, over two cycles, ``hw/dma_engine.py``);
    ``load_end``: last beat read to the LOAD's tokens given (``wide_word`` more when a
    buffer word takes several beats or a beat several words: ``BeatsToWords`` registers the
    word or the beat); ``params``: extra cycles of a LOAD of requantisation parameters (0
    measured: its words take the other LOADs' path); ``fetch_gap``: reader cycles lost
    after a descriptor fetch (0 measured); ``compute``: cycles of a COMPUTE besides ``k``
    and the array's ``2 * rows + cols + product_stages - 2`` (7: two of them the register
    slice before the array and the result buffer's RAM data register, added for the ECP5
    16x16 clock; 5 before); ``store_start``: STORE taken to its first write address
    (``store_params`` more in int8 mode, which reads the parameter words first);
    ``store_data``: cycles from then to the first beat at the writer (7: five of them are the
    post-processing pipeline, the requantiser's depth; 5 before it was pipelined for the
    ECP5 clock; four fewer in builds with serial requantisers, whose pipeline is one
    stage); ``store_end``: last
    write response to the STORE's tokens given; ``end``: END dispatch to done (1: the
    dispatch cycle is the last one counted); ``token``:
    a command's end to its token being usable; ``serial_row``: with bit-serial requantisers
    (``ARRAY_CONFIG.serial_requant``), cycles from an INT8 STORE's first beat time (as
    above) to its first row's bytes at the writer (63; a packed beat leaves the packer a
    cycle after its last row), each further row ``SerialRequantizer.latency + 1`` later.
    ``direct_raw``, ``direct_int8``: in builds whose store streams beats straight from the
    result buffer (``StoreUnit.direct``: no post-processing register and FIFO), cycles a
    RAW32 STORE ends sooner and an INT8 STORE's first row reaches the writer sooner (a fit:
    exact on the 32-bit sweep's six shapes).
    Builds whose array has its own clock (``ARRAY_CONFIG.array_clock``): ``array_ratio``
    is its frequency over the system clock's (the board's choice, not in a register); a
    COMPUTE then takes ``crossing`` system cycles plus its array-side cycles (as above,
    + ``crossing_array``) at that ratio (fitted on a 4x4 build at ratios 0.5, 1 and 2).
    """
    read_latency: int = 0
    write_latency: int = 5
    start: int = 2
    dispatch: int = 8
    load_issue: int = 1
    dma_setup: int = 2
    load_end: int = 2
    compute: int = 7
    store_start: int = 2
    store_params: int = 1
    store_data: int = 7
    store_end: int = 2
    end: int = 1
    wide_word: int = 1
    fetch_gap: int = 0
    params: int = 0
    token: int = 1
    serial_row: int = 63
    direct_raw: int = 3
    direct_int8: int = 1
    array_ratio: float = 1.0
    crossing: int = 3
    crossing_array: int = 3


#: calibrated against AxiRam (see module doc)
AXIRAM = Timing()


@dataclass
class Prediction:
    """A program's predicted run, in cycles.

    ``cycles``: PERF_TOTAL_CYCLES (start to done). The breakdown: ``compute_cycles``: cycles
    the array takes operand beats (sum of K, = PERF_ARRAY_ACTIVE_CYCLES);
    ``fill_drain_cycles``: the array's fill/drain and the COMPUTE pipeline (busy without
    taking beats); ``dma_read_cycles`` / ``dma_write_cycles``: cycles the reader / writer
    moves data beats (both directions at one beat a cycle at most); ``fetch_cycles``: reader
    cycles spent on descriptor fetches; ``load_busy_cycles``, ``store_busy_cycles``: busy time
    of those units; ``macs``: MAC slots issued (rows * cols per beat).
    """
    cycles: int
    compute_cycles: int = 0
    fill_drain_cycles: int = 0
    dma_read_cycles: int = 0
    dma_write_cycles: int = 0
    fetch_cycles: int = 0
    load_busy_cycles: int = 0
    store_busy_cycles: int = 0
    macs: int = 0
    descriptors: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def utilisation(self):
        """Array-active cycles per total cycle (padding included)."""
        return self.compute_cycles / self.cycles if self.cycles else 0.0


def _bursts(addr, pitch, rows, row_beats, beat):
    """Lengths in beats of the INCR bursts of a 2-D DMA command (one row after another,
    <= 256 beats, no 4 KiB crossing)."""
    out = []
    # fast path: rows that are one burst each and never cross a page
    for r in range(rows):
        a = addr + r * pitch
        left = row_beats
        while left:
            to_page = (_PAGE - a % _PAGE) // beat
            n = min(left, _MAX_BURST, to_page)
            out.append(n)
            a += n * beat
            left -= n
    return out


def _read_time(grant, bursts, rate, latency, setup):
    """Times each burst's last data beat is in, for a read of ``bursts`` granted at ``grant``:
    the first address ``setup + 1`` cycles later, the rest a cycle apart, at most 4
    outstanding, data at ``rate`` cycles a beat."""
    ar = grant + setup
    ends = []
    data_end = grant
    for i, n in enumerate(bursts):
        ar = max(ar + 1, ends[i - _OUTSTANDING] if i >= _OUTSTANDING else 0)
        start = max(ar + latency, data_end)
        data_end = start + n * rate
        ends.append(data_end)
    return ends


def _write_time(start, data_ready, bursts, rate, latency, setup):
    """Time the last write response of ``bursts`` is back: the first AW ``setup + 1`` cycles
    after ``start``, the rest a cycle apart with at most 4 bursts awaiting responses, W
    beats at ``rate`` cycles each from ``data_ready`` on."""
    aw = start + setup
    data_end = data_ready
    responses = []
    for i, n in enumerate(bursts):
        aw = max(aw + 1, responses[i - _OUTSTANDING] if i >= _OUTSTANDING else 0)
        first = max(aw + 1, data_end)
        data_end = first + n * rate
        responses.append(data_end + latency)
    return max(responses) if responses else start


class _Config:
    """What the model needs of a :class:`~sw.config.HardwareConfig` (or any object with
    ``rows, cols, beat_bytes, lane_bytes``)."""

    def __init__(self, config):
        self.rows, self.cols, self.beat = config.rows, config.cols, config.beat_bytes
        self.lane = config.lane_bytes
        self.row_bytes = {Target.A: self.rows * self.lane, Target.B: self.cols * self.lane,
                          Target.PARAMS: 4 * self.cols}
        self.store_bytes = {0: 4 * self.cols, 1: self.cols, 2: 2 * self.cols}
        self.serial_requant = bool(getattr(config, "serial_requant", False))
        self.shared_requant = bool(getattr(config, "shared_requant", False))
        #: one shared requantiser and parameter rows of whole beats: the parameter buffer
        #: holds 32-bit lanes, loaded lane by lane; the STORE reads a column's words at a
        #: time (``hw/accelerator.py``, StoreUnit ``param_lanes``)
        self.param_lanes = self.shared_requant and 4 * self.cols >= self.beat
        #: STOREs stream beats straight from the result buffer, no FIFO (``StoreUnit.direct``:
        #: the shared requantiser, no fp16 output, rows of whole beats in every mode)
        self.direct_store = (self.shared_requant and not getattr(config, "fp16", False)
                             and self.cols >= self.beat)
        #: cycles from one dispatch to the next: on a bus that takes 8 beats a descriptor the
        #: sequencer checks one descriptor at a time in the register that gathers it (the
        #: next one's 8 beats enter it from the cycle after the dispatch, then the check
        #: stages: four, its last one in two cycles, ``split_check``). A serial span multiply
        #: (BUS_CONFIG.check_steps) takes its steps but one more in every descriptor's
        #: check: in the gap between dispatches and in each descriptor's arrival alike (the
        #: model once counted them only in the gap and was up to 3.5 % high on the board
        #: build's sweep, -1.5 % with the fetch woken after a dispatch)
        beats = DESCRIPTOR_BYTES // self.beat
        steps = getattr(config, "check_steps", 0)
        self.split_check = int(beats >= 8) + (max(steps - 1, 0) if beats >= 8 else 0)
        self.dispatch_gap = beats + 4 + self.split_check if beats >= 8 else 1
        self.fp16_only = bool(getattr(config, "fp16", False)) and not getattr(config, "int8",
                                                                              True)
        #: cycles per fp16 beat; pipelined adders also delay every tile's results (fp16:
        #: the PEs' adder, all tiles: the result buffer's) by ``beat_cycles - 1`` each
        self.beat_cycles = getattr(config, "fp16_beat_cycles", 1)
        self.fp16_delay = fp16_delay(self.beat_cycles)
        #: the result buffer's pipelined fp32 adders: rows land later
        self.result_delay = write_latency(self.beat_cycles) - write_latency()
        self.array_clock = bool(getattr(config, "array_clock", False))
        #: registers of a PE's product: the array's latency is ``rows + cols + stages - 1``
        self.product_stages = getattr(config, "product_stages", 1)
        #: ARRAY_CONFIG.direct_operands: no operand output registers or register slice
        self.direct_operands = bool(getattr(config, "direct_operands", False))
        #: ARRAY_CONFIG.clear_after_last: the PEs' results a cycle after the last beat
        self.clear_after_last = bool(getattr(config, "clear_after_last", False))
        #: ARRAY_CONFIG.broadcast_operands: no operand flow across the array
        self.broadcast_operands = bool(getattr(config, "broadcast_operands", False))


def _load_shape(cfg, f):
    """(bursts, cycles per beat, beats, words of the final beat) of a LOAD. A packed
    block's final beat may carry fewer words than the others (``count`` not a multiple of
    the words a beat); its words, like every beat's, go into the buffer one a cycle."""
    s, beat = cfg.row_bytes[Target(f["target"])], cfg.beat
    count, pitch = f["count"], f["pitch"]
    if cfg.param_lanes and Target(f["target"]) == Target.PARAMS:
        # rows of whole beats, each beat split into 32-bit lanes, one a cycle
        return _bursts(f["addr"], pitch, count, s // beat, beat), beat // 4, count * s // beat, \
            beat // 4
    if s >= beat:
        return _bursts(f["addr"], pitch, count, s // beat, beat), 1, count * s // beat, 1
    per_beat = beat // s
    if pitch == s:            # packed block, one word a cycle into the buffer
        beats = -(-count // per_beat)
        return (_bursts(f["addr"], beats * beat, 1, beats, beat), per_beat, beats,
                count - (beats - 1) * per_beat)
    return _bursts(f["addr"], pitch, count, 1, beat), 1, count, 1


def _store_shape(cfg, f):
    """(bursts, cycles per beat, beats) of a STORE. Packed rows (narrower than a beat) leave
    the result buffer one a cycle, so a beat of ``p`` of them takes ``p`` cycles."""
    s, beat, rows = cfg.store_bytes[f["mode"]], cfg.beat, cfg.rows
    if s >= beat:
        return _bursts(f["addr"], f["pitch"], rows, s // beat, beat), 1, rows * s // beat
    beats = rows * s // beat
    return _bursts(f["addr"], beats * beat, 1, beats, beat), beat // s, beats


def _serial_store_end(first, data_ready, cfg, f, t_):
    """Last write response of an INT8 STORE through bit-serial requantisers: row ``r``'s
    bytes reach the writer at ``data_ready + r * period``; a beat leaves once its bytes are
    in (packed beats wait for their last row), bursts as in :func:`_write_time`. With one
    requantiser shared by the columns (``cfg.shared_requant``) a row takes
    ``cols * latency`` cycles (the next row's first column goes in the cycle the last
    column's result comes out, so the unit never waits between rows: measured on the RTL,
    where ``hw/store_unit.py`` says ``cols * latency + 1``), the first one
    ``(cols - 1) * latency`` more than with a requantiser per column."""
    latency = SerialRequantizer.latency
    period = latency + 1
    if cfg.shared_requant:
        period = cfg.cols * latency
        data_ready += (cfg.cols - 1) * latency
    s, beat, rows = cfg.store_bytes[1], cfg.beat, cfg.rows
    if s >= beat:
        ready = [data_ready + r * period + b for r in range(rows) for b in range(s // beat)]
    else:
        per_beat = beat // s
        # the packer (WordsToBeats) registers a beat: it leaves a cycle after its last row
        ready = [data_ready + ((b + 1) * per_beat - 1) * period + 1
                 for b in range(rows * s // beat)]
    bursts, _, _ = _store_shape(cfg, f)
    aw, w, responses, beat_index = first + t_.dma_setup, 0, [], 0
    for i, n in enumerate(bursts):
        aw = max(aw + 1, responses[i - _OUTSTANDING] if i >= _OUTSTANDING else 0)
        for _ in range(n):
            w = max(w + 1, aw + 1, ready[beat_index])
            beat_index += 1
        responses.append(w + 1 + t_.write_latency)
    return max(responses)


def predict(descriptors, config, timing=AXIRAM):
    """Predict the run of ``descriptors`` (32-byte descriptors, or ``(Opcode, fields)``
    pairs from :func:`hw.isa.decode`) on ``config`` (:class:`~sw.config.HardwareConfig`).

    Returns a :class:`Prediction` (cycles from start to done, and where they went).
    """
    cfg = _Config(config)
    t_ = timing
    prog = [decode(d) if isinstance(d, (bytes, bytearray)) else d for d in descriptors]
    n = len(prog)
    if n == 0:
        return Prediction(cycles=0)
    fetch_bursts = _bursts(0, DESCRIPTOR_BYTES, 1, DESCRIPTOR_BYTES // cfg.beat, cfg.beat) \
        if DESCRIPTOR_BYTES >= cfg.beat else [1]

    INF = math.inf
    arrival = [INF] * n          # when descriptor i may be dispatched
    # fetch state
    next_fetch = 0
    in_flight = 0
    # reader
    reader_free = 0
    # dispatch
    head = 0
    last_pop = -INF
    units = ("load", "compute", "store")
    queue = {u: [] for u in units}          # (ready time, index)
    qhead = {u: 0 for u in units}
    taken_at = {u: -INF for u in units}     # when the unit last took a command
    free_at = {u: 0 for u in units}         # when the unit may take its next command
    running = {u: None for u in units}      # (end time, fields) or pending load
    load_req = None                         # (request time, fields) waiting for the reader
    tokens = {k: [] for k in ("l2c", "c2l", "c2s", "s2c")}
    taken = {k: 0 for k in tokens}
    chain = {"load": (None, "c2l", None, "l2c"), "compute": ("l2c", "s2c", "c2l", "c2s"),
             "store": ("c2s", None, "s2c", None)}
    unit_of = {Opcode.LOAD: "load", Opcode.COMPUTE: "compute", Opcode.STORE: "store"}
    stats = dict(compute=0, fill=0, read=0, write=0, fetch=0, load_busy=0, store_busy=0,
                 macs=0)
    done = None
    t = 0
    guard = 0
    while done is None:
        guard += 1
        if guard > 50 * n + 1000:
            raise RuntimeError("cycle model made no progress (a deadlocked program?)")
        moved = True
        while moved:
            moved = False
            # units finishing: give tokens
            for u in units:
                r = running[u]
                if r is not None and r[0] is not None and r[0] <= t:
                    end, f = r
                    _, _, give_prev, give_next = chain[u]
                    if give_prev and f.get("signal_prev"):
                        tokens[give_prev].append(end + t_.token)
                    if give_next and f.get("signal_next"):
                        tokens[give_next].append(end + t_.token)
                    running[u] = None
                    free_at[u] = end + 1
                    moved = True
            # reader grant: fetch first. The fetch sees the queue's count of descriptors
            # through a register: one dispatched in this cycle still counts.
            if reader_free <= t:
                seen = in_flight + (last_pop == t)
                if t >= t_.start and next_fetch < n and \
                        seen + _FETCH_BATCH <= _QUEUE_DEPTH:
                    batch = min(_FETCH_BATCH, n - next_fetch)
                    ends = _read_time(t, fetch_bursts * batch, 1, t_.read_latency,
                                       t_.dma_setup)
                    per = len(fetch_bursts)
                    for j in range(batch):
                        # each descriptor is checked once its last beat is in, and
                        # dispatched a cycle before its entry in its unit's queue
                        arrival[next_fetch + j] = (ends[(j + 1) * per - 1] + t_.dispatch - 1
                                                   + cfg.split_check)
                    end = ends[-1]
                    stats["fetch"] += end - t
                    next_fetch += batch
                    in_flight += batch
                    reader_free = end + 2 + t_.fetch_gap
                    moved = True
                elif load_req is not None and load_req[0] <= t:
                    _, f = load_req
                    bursts, rate, beats, tail = _load_shape(cfg, f)
                    # the last word is in when the final beat's ``tail`` words have left
                    # (``_read_time`` counts ``rate`` cycles for every beat)
                    end = _read_time(t, bursts, rate, t_.read_latency,
                                     t_.dma_setup)[-1] - (rate - tail)
                    stats["read"] += beats
                    # the reader takes its next command the cycle after its last beat, which
                    # (AxiRam answering an address two cycles later) is ``end + 1`` at one
                    # word a beat; the final beat's words leave after it
                    reader_free = end + 3 - tail
                    # words of several beats, or several words a beat: one more register
                    # stage (BeatsToWords gathers or splits beats into registered words)
                    target = Target(f["target"])
                    if cfg.param_lanes and target == Target.PARAMS:
                        wide = cfg.beat > 4         # 32-bit lanes: split unless a beat
                    else:
                        wide = cfg.row_bytes[target] != cfg.beat
                    finish = end + t_.load_end + (t_.wide_word if wide else 0) + \
                        (t_.params if target == Target.PARAMS else 0)
                    running["load"] = (finish, f)
                    stats["load_busy"] += finish - f["_start"]
                    load_req = None
                    moved = True
            # dispatch
            if head < n and arrival[head] <= t and last_pop + cfg.dispatch_gap <= t:
                op, f = prog[head]
                if op in unit_of:
                    u = unit_of[op]
                    # a command the unit takes leaves its queue's room a cycle later
                    held = len(queue[u]) - qhead[u] + (taken_at[u] == t)
                    if held < _QUEUE_DEPTH:
                        # in the queue at t + 1, the unit can take it at t + 2
                        queue[u].append((t + 2, f, op))
                        head += 1
                        in_flight -= 1
                        last_pop = t
                        moved = True
                elif op in (Opcode.FENCE, Opcode.END):
                    idle = all(running[u] is None and qhead[u] == len(queue[u])
                               and free_at[u] <= t for u in units)
                    if idle:
                        head += 1
                        in_flight -= 1
                        last_pop = t
                        moved = True
                        if op == Opcode.END:
                            done = t + t_.end
                else:
                    raise ValueError(f"descriptor {head}: unknown opcode {op!r}")
            # units starting
            for u in units:
                if running[u] is not None or free_at[u] > t or qhead[u] == len(queue[u]):
                    continue
                ready, f, op = queue[u][qhead[u]]
                if ready > t:
                    continue
                wp, wn, _, _ = chain[u]
                need = [k for k, flag in ((wp, "wait_prev"), (wn, "wait_next"))
                        if k and f.get(flag)]
                if any(len(tokens[k]) <= taken[k] or tokens[k][taken[k]] > t for k in need):
                    continue
                for k in need:
                    taken[k] += 1
                qhead[u] += 1
                taken_at[u] = t
                moved = True
                if u == "load":
                    f = {**f, "_start": t}
                    load_req = (t + t_.load_issue, f)
                    running[u] = (None, f)
                elif u == "compute":
                    k = f["k"]
                    # fp16 beats one every beat_cycles, their sums fp16_delay later than
                    # int8 ones; a pipelined result buffer lands every tile result_delay
                    # later too
                    fp16 = cfg.fp16_only or f.get("fp16")
                    span = (cfg.beat_cycles * (k - 1) + 1 + cfg.fp16_delay) if fp16 else k
                    drain = (2 * cfg.rows + cfg.cols + cfg.product_stages - 2 + t_.compute
                             - 2 * cfg.direct_operands + cfg.clear_after_last
                             - cfg.broadcast_operands * (cfg.rows + cfg.cols - 2)
                             + cfg.result_delay)
                    if cfg.array_clock:
                        # array-side cycles at the array's clock, plus the crossings
                        array_cycles = span + drain + t_.crossing_array
                        running[u] = (t + t_.crossing + math.ceil(array_cycles /
                                                                   t_.array_ratio), f)
                    else:
                        running[u] = (t + span + drain, f)
                    stats["compute"] += k                 # cycles a beat is accepted
                    stats["fill"] += drain + span - k
                    stats["macs"] += k * cfg.rows * cfg.cols
                else:
                    bursts, rate, beats = _store_shape(cfg, f)
                    first = t + t_.store_start + (t_.store_params if f["mode"] == 1 else 0)
                    if cfg.param_lanes and f["mode"] == 1:
                        # the first read of the parameters goes through every column's words
                        # (cols times as many), and its request and done flags are registers
                        # (StoreUnit._column_params): 2 more cycles, measured
                        first += _PARAM_WORDS * (cfg.cols - 1) + 2
                    if cfg.serial_requant and f["mode"] == 1:
                        end = _serial_store_end(first, first + t_.store_data + t_.serial_row
                                                - cfg.direct_store * t_.direct_int8,
                                                cfg, f, t_) + t_.store_end
                    else:
                        # serial builds' post-processing pipeline is one stage, not the
                        # parallel requantiser's depth
                        data = t_.store_data - (cfg.serial_requant
                                                and Requantizer.latency - 1)
                        # a packed beat is complete with its last row, rate - 1 rows later,
                        # and leaves the packer (WordsToBeats registers it) a cycle after
                        end = _write_time(first, first + data + rate - 1 + (rate > 1), bursts,
                                          rate, t_.write_latency, t_.dma_setup) + t_.store_end \
                            - cfg.direct_store * t_.direct_raw
                    running[u] = (end, f)
                    stats["write"] += beats
                    stats["store_busy"] += end - t
        if done is not None:
            break
        # next event (``last_pop + 1``: the fetch sees the room a dispatch left a cycle
        # later, an event of its own when nothing else happens then)
        cands = [reader_free, t_.start, last_pop + 1, last_pop + cfg.dispatch_gap]
        if head < n:
            cands.append(arrival[head])
        if load_req is not None:
            cands.append(load_req[0])
        for u in units:
            r = running[u]
            if r is not None and r[0] is not None:
                cands.append(r[0])
            cands.append(free_at[u])
            cands.append(taken_at[u] + 1)
            if qhead[u] < len(queue[u]):
                cands.append(queue[u][qhead[u]][0])
        for k, lst in tokens.items():
            if taken[k] < len(lst):
                cands.append(lst[taken[k]])
        future = [c for c in cands if c > t and c != INF]
        if not future:
            raise RuntimeError("cycle model deadlocked: the program waits for a token "
                               "that is never given")
        t = min(future)
    return Prediction(cycles=int(done), compute_cycles=stats["compute"],
                      fill_drain_cycles=stats["fill"], dma_read_cycles=stats["read"],
                      dma_write_cycles=stats["write"], fetch_cycles=int(stats["fetch"]),
                      load_busy_cycles=int(stats["load_busy"]),
                      store_busy_cycles=int(stats["store_busy"]), macs=stats["macs"],
                      descriptors=n)


def golden_model(transport):
    """The ``cycle_model`` hook of :class:`~sw.backends.golden.GoldenTransport`: its
    descriptors -> predicted PERF_TOTAL_CYCLES for that transport's configuration."""
    from types import SimpleNamespace
    cfg = SimpleNamespace(rows=transport.rows, cols=transport.cols, beat_bytes=transport.beat,
                          lane_bytes=transport.lane,
                          serial_requant=transport.requantizer in SERIAL_REQUANTIZERS,
                          shared_requant=transport.requantizer == "shared",
                          int8="int8" in transport.datapaths,
                          fp16="fp16" in transport.datapaths,
                          fp16_beat_cycles=transport.fp32_adder_stages,
                          array_clock=transport.array_clock_ratio is not None,
                          product_stages=getattr(transport, "product_stages", 1),
                          check_steps=getattr(transport, "check_steps", 0),
                          direct_operands=getattr(transport, "direct_operands", False),
                          clear_after_last=getattr(transport, "clear_after_last", False),
                          broadcast_operands=getattr(transport, "broadcast_operands", False))
    timing = replace(AXIRAM, array_ratio=transport.array_clock_ratio or 1.0)
    return lambda descriptors: predict(descriptors, cfg, timing).cycles


# --- projections -------------------------------------------------------------------------

@dataclass(frozen=True)
class _Spec:
    """What :func:`sw.compiler._emit_gemm` reads of a GEMM (no data)."""
    m: int
    k: int
    n: int
    out: str = "int8"
    dtype: str = "int8"
    relu: bool = False
    bias: object = None

    @property
    def store_mode(self):
        return {"int32": 0, "int8": 1, "float32": 0, "float16": 2}[self.out]

    @property
    def out_bytes(self):
        return {"int32": 4, "int8": 1, "float32": 4, "float16": 2}[self.out]


def gemm_program(m, k, n, config, *, out="int8", outer=None):
    """The descriptors ``sw.compiler`` emits for an ``m x k x n`` GEMM on ``config``, without
    placing any data (addresses laid out from 0 as the compiler would). ``outer`` limits the
    outer loop (row-blocks when A is reused, column-blocks when B is) for extrapolation.
    Returns ``(descriptors, outer blocks of the full GEMM)``."""
    from hw.isa import encode

    from .compiler import _align, _emit_gemm, _Emitter, _Placed
    rows, cols, beat, lane = config.rows, config.cols, config.beat_bytes, config.lane_bytes
    spec = _Spec(m, k, n, out)
    mp, np_ = _align(m, rows), _align(n, cols)
    ti, tj = mp // rows, np_ // cols
    reuse_a = tj >= ti
    full_outer = ti if reuse_a else tj
    if outer is not None:
        if reuse_a:
            ti = min(ti, outer)
        else:
            tj = min(tj, outer)
    at = [0]

    def placed(kk, columns, lanes, width_bytes):
        width = lanes * width_bytes
        base = _align(at[0], beat)
        if width >= beat:
            at[0] = base + kk * columns * width_bytes
            return _Placed(base, columns * width_bytes, width)
        block = _align(kk * width, beat)
        at[0] = base + block * (columns // lanes)
        return _Placed(base, width, width, block)

    a = placed(k, mp, rows, lane)
    b = placed(k, np_, cols, lane)
    p = placed(3, np_, cols, 4) if out == "int8" else None
    row_bytes = cols * spec.out_bytes
    if row_bytes >= beat:
        c = _Placed(_align(at[0], beat), _align(np_ * spec.out_bytes, beat), row_bytes)
    else:
        c = _Placed(_align(at[0], beat), row_bytes, row_bytes, _align(rows * row_bytes, beat))
    emit = _Emitter(config)
    _emit_gemm(emit, spec, config, ti, tj, a, b, p, c)
    from hw.isa import Opcode as _Op
    emit.descriptors.append(encode(_Op.END))
    return emit.descriptors, full_outer


def predict_gemm(m, k, n, config, *, out="int8", timing=AXIRAM, exact_limit=4):
    """Predicted cycles of one ``m x k x n`` int8 GEMM compiled by ``sw.compiler``.

    Up to ``exact_limit`` outer blocks the whole program is simulated; beyond, the program
    is periodic in its outer loop, so blocks 2 to 4 give the per-block cost and the total
    is extrapolated linearly. Two blocks, not one: with double buffering consecutive blocks
    alternate slots and cost different amounts (a 128-bit dual build, 33x9x17 requantised:
    323 then 301 cycles; extrapolating from one block was 3.2 % high, from two 1.2 %)."""
    if not isinstance(exact_limit, int) or exact_limit < 4:
        raise ValueError(f"exact_limit must be an integer of at least 4 (the blocks "
                         f"extrapolated from), not {exact_limit!r}")
    descriptors, outer = gemm_program(m, k, n, config, out=out, outer=exact_limit)
    if outer <= exact_limit:
        return predict(descriptors, config, timing)
    two = predict(gemm_program(m, k, n, config, out=out, outer=2)[0], config, timing)
    four = predict(gemm_program(m, k, n, config, out=out, outer=4)[0], config, timing)
    scale = (outer - 2) / 2

    def ext(name):
        x, y = getattr(two, name), getattr(four, name)
        return x + scale * (y - x)
    return Prediction(**{name: int(ext(name)) for name in (
        "cycles", "compute_cycles", "fill_drain_cycles", "dma_read_cycles",
        "dma_write_cycles", "fetch_cycles", "load_busy_cycles", "store_busy_cycles", "macs",
        "descriptors")}, extra={"extrapolated_from_blocks": 4, "outer_blocks": outer})


def layer_gemms(preset="gpt2-small", seq=512):
    """The int8 GEMMs of one transformer layer of ``preset`` (a name of
    :data:`sw.presets.PRESETS` or a Preset) at sequence ``seq``: a list of
    ``(name, M, K, N, count, output)``. Q, K and V are one fused GEMM; QK^T and AV run per
    head (``count`` = heads); scores leave as int32 (host softmax), the rest requantised int8;
    SwiGLU's gate and up are two GEMMs of the same shape."""
    from .presets import preset as get_preset
    p = get_preset(preset)
    d, hd, heads = p.d_model, p.head_dim, p.n_heads
    gemms = [("QKV", seq, d, 3 * d, 1, "int8"),
             ("QK^T", seq, hd, seq, heads, "int32"),
             ("AV", seq, seq, hd, heads, "int8"),
             ("out proj", seq, d, d, 1, "int8")]
    if p.mlp == "swiglu":
        gemms.append(("MLP gate+up", seq, d, p.d_mlp, 2, "int8"))
    else:
        gemms.append(("MLP up", seq, d, p.d_mlp, 1, "int8"))
    gemms.append(("MLP down", seq, p.d_mlp, d, 1, "int8"))
    return gemms


#: the layers the brief asks for: GPT-2 small and a 7B-class (Llama-style) layer
LAYERS = ("gpt2-small", "llama-7b-style")


@dataclass
class Projection:
    """One projected GEMM (or layer total): cycles, seconds at ``mhz``, GOPS (2 ops a MAC),
    utilisation = useful MACs / (rows * cols * cycles)."""
    layer: str
    gemm: str
    array: str
    bus_bits: int
    mhz: float
    macs: int
    cycles: int

    @property
    def seconds(self):
        return self.cycles / (self.mhz * 1e6)

    @property
    def gops(self):
        return 2 * self.macs / self.seconds / 1e9 if self.cycles else 0.0


class Projections(list):
    """A list of :class:`Projection`; ``str()`` is :func:`projection_table`."""

    def __str__(self):
        return projection_table(self)


def project(preset="gpt2-small", *, seq=512, array=None, arrays=((16, 16), (32, 32), (128, 128)),
            bus=None, bus_bits=(128,), mhz=(200,), depth=1024, timing=AXIRAM):
    """Predict every int8 GEMM of a layer of ``preset`` (:func:`layer_gemms`) at sequence
    ``seq`` for each array size (``array=(rows, cols)`` or several ``arrays``), AXI bus width
    in bits (``bus`` or several ``bus_bits``) and clock in MHz (one value or several).
    Returns :class:`Projections`: one row per GEMM plus a ``total`` row per configuration;
    ``print()`` it for the table.

    Assumptions: the ``sw.compiler`` program (double buffering, 2 slots, operand ``depth``
    words per slot), QK^T and AV per head as separate GEMMs run back to back (count times
    one head's cycles; the few cycles consecutive GEMMs could overlap are ignored), host
    memory with AxiRam's latencies unless ``timing`` says otherwise, bus and array on one
    clock. Utilisation = useful MACs / (rows * cols * cycles)."""
    from .config import HardwareConfig
    arrays = [array] if array is not None else list(arrays)
    bus_bits = [bus] if bus is not None else list(bus_bits)
    mhz = [mhz] if isinstance(mhz, (int, float)) else list(mhz)
    gemms = layer_gemms(preset, seq)
    name = preset if isinstance(preset, str) else preset.name
    out = Projections()
    for rows, cols in arrays:
        for bits in bus_bits:
            config = HardwareConfig(rows=rows, cols=cols, int8=True, fp16=False,
                                    beat_bytes=bits // 8, addr_bits=64, depth=depth, slots=2)
            preds = [(g, predict_gemm(m, k, n, config, out=o, timing=timing), m * k * n * cnt,
                      cnt) for g, m, k, n, cnt, o in gemms]
            for f in mhz:
                total_c = total_m = 0
                for g, p, macs, cnt in preds:
                    out.append(Projection(name, g, f"{rows}x{cols}", bits, f, macs,
                                          p.cycles * cnt))
                    total_c += p.cycles * cnt
                    total_m += macs
                out.append(Projection(name, "total", f"{rows}x{cols}", bits, f, total_m,
                                      total_c))
    return out


def projection_table(projections):
    """A text table of :func:`project`'s rows."""
    head = (f"{'layer':<15} {'gemm':<12} {'array':>7} {'bus':>4} {'MHz':>5} {'GMAC':>8} "
            f"{'cycles':>13} {'time ms':>9} {'GOPS':>8} {'util':>6}")
    lines = [head, "-" * len(head)]
    for p in projections:
        r, c = map(int, p.array.split("x"))
        util = p.macs / (r * c * p.cycles) if p.cycles else 0.0
        lines.append(f"{p.layer:<15} {p.gemm:<12} {p.array:>7} {p.bus_bits:>4} {p.mhz:>5g} "
                     f"{p.macs / 1e9:>8.3f} {p.cycles:>13,} {1e3 * p.seconds:>9.3f} "
                     f"{p.gops:>8.1f} {100 * util:>5.1f}%")
    return "\n".join(lines)
