"""Run bookkeeping of a command-driven accelerator top (docs/SPEC.md "Shell
conventions", "GEMM core" registers): running / done, the first error of a
run with its code, and the run's performance counters."""

from types import SimpleNamespace

from amaranth.hdl import ClockDomain, ClockSignal, DomainRenamer, Mux, ResetSignal, Signal

from .params import check_int

__all__ = ["run_status", "engine_domain", "fetch_command"]


def run_status(m, *, start, overflow, overflow_code, counters, kept=(), counter_bits=32):
    """Add a top's run state to module ``m`` and return its signals.

    ``start`` (a pulse) begins a run when none is running: done, error, the
    code and every counter but those named in ``kept`` are cleared. While
    running, ``cycles`` (if among ``counters``) counts every cycle and
    ``stall`` every cycle the caller raises ``stalled``. The caller raises
    ``raise_error`` with ``new_code`` for a bad command; a command queue
    ``overflow`` is an error even between runs and reports ``overflow_code``.
    The first error of a run keeps its code. The caller ends the run by
    clearing ``running`` and setting ``done`` (both ``sync``).

    Returns a namespace: ``running``, ``done``, ``error``, ``code`` (4 bits),
    ``raise_error``, ``new_code``, ``stalled``, ``starting`` (the cycle a run
    begins) and ``ctr`` (counter name -> ``counter_bits``-bit register).
    """
    counter_bits = check_int("counter_bits", counter_bits, maximum=64)
    unknown = set(kept) - set(counters)
    if unknown:
        raise ValueError(f"kept: {sorted(unknown)} are not counters")
    s = SimpleNamespace(
        running=Signal(name="running"), done=Signal(name="done_r"), error=Signal(name="error_r"),
        code=Signal(4, name="error_code_r"), raise_error=Signal(name="raise_error"),
        new_code=Signal(4, name="new_code"), stalled=Signal(name="stalled"), starting=Signal(name="starting"),
        ctr={name: Signal(counter_bits, name=f"{name}_r") for name in counters})
    m.d.comb += s.starting.eq(start & ~s.running)
    with m.If(s.starting):
        m.d.sync += [s.running.eq(1), s.done.eq(0), s.error.eq(0), s.code.eq(0)]
        m.d.sync += [c.eq(0) for name, c in s.ctr.items() if name not in kept]
    with m.If(s.running):
        if "cycles" in s.ctr:
            m.d.sync += s.ctr["cycles"].eq(s.ctr["cycles"] + 1)
        if "stall" in s.ctr:
            with m.If(s.stalled):
                m.d.sync += s.ctr["stall"].eq(s.ctr["stall"] + 1)
    with m.If(s.raise_error | overflow):
        m.d.sync += s.error.eq(1)
        with m.If(~s.error):
            m.d.sync += s.code.eq(Mux(overflow, overflow_code, s.new_code))
    return s


def engine_domain(m, regs, name="core"):
    """Give a top's engine its own reset domain; return ``(renamer, start)``.

    The domain ``name`` is reset by the system reset or by a CONTROL write
    with ``soft_reset``, so a soft reset leaves the register block alone and
    the write that asked for it still gets its response (docs/SPEC.md "Host
    interface"). ``renamer`` moves the engine into the domain; ``start`` is
    CONTROL.start written without ``soft_reset``. ``regs`` is the top's
    ``AXI4LiteRegisters`` (its map has the standard ``control`` register)."""
    soft = Signal(name="soft_reset")
    start = Signal(name="start_wr")
    m.d.comb += [soft.eq(regs.control_wstb & regs.control.soft_reset),
                 start.eq(regs.control_wstb & regs.control.start & ~regs.control.soft_reset)]
    cd = ClockDomain(name, local=True)
    m.domains += cd
    m.d.comb += [cd.clk.eq(ClockSignal("sync")), cd.rst.eq(ResetSignal("sync") | soft)]
    return DomainRenamer(name), start


def fetch_command(m, rs, queue, cmd, *, hold=None, next_state="DECODE"):
    """The body of a top controller's fetch state: while running, take the
    next queued command into ``cmd`` and go to ``next_state``; with the queue
    empty, end the run (``rs`` from :func:`run_status`), unless ``hold`` is
    high (work still under way beside the queue, such as ORBIS's match
    engine). Returns a signal that is high in the cycles ``hold`` kept the
    run open, for the caller to count."""
    waiting = Signal(name="fetch_waiting")
    with m.If(rs.running):
        with m.If(queue.o.valid):
            m.d.comb += queue.o.ready.eq(1)
            m.d.sync += cmd.eq(queue.o.payload)
            m.next = next_state
        if hold is not None:
            with m.Elif(hold):
                m.d.comb += waiting.eq(1)
        with m.Else():
            m.d.sync += [rs.running.eq(0), rs.done.eq(1)]
    return waiting
