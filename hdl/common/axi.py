"""AXI4-Lite control and AXI4-Stream data ports of the accelerator tops
(``docs/SPEC.md``, "Accelerator tops" / "Host interface").

Signatures are written from the initiator's side, like ``amaranth.lib.stream``:
a slave port is ``In(axi_lite_signature(...))``, a stream sink is
``In(axis_signature(...))``. Amaranth flattens a member ``s_axil`` to
``s_axil__awaddr`` and so on, which cocotbext-axi finds with
``AxiLiteBus.from_prefix(dut, "s_axil", bus_separator="__")`` (and
``AxiStreamBus`` likewise).

* :class:`AXI4LiteRegisters`: the AXI4-Lite slave of a :class:`~hdl.common.regmap.RegisterMap`.
* :class:`AXIStreamToStream` / :class:`StreamToAXIStream`: AXI4-Stream <->
  ``amaranth.lib.stream`` with payload ``{data, last[, user]}``.
* :class:`CommandQueue`: assembles the words pushed to a write-only command
  register into whole commands of a :class:`~hdl.common.regmap.CommandFormat`.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, ResetInserter, Signal, Value, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for

from .regmap import CommandFormat, RegisterMap
from .params import check_int
from .stream import SkidBuffer

__all__ = ["OKAY", "SLVERR", "axi_lite_signature", "axis_signature", "axis_layout", "accelerator_members",
           "AXI4LiteRegisters", "AXIStreamToStream", "StreamToAXIStream", "CommandQueue"]

OKAY = 0b00
SLVERR = 0b10

# Reserved: the component's own ports, so that no register may shadow them.
_RESERVED = {"s_axil"}


def axi_lite_signature(addr_width: int, data_width: int = 32) -> wiring.Signature:
    """AXI4-Lite from the master's side (a slave takes ``In(...)`` of it).

    Members ``awaddr awvalid awready awprot wdata wstrb wvalid wready bresp
    bvalid bready araddr arvalid arready arprot rdata rresp rvalid rready``
    (the names cocotbext-axi looks for).
    """
    check_int("addr_width", addr_width, maximum=64)
    if data_width not in (32, 64):
        raise ValueError(f"data_width must be 32 or 64 (AXI4-Lite), not {data_width!r}")
    return wiring.Signature({
        "awaddr": Out(addr_width), "awprot": Out(3), "awvalid": Out(1), "awready": In(1),
        "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wvalid": Out(1), "wready": In(1),
        "bresp": In(2), "bvalid": In(1), "bready": Out(1),
        "araddr": Out(addr_width), "arprot": Out(3), "arvalid": Out(1), "arready": In(1),
        "rdata": In(data_width), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
    })


def axis_signature(data_bytes: int, last: bool = True, user: int = 0) -> wiring.Signature:
    """AXI4-Stream from the transmitter's side: ``tdata`` (``8 * data_bytes``
    bits), ``tvalid``, ``tready``, and ``tlast`` / ``tuser`` if asked for."""
    check_int("data_bytes", data_bytes)
    check_int("user", user, minimum=0)
    members = {"tdata": Out(8 * data_bytes), "tvalid": Out(1), "tready": In(1)}
    if last:
        members["tlast"] = Out(1)
    if user:
        members["tuser"] = Out(user)
    return wiring.Signature(members)


def accelerator_members(regmap, stream_bytes: int) -> dict:
    """The host interface of an accelerator top (docs/SPEC.md "Shell
    conventions"): ``s_axil`` (its register map's AXI4-Lite slave), ``s_axis``
    and ``m_axis`` (``stream_bytes`` each) and a level ``irq``."""
    return {
        "s_axil": In(axi_lite_signature(regmap.addr_width)),
        "s_axis": In(axis_signature(stream_bytes)),
        "m_axis": Out(axis_signature(stream_bytes)),
        "irq": Out(1),
    }


def axis_layout(data_bytes: int, last: bool = True, user: int = 0) -> data.StructLayout:
    """The ``amaranth.lib.stream`` payload of an AXI4-Stream: ``data`` (LSBs),
    then ``last`` and ``user`` where the stream has them."""
    check_int("data_bytes", data_bytes)
    fields = {"data": unsigned(8 * data_bytes)}
    if last:
        fields["last"] = unsigned(1)
    if user:
        fields["user"] = unsigned(user)
    return data.StructLayout(fields)


def _reg_init(reg):
    if not reg.fields:
        return reg.reset
    return {f.name: f.reset for f in reg.fields}


class AXI4LiteRegisters(wiring.Component):
    """AXI4-Lite slave serving a :class:`~hdl.common.regmap.RegisterMap`.

    Parameters
    ----------
    regmap : RegisterMap
        The registers; their access types choose the user-side ports below.

    Members
    -------
    s_axil : ``In(axi_lite_signature(regmap.addr_width))``
        The bus. AW and W are accepted in either order (each has a one-entry
        holding register); B and R are held until taken.
    <reg> : per register, named after it in lower case, shaped by
        ``regmap.layout(reg)`` (a field view, or ``unsigned(width)``):

        ========  ==================================================================
        ``rw``    ``<reg>``: Out, the stored value (reset from the map).
                  A write that must trigger something goes to a ``wo`` register.
        ``ro``    ``<reg>``: In, the value a read returns (sampled in the AR
                  handshake cycle).
        ``wo``    ``<reg>``: Out, the data of the last write (``wstrb``-masked:
                  unwritten bytes are 0); ``<reg>_wstb``: Out, one-cycle pulse
                  with it. Reads return 0.
        ``w1c``   ``<reg>``: Out, the sticky bits; ``<reg>_set``: In, bits set
                  in every cycle they are high (a set wins over a clear in the
                  same cycle, so no event is lost); a write of 1 clears.
        ========  ==================================================================

    Responses: OKAY, or SLVERR for an address no register occupies (reads
    return 0, writes change nothing) and for a write to an ``ro`` register
    (nothing changes). An address names the word holding it; a write changes
    only the bytes ``wstrb`` selects at or above its address within the word
    (AXI's rule for an unaligned start address), and only bits the register
    has; a read returns the whole word with the bytes below its address 0.

    Timing: once both AW and W have been accepted (the later handshake in
    cycle t), the new value, the ``_wstb`` pulse and ``bvalid`` appear in
    cycle t + 2; an AR handshake in cycle t gives ``rvalid`` in cycle t + 1.
    A write takes one transaction per 2 cycles, a read likewise, and reads
    and writes proceed independently. A synchronous ``rst`` returns every
    register to its reset value and drops every response; a top's soft reset
    should leave this block alone so that the write which asked for it still
    gets its B response.
    """

    def __init__(self, regmap: RegisterMap):
        if not isinstance(regmap, RegisterMap):
            raise TypeError(f"regmap must be a RegisterMap, not {regmap!r}")
        self._regmap = regmap
        members = {"s_axil": In(axi_lite_signature(regmap.addr_width))}
        for r in regmap:
            name = r.name.lower()
            if name in _RESERVED or name.startswith("_"):
                raise ValueError(f"regmap: register name {r.name!r} is reserved")
            shape = regmap.layout(r.name)
            if r.access == "rw":
                members[name] = Out(shape, init=_reg_init(r))
            elif r.access == "ro":
                members[name] = In(shape)
            elif r.access == "wo":
                members[name] = Out(shape)
                members[f"{name}_wstb"] = Out(1)
            else:
                members[name] = Out(shape, init=_reg_init(r))
                members[f"{name}_set"] = In(shape)
        names = list(members)
        for n in names:
            if names.count(n) > 1:
                raise ValueError(f"regmap: port name {n!r} is used twice")
        super().__init__(members)
        # The held write address, made here so that the formal harness
        # (hdl/common/axi_formal.py) can relate it to its own record.
        self._aw_word = Signal(regmap.addr_width - 2, name="aw_word")
        self._aw_lane = Signal(2, name="aw_lane")

    @property
    def regmap(self) -> RegisterMap:
        return self._regmap

    def port(self, name: str):
        """The user-side port of register ``name`` (its value or input)."""
        return getattr(self, self._regmap[name].name.lower())

    def elaborate(self, platform):
        m = Module()
        bus = self.s_axil
        aw = self._regmap.addr_width

        # Write path: AW and W each land in a holding register, in either order.
        aw_full = Signal()
        w_full = Signal()
        aw_word = self._aw_word
        aw_lane = self._aw_lane
        w_data = Signal(32)
        w_strb = Signal(4)
        bvalid = Signal()
        bresp = Signal(2)
        m.d.comb += [
            bus.awready.eq(~aw_full),
            bus.wready.eq(~w_full),
            bus.bvalid.eq(bvalid),
            bus.bresp.eq(bresp),
        ]
        with m.If(bus.awvalid & ~aw_full):
            m.d.sync += [aw_full.eq(1), aw_word.eq(bus.awaddr[2:aw]), aw_lane.eq(bus.awaddr[:2])]
        with m.If(bus.wvalid & ~w_full):
            m.d.sync += [w_full.eq(1), w_data.eq(bus.wdata), w_strb.eq(bus.wstrb)]
        commit = Signal()
        m.d.comb += commit.eq(aw_full & w_full & (~bvalid | bus.bready))
        with m.If(bvalid & bus.bready):
            m.d.sync += bvalid.eq(0)
        byte_mask = Signal(32)
        lanes = Signal(4)
        m.d.comb += [lanes.eq(w_strb & (Const(0b1111, 4) << aw_lane)[:4]),
                     byte_mask.eq(Cat(*(b.replicate(8) for b in lanes)))]

        # Strobes are pulses; w1c inputs set bits every cycle.
        for r in self._regmap:
            port = getattr(self, r.name.lower())
            if r.access == "wo":
                m.d.sync += getattr(self, f"{r.name.lower()}_wstb").eq(0)
            if r.access == "w1c":
                m.d.sync += port.eq(Value.cast(port) | Value.cast(getattr(self, f"{r.name.lower()}_set")))

        with m.If(commit):
            m.d.sync += [aw_full.eq(0), w_full.eq(0), bvalid.eq(1), bresp.eq(SLVERR)]
            with m.Switch(aw_word):
                for r in self._regmap:
                    name = r.name.lower()
                    with m.Case(r.offset >> 2):
                        port = getattr(self, name)
                        value = Value.cast(port)
                        mask = Const(r.mask, 32) & byte_mask
                        if r.access == "ro":
                            continue
                        m.d.sync += bresp.eq(OKAY)
                        if r.access == "rw":
                            m.d.sync += port.eq(((value & ~mask) | (w_data & mask))[:r.width])
                        elif r.access == "wo":
                            m.d.sync += [port.eq((w_data & mask)[:r.width]),
                                         getattr(self, f"{name}_wstb").eq(1)]
                        else:
                            set_bits = Value.cast(getattr(self, f"{name}_set"))
                            m.d.sync += port.eq(((value & ~(w_data & mask)) | set_bits)[:r.width])

        # Read path: the value is sampled in the AR handshake cycle.
        rvalid = Signal()
        rdata = Signal(32)
        rresp = Signal(2)
        m.d.comb += [
            bus.arready.eq(~rvalid),
            bus.rvalid.eq(rvalid),
            bus.rdata.eq(rdata),
            bus.rresp.eq(rresp),
        ]
        with m.If(rvalid & bus.rready):
            m.d.sync += rvalid.eq(0)
        with m.If(bus.arvalid & ~rvalid):
            m.d.sync += [rvalid.eq(1), rdata.eq(0), rresp.eq(SLVERR)]
            read_mask = Signal(32)
            m.d.comb += read_mask.eq(Cat(*(b.replicate(8) for b in (Const(0b1111, 4) << bus.araddr[:2])[:4])))
            with m.Switch(bus.araddr[2:aw]):
                for r in self._regmap:
                    with m.Case(r.offset >> 2):
                        m.d.sync += rresp.eq(OKAY)
                        if r.access != "wo":
                            m.d.sync += rdata.eq(Value.cast(getattr(self, r.name.lower())) & read_mask)
        return m


class _AXISAdapter(wiring.Component):
    def __init__(self, data_bytes, last, user, registered, members):
        check_int("data_bytes", data_bytes)
        if not isinstance(last, bool):
            raise TypeError(f"last must be a bool, not {last!r}")
        check_int("user", user, minimum=0)
        if not isinstance(registered, bool):
            raise TypeError(f"registered must be a bool, not {registered!r}")
        self._data_bytes = int(data_bytes)
        self._last = last
        self._user = int(user)
        self._registered = registered
        super().__init__(members(self._data_bytes, last, self._user))

    @property
    def data_bytes(self):
        return self._data_bytes

    @property
    def last(self):
        return self._last

    @property
    def user(self):
        return self._user

    @property
    def registered(self):
        return self._registered

    def _link(self, m, axis, to_stream: bool):
        """Join the AXI4-Stream port ``axis`` and the stream port, through a
        skid buffer when registered."""
        lay = axis_layout(self._data_bytes, self._last, self._user)
        valid = Signal()
        ready = Signal()
        src_payload = Signal(lay)
        if to_stream:
            m.d.comb += [src_payload.data.eq(axis.tdata), valid.eq(axis.tvalid)]
            if self._last:
                m.d.comb += src_payload.last.eq(axis.tlast)
            if self._user:
                m.d.comb += src_payload.user.eq(axis.tuser)
            out = self.o
            if self._registered:
                m.submodules.buffer = skid = SkidBuffer(lay)
                m.d.comb += [skid.i.valid.eq(valid), skid.i.payload.eq(src_payload), ready.eq(skid.i.ready)]
                wiring.connect(m, skid.o, wiring.flipped(out))
            else:
                m.d.comb += [out.valid.eq(valid), out.payload.eq(src_payload), ready.eq(out.ready)]
            m.d.comb += axis.tready.eq(ready)
        else:
            src = self.i
            if self._registered:
                m.submodules.buffer = skid = SkidBuffer(lay)
                wiring.connect(m, wiring.flipped(src), skid.i)
                src = skid.o
            m.d.comb += [axis.tvalid.eq(src.valid), axis.tdata.eq(src.payload.data), src.ready.eq(axis.tready)]
            if self._last:
                m.d.comb += axis.tlast.eq(src.payload.last)
            if self._user:
                m.d.comb += axis.tuser.eq(src.payload.user)


class AXIStreamToStream(_AXISAdapter):
    """AXI4-Stream sink port feeding an ``amaranth.lib.stream``.

    Parameters
    ----------
    data_bytes : int
        ``tdata`` width in bytes.
    last : bool
        Whether the stream has ``tlast`` (default True).
    user : int
        ``tuser`` width in bits (default 0: none).
    registered : bool
        Put a :class:`~hdl.common.stream.SkidBuffer` between the ports, which
        registers ``tready`` and the output (latency 1); default False, a
        wire-only rename (latency 0).

    Members
    -------
    s_axis : ``In(axis_signature(data_bytes, last, user))``
    o : ``Out(stream.Signature(axis_layout(data_bytes, last, user)))``

    II = 1 under back-pressure either way; no beat is lost or duplicated.
    """

    def __init__(self, data_bytes=4, *, last=True, user=0, registered=False):
        super().__init__(data_bytes, last, user, registered, lambda n, l, u: {
            "s_axis": In(axis_signature(n, l, u)),
            "o": Out(stream.Signature(axis_layout(n, l, u))),
        })

    def elaborate(self, platform):
        m = Module()
        self._link(m, self.s_axis, to_stream=True)
        return m


class StreamToAXIStream(_AXISAdapter):
    """An ``amaranth.lib.stream`` driving an AXI4-Stream master port.

    Parameters
    ----------
    data_bytes, last, user, registered
        As for :class:`AXIStreamToStream`.

    Members
    -------
    i : ``In(stream.Signature(axis_layout(data_bytes, last, user)))``
    m_axis : ``Out(axis_signature(data_bytes, last, user))``

    II = 1 under back-pressure; with ``registered`` the AXI outputs come from
    flops (latency 1).
    """

    def __init__(self, data_bytes=4, *, last=True, user=0, registered=False):
        super().__init__(data_bytes, last, user, registered, lambda n, l, u: {
            "i": In(stream.Signature(axis_layout(n, l, u))),
            "m_axis": Out(axis_signature(n, l, u)),
        })

    def elaborate(self, platform):
        m = Module()
        self._link(m, self.m_axis, to_stream=False)
        return m


class CommandQueue(wiring.Component):
    """Assembles 32-bit words pushed by the host into commands and queues them.

    The host writes a command's words to one write-only register, word 0
    first (``docs/SPEC.md``, "Host interface"); connect that register's
    ``_wstb`` and value to ``push`` and ``word``. The last word of a command
    moves the whole command into a FIFO of ``depth`` commands.

    Parameters
    ----------
    commands : CommandFormat
        The command layout; ``o.payload`` is a view of it.
    depth : int
        Commands the FIFO holds (default 4).

    Members
    -------
    push : ``In(1)``, word : ``In(32)``
        One word per cycle that ``push`` is high.
    o : ``Out(stream.Signature(commands.layout()))``
        Whole commands in push order, decoded into their fields (reserved
        bits are dropped).
    clear : ``In(1)``
        Drops the queue and a partly pushed command (a top's soft reset).
    level : ``Out(range(depth + 1))``
        Commands queued (the host reads it to know the free space).
    pending : ``Out(range(words))``
        Words of the command being pushed.
    overflow : ``Out(1)``
        Pulses when a command completes while the FIFO is full; that command
        is dropped (the top sets its error status).

    A command whose last word is pushed in cycle t is on ``o`` from cycle
    t + 2 (the FIFO's output register).
    """

    def __init__(self, commands: CommandFormat, *, depth=4):
        if not isinstance(commands, CommandFormat):
            raise TypeError(f"commands must be a CommandFormat, not {commands!r}")
        check_int("depth", depth)
        self._commands = commands
        self._depth = int(depth)
        super().__init__({
            "push": In(1),
            "word": In(32),
            "clear": In(1),
            "o": Out(stream.Signature(commands.layout())),
            "level": Out(range(self._depth + 1)),
            "pending": Out(range(max(commands.words, 2))),
            "overflow": Out(1),
        })

    @property
    def commands(self):
        return self._commands

    @property
    def depth(self):
        return self._depth

    def elaborate(self, platform):
        m = Module()
        fmt = self._commands
        n = fmt.words
        layout = fmt.layout()
        q = fifo.SyncFIFOBuffered(width=layout.size, depth=self._depth)
        m.submodules.fifo = ResetInserter(self.clear)(q)
        count = Signal(range(max(n, 2)))
        # Words 0..n-2 wait here; only bits some field occupies are kept.
        held = Signal(32 * max(n - 1, 1))
        m.d.comb += [
            self.o.valid.eq(q.r_rdy),
            self.o.payload.eq(q.r_data),
            q.r_en.eq(self.o.ready),
            self.level.eq(q.r_level),
            self.pending.eq(count),
        ]
        complete = Signal()
        m.d.comb += complete.eq(self.push & (count == n - 1))
        whole = Cat(held[:32 * (n - 1)], self.word) if n > 1 else self.word
        decoded = Signal(layout)
        for f in fmt.fields:
            m.d.comb += getattr(decoded, f.name).eq(whole[f.lsb:f.lsb + f.width])
        m.d.comb += [q.w_data.eq(decoded), q.w_en.eq(complete)]
        m.d.sync += self.overflow.eq(complete & ~q.w_rdy & ~self.clear)
        with m.If(self.clear):
            m.d.sync += count.eq(0)
        with m.Elif(self.push):
            if n > 1:
                with m.Switch(count):
                    for w in range(n - 1):
                        used = [f for f in fmt.fields if f.lsb // 32 == w]
                        with m.Case(w):
                            for f in used:
                                lo = f.lsb % 32
                                m.d.sync += held[f.lsb:f.lsb + f.width].eq(self.word[lo:lo + f.width])
            with m.If(complete):
                m.d.sync += count.eq(0)
            with m.Else():
                m.d.sync += count.eq(count + 1)
        return m
