"""Weight-stationary systolic array, ROWS x COLS PEs, INT8 x INT8 -> INT32 or
FP16 x FP16 -> FP32 (docs/SPEC.md "Systolic array", "FP16"; RADiT §III-C and
§IV-B1, ORBIS §3.3)."""

import re
from pathlib import Path

from amaranth.hdl import Cat, ClockSignal, Instance, Module, Mux, ResetSignal, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..common.params import check_int
from ..common.stream import stall_pipeline
from ..registry import unit
from .pe import SystolicPE, WidthProperties, check_dtype, dtype_widths

__all__ = ["SystolicArray", "emit_array", "emit_grid"]


GRID_TEMPLATE = """\
// The PE grid of {top}: {rows} x {cols} instances of {pe}, written as generate
// loops (Amaranth would write one module per instance). Activations and the
// swap/load flags run right, shadow weights and partial sums run down.
// PE (r, c) takes left_a/left_f/left_e of row r in column 0 and top_w of
// column c in row 0; the top row adds to zero; bottom_p is the bottom row.
module {grid} (
  input  wire clk,
  input  wire rst,
  input  wire ce,
  input  wire [{rows}*{in_bits}-1:0] left_a,
  input  wire [{rows}-1:0] left_f,
  input  wire [{rows}-1:0] left_e,
  input  wire [{cols}*{w_bits}-1:0] top_w,
  output wire [{cols}*{acc_bits}-1:0] bottom_p
);
  wire [{in_bits}-1:0] a_h [0:{rows}-1][0:{cols}-1];   // a_h[r][c]: activation into PE (r, c)
  wire f_h [0:{rows}-1][0:{cols}-1];
  wire e_h [0:{rows}-1][0:{cols}-1];
  wire [{w_bits}-1:0] w_v [0:{rows}-1][0:{cols}-1];    // w_v[r][c]: shadow weight into PE (r, c)
  wire [{acc_bits}-1:0] p_v [0:{rows}][0:{cols}-1];    // p_v[r][c]: partial sum into PE (r, c)
  genvar r, c;
  generate
    for (r = 0; r < {rows}; r = r + 1) begin : row
      assign a_h[r][0] = left_a[r*{in_bits} +: {in_bits}];
      assign f_h[r][0] = left_f[r];
      assign e_h[r][0] = left_e[r];
      for (c = 0; c < {cols}; c = c + 1) begin : col
        if (r == 0) begin : top
          assign w_v[0][c] = top_w[c*{w_bits} +: {w_bits}];
          assign p_v[0][c] = {{{acc_bits}{{1'b0}}}};
        end
        if (r == {rows} - 1) begin : bottom
          assign bottom_p[c*{acc_bits} +: {acc_bits}] = p_v[{rows}][c];
        end
        // The last column's pass-through and the bottom row's shadow outputs
        // are left open on purpose.
        /* verilator lint_off PINCONNECTEMPTY */
        if (c < {cols} - 1 && r < {rows} - 1) begin : inner
          {pe} pe (.clk(clk), .rst(rst), .ce(ce),
            .a_in(a_h[r][c]), .f_in(f_h[r][c]), .e_in(e_h[r][c]), .w_in(w_v[r][c]), .p_in(p_v[r][c]),
            .a_out(a_h[r][c+1]), .f_out(f_h[r][c+1]), .e_out(e_h[r][c+1]), .w_out(w_v[r+1][c]),
            .p_out(p_v[r+1][c]));
        end else if (r < {rows} - 1) begin : right
          {pe} pe (.clk(clk), .rst(rst), .ce(ce),
            .a_in(a_h[r][c]), .f_in(f_h[r][c]), .e_in(e_h[r][c]), .w_in(w_v[r][c]), .p_in(p_v[r][c]),
            .a_out(), .f_out(), .e_out(), .w_out(w_v[r+1][c]), .p_out(p_v[r+1][c]));
        end else if (c < {cols} - 1) begin : last
          {pe} pe (.clk(clk), .rst(rst), .ce(ce),
            .a_in(a_h[r][c]), .f_in(f_h[r][c]), .e_in(e_h[r][c]), .w_in(w_v[r][c]), .p_in(p_v[r][c]),
            .a_out(a_h[r][c+1]), .f_out(f_h[r][c+1]), .e_out(e_h[r][c+1]), .w_out(),
            .p_out(p_v[r+1][c]));
        end else begin : corner
          {pe} pe (.clk(clk), .rst(rst), .ce(ce),
            .a_in(a_h[r][c]), .f_in(f_h[r][c]), .e_in(e_h[r][c]), .w_in(w_v[r][c]), .p_in(p_v[r][c]),
            .a_out(), .f_out(), .e_out(), .w_out(), .p_out(p_v[r+1][c]));
        end
        /* verilator lint_on PINCONNECTEMPTY */
      end
    end
  endgenerate
endmodule
"""


def emit_grid(component, out_dir, name):
    """Write the array's PE (``<name>_pe``, converted by Amaranth once) and its
    grid (``<name>_grid``, ROWS x COLS instances of it as Verilog generate
    loops), and point ``component`` at the grid; return both paths. A top that
    contains an array calls this before converting itself."""
    from amaranth.back import verilog

    out_dir = Path(out_dir)
    pe_name = f"{name}_pe"
    grid_name = f"{name}_grid"
    pe = component.make_pe()
    pe_path = out_dir / f"{pe_name}.v"
    # Verilator would otherwise inline all ROWS*COLS PEs into one flat model
    # (for 64x64: gigabytes and many minutes of C++); kept as one class it
    # builds like a small design. Yosys ignores the comment.
    pe_text = verilog.convert(pe, name=pe_name, emit_src=False)
    pe_text = re.sub(rf"^(module {pe_name}\b[^;]*;)", r"\1\n  /* verilator no_inline_module */",
                     pe_text, count=1, flags=re.M)
    pe_path.write_text(pe_text)
    grid_path = out_dir / f"{grid_name}.v"
    grid_path.write_text(GRID_TEMPLATE.format(
        top=name, grid=grid_name, pe=pe_name, rows=component.rows, cols=component.cols,
        in_bits=component.in_bits, w_bits=component.w_bits, acc_bits=component.acc_bits))
    component.grid_module = grid_name
    return [grid_path, pe_path]


def emit_array(component, out_dir, name):
    """Write the array as three modules: ``<name>_pe`` (the PE, converted by
    Amaranth once), ``<name>_grid`` (ROWS x COLS instances of it, as Verilog
    generate loops) and ``name`` (the Amaranth top: stream control, skew and
    de-skew registers, one grid instance).

    Amaranth's netlist is bit-level and it writes one module per instance, so
    placing 4,096 PE instances from Amaranth took 79 s; the generate loops
    keep ``make verilog`` of the 64x64 array to a few seconds and kilobytes.
    The component goes back to building its own grid afterwards, so a plain
    ``verilog.convert`` of it still works.
    """
    from amaranth.back import verilog

    grid = emit_grid(component, out_dir, name)
    try:
        top_text = verilog.convert(component, name=name, emit_src=False)
    finally:
        component.grid_module = None
    top_path = Path(out_dir) / f"{name}.v"
    top_path.write_text(top_text)
    return [top_path] + grid


@unit("systolic_array", golden="golden.systolic.matmul", testbench="sim.systolic.tb_systolic_array",
      emit=emit_array, synth={"flatten": False}, sim={"public": "top"})
class SystolicArray(WidthProperties, wiring.Component):
    """Weight-stationary systolic array: ``ROWS x COLS`` PEs computing ``A @ W`` tile by tile.

    The TPU-like array of RADiT (64x64 PEs, §III-C) and ORBIS's DXE (§3.3).
    A weight tile (``ROWS x COLS``) sits in the PEs; activation rows (``ROWS``
    values, one K slice) enter skewed from the left, partial sums flow down,
    and each output row (``COLS`` INT32 sums) leaves de-skewed at the bottom.
    Each PE (:class:`~hdl.systolic.pe.SystolicPE`) holds two weights: while a
    tile computes, the next tile's weights shift down the columns into the
    shadow registers, and the swap travels with the first activation row of the
    next tile, so tiles run back to back.

    Parameters
    ----------
    rows, cols : int
        PE rows (K per tile) and columns (N per tile); default 64 x 64, >= 1.
    in_bits, w_bits : int
        Signed activation and weight widths (default 8).
    acc_bits : int
        Partial-sum and result width (default 32), >= ``in_bits + w_bits``;
        sums wrap around in two's complement.
    dtype : str
        ``"int8"`` (default) or ``"fp16"``: binary16 activations and weights,
        binary32 partial sums and results (bit patterns in unsigned lanes;
        the widths read 16, 16, 32 and must be left at their defaults). Each
        column sum starts at +0.0 in the top PE and adds the products in
        k order (PE row k holds tile row k), rounding to nearest even after
        every addition (docs/SPEC.md "FP16").

    Members
    -------
    w : ``In(stream.Signature(ArrayLayout(signed(w_bits), cols)))``
        Weight tiles: ``rows`` beats per tile, beat ``j`` = tile row ``j``
        for INT8, tile row ``rows - 1 - j`` for FP16 (the shift chain puts the
        last beat in the top row, where FP16 sums start;
        :func:`golden.systolic.weight_beats`); column ``n`` in lane ``n``. A tile's beats are taken while the
        shadow registers are free: from the cycle the previous tile's first
        activation row enters.
    a : ``In(stream.Signature(StructLayout({"data": ArrayLayout(signed(in_bits), rows), "last": 1})))``
        Activation rows of the current tile (lane ``k`` = K index ``k``);
        ``last`` marks a tile's final row. A tile's first row waits until
        its weights are loaded.
    o : ``Out(stream.Signature(StructLayout({"data": ArrayLayout(signed(acc_bits), cols), "last": 1})))``
        One result row per activation row, in order: lane ``n`` =
        ``sum_k a[k] * W[k, n]``; ``last`` copies the activation row's.

    Ports (Verilog): ``w__valid``, ``w__ready``, ``w__payload``, ``a__valid``,
    ``a__ready``, ``a__payload`` (data in the LSBs, ``last`` on top),
    ``o__valid``, ``o__ready``, ``o__payload``, ``clk``, ``rst``.

    Timing: latency ``ROWS + COLS`` cycles from an activation row to its
    result row; one activation row per cycle (II = 1); a tile occupies
    ``max(M, ROWS)`` cycles (its M rows, or the next tile's weight load if
    longer). The first tile's weights take ``ROWS`` cycles before its first
    row may enter. Back-pressure on ``o`` stalls the whole array (one clock
    enable for every register) without losing or repeating a beat. The cycle
    model is :func:`golden.systolic.cycles`.

    Emission (:func:`emit_array`): the PE is converted once as module
    ``<top>_pe``; ``<top>_grid`` places ``ROWS x COLS`` instances of it with
    Verilog generate loops; this component is the top module ``<top>`` (stream
    control, skew and de-skew registers) and places the grid with
    ``Instance``. 64x64: three modules, ~140 KiB of Verilog. Converted on its
    own (``amaranth.back.verilog.convert``, or simulated in Amaranth), with
    no grid module named in ``grid_module``, it builds the grid from
    :class:`~hdl.systolic.pe.SystolicPE` submodules instead: the same logic,
    one Verilog module per PE (slow for big arrays).
    """

    def __init__(self, *, rows=64, cols=64, in_bits=8, w_bits=8, acc_bits=32, dtype="int8"):
        self._rows = check_int("rows", rows, minimum=1, maximum=256)
        self._cols = check_int("cols", cols, minimum=1, maximum=256)
        self._dtype = check_dtype(dtype)
        self._in_bits, self._w_bits, self._acc_bits = dtype_widths(dtype, in_bits, w_bits, acc_bits)
        # Set by emit_array while it converts the top: the name of the grid
        # module it writes beside it. None: elaborate builds the grid itself.
        self.grid_module = None
        shape = signed if self._dtype == "int8" else unsigned
        super().__init__({
            "w": In(stream.Signature(data.ArrayLayout(shape(self._w_bits), self._cols))),
            "a": In(stream.Signature(data.StructLayout({
                "data": data.ArrayLayout(shape(self._in_bits), self._rows), "last": 1}))),
            "o": Out(stream.Signature(data.StructLayout({
                "data": data.ArrayLayout(shape(self._acc_bits), self._cols), "last": 1}))),
        })

    @property
    def rows(self):
        return self._rows

    @property
    def cols(self):
        return self._cols

    @property
    def dtype(self):
        return self._dtype

    @property
    def latency(self):
        return self._rows + self._cols

    def make_pe(self):
        """A PE of this array's type and widths."""
        if self._dtype == "fp16":
            return SystolicPE(dtype="fp16")
        return SystolicPE(in_bits=self._in_bits, w_bits=self._w_bits, acc_bits=self._acc_bits)

    def elaborate(self, platform):
        m = Module()
        rows, cols = self._rows, self._cols

        # --- control: one clock enable for the whole array ------------------
        a_take = Signal()
        unused_ready = Signal()
        ce = stall_pipeline(m, a_take, unused_ready, self.o.valid, self.o.ready, self.latency,
                            name="array")
        last_line = Signal(self.latency, name="last_line")
        with m.If(ce):
            m.d.sync += last_line.eq((last_line << 1) | (a_take & self.a.payload.last))
        m.d.comb += self.o.payload.last.eq(last_line[-1])

        first = Signal(init=1)     # the next activation row starts a tile
        pending = Signal()         # a complete weight tile waits in the shadow registers
        wcount = Signal(range(rows), name="wcount")  # beats of the tile being loaded
        start = Signal()           # this cycle's activation row starts a tile: swap
        w_take = Signal()
        w_done = Signal()
        m.d.comb += [
            self.a.ready.eq(ce & (~first | pending)),
            a_take.eq(self.a.valid & self.a.ready),
            start.eq(a_take & first),
            # The shadow registers are free once the tile in them has started;
            # PE (r, c) swaps and shifts in the same cycle at the earliest.
            self.w.ready.eq(ce & (~pending | start)),
            w_take.eq(self.w.valid & self.w.ready),
            w_done.eq(w_take & (wcount == rows - 1)),
        ]
        with m.If(a_take):
            m.d.sync += first.eq(self.a.payload.last)
        with m.If(w_take):
            m.d.sync += wcount.eq(Mux(w_done, 0, wcount + 1))
        with m.If(ce):
            m.d.sync += pending.eq((pending & ~start) | w_done)

        def delayed(value, depth, name):
            """``value`` through ``depth`` stall-aware registers (one shift register)."""
            if depth == 0:
                return value
            width = len(value)
            line = Signal(width * depth, name=name, reset_less=True)
            with m.If(ce):
                m.d.sync += line.eq(Cat(value, line[:-width]) if depth > 1 else value)
            out = line[-width:]
            return out.as_signed() if value.shape().signed else out

        # --- edges: skew in, de-skew out -------------------------------------
        # The first weight beat shifts down to the bottom: PE row r holds beat
        # rows-1-r, which is tile row rows-1-r for INT8 and tile row r for FP16
        # (whose beats come last row first, so that sums start at k = 0). It
        # multiplies that activation lane, which enters r cycles late
        # together with the swap flag.
        fp = self._dtype == "fp16"
        left_a = []
        left_f = []
        left_e = []
        for r in range(rows):
            lane = r if fp else rows - 1 - r
            if r == 0:
                left_a.append(self.a.payload.data[lane])
                left_f.append(start)
            else:
                pair = Signal(self._in_bits + 1, name=f"askew_in_{r}")
                m.d.comb += pair.eq(self.a.payload.data[lane].as_unsigned() | (start << self._in_bits))
                out = delayed(pair, r, f"askew_{r}")
                left_a.append(out[:self._in_bits] if fp else out[:self._in_bits].as_signed())
                left_f.append(out[self._in_bits])
            # Weight beat j shifts PE rows 0..j of a column: row r joins at beat r.
            e = Signal(name=f"load_{r}")
            m.d.comb += e.eq(w_take & (wcount >= r) if r else w_take)
            left_e.append(e)
        top_w = [delayed(self.w.payload[c], c, f"wskew_{c}") for c in range(cols)]

        # --- the PE grid (hand-off to the generated grid module) ----------------
        left_a_bus = Signal(rows * self._in_bits, name="left_a")
        left_f_bus = Signal(rows, name="left_f")
        left_e_bus = Signal(rows, name="left_e")
        top_w_bus = Signal(cols * self._w_bits, name="top_w")
        bottom = Signal(cols * self._acc_bits, name="bottom_p")
        for r in range(rows):
            m.d.comb += [
                left_a_bus.word_select(r, self._in_bits).eq(left_a[r]),
                left_f_bus[r].eq(left_f[r]),
                left_e_bus[r].eq(left_e[r]),
            ]
        for c in range(cols):
            m.d.comb += top_w_bus.word_select(c, self._w_bits).eq(top_w[c])
        if self.grid_module is not None:
            m.submodules.grid = Instance(
                self.grid_module, i_clk=ClockSignal(), i_rst=ResetSignal(), i_ce=ce,
                i_left_a=left_a_bus, i_left_f=left_f_bus, i_left_e=left_e_bus, i_top_w=top_w_bus,
                o_bottom_p=bottom)
        else:
            self._grid(m, ce, left_a_bus, left_f_bus, left_e_bus, top_w_bus, bottom)
        bottom_p = [bottom.word_select(c, self._acc_bits) for c in range(cols)]
        if not fp:
            bottom_p = [v.as_signed() for v in bottom_p]

        # Column c's result leaves the bottom row c cycles after column 0's.
        for c in range(cols):
            m.d.comb += self.o.payload.data[c].eq(
                delayed(bottom_p[c], cols - 1 - c, f"deskew_{c}"))
        return m

    def _grid(self, m, ce, left_a, left_f, left_e, top_w, bottom):
        """The grid of GRID_TEMPLATE as Amaranth submodules (plain conversion)."""
        rows, cols = self._rows, self._cols
        pes = [[self.make_pe() for _ in range(cols)] for _ in range(rows)]
        for r in range(rows):
            for c in range(cols):
                pe = pes[r][c]
                m.submodules[f"pe_{r}_{c}"] = pe
                m.d.comb += pe.ce.eq(ce)
                if c == 0:
                    m.d.comb += [pe.a_in.eq(left_a.word_select(r, self._in_bits)),
                                 pe.f_in.eq(left_f[r]), pe.e_in.eq(left_e[r])]
                else:
                    left = pes[r][c - 1]
                    m.d.comb += [pe.a_in.eq(left.a_out), pe.f_in.eq(left.f_out), pe.e_in.eq(left.e_out)]
                if r == 0:
                    m.d.comb += [pe.w_in.eq(top_w.word_select(c, self._w_bits)), pe.p_in.eq(0)]
                else:
                    m.d.comb += [pe.w_in.eq(pes[r - 1][c].w_out), pe.p_in.eq(pes[r - 1][c].p_out)]
                if r == rows - 1:
                    m.d.comb += bottom.word_select(c, self._acc_bits).eq(pe.p_out)
