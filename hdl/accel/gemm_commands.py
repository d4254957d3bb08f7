"""Command format, error codes and register map of the GEMM accelerator
(docs/SPEC.md "GEMM core"): the one description from which the RTL decodes,
the testbench encodes and ``ditgen header`` writes the C header and JSON."""

from ..common.regmap import CommandFormat, Field, Register, RegisterMap

__all__ = ["COMMANDS", "COMMANDS_FP16", "DTYPE_CODES", "OPCODES", "MEMORIES", "ERRORS", "ID_MAGIC", "VERSION",
           "commands", "core_registers", "regmap"]

OPCODES = {"LOAD": 1, "STORE": 2, "GEMM": 3, "VECTOR": 4}
# Memory selector of LOAD (destination) and STORE (source).
MEMORIES = {"A": 0, "W": 1, "ACC": 2}
ERRORS = {
    "NONE": 0,
    "OPCODE": 1,      # unknown opcode
    "SHAPE": 2,       # a zero size, K or N not a multiple of ROWS / COLS, a selector the command does not take
    "ADDRESS": 3,     # a region that runs past the end of its memory
    "QUEUE_FULL": 4,  # a command pushed while the queue was full (dropped)
}
# The DATAPATH register's dtype field (docs/SPEC.md "GEMM core", "FP16 datapath").
DTYPE_CODES = {"int8": 0, "fp16": 1}
ID_MAGIC = 0x47454D4D  # "GEMM"
VERSION = 0x00010000

COMMANDS = CommandFormat("gemm_cmd", 6, [
    Field("opcode", 0, 4, doc="LOAD=1, STORE=2, GEMM=3, VECTOR=4"),
    Field("mem", 4, 2, doc="LOAD destination / STORE source: 0 input scratchpad (A), 1 weights (W, LOAD only), "
                          "2 accumulator (ACC)"),
    Field("accumulate", 8, 1, doc="GEMM: add the first K tile to the accumulator too (K split over commands)"),
    Field("bias", 9, 1, doc="VECTOR: add the INT32 bias row (ACC at addr2 + N tile) before requantize"),
    Field("residual", 10, 1, doc="VECTOR: add the INT8 residual (A at addr3 + row), saturating, after requantize"),
    Field("relu", 11, 1, doc="VECTOR: ReLU after the residual add"),
    Field("to_stream", 12, 1, doc="VECTOR: results to m_axis instead of the A scratchpad at addr1"),
    Field("shift", 16, 6, doc="VECTOR: requantize right shift (round half to even)"),
    Field("m", 32, 16, doc="LOAD/STORE: rows; GEMM/VECTOR: M (output rows per N tile)"),
    Field("n", 48, 16, doc="GEMM/VECTOR: N (a multiple of COLS)"),
    Field("addr0", 64, 16, doc="LOAD/STORE: first row; GEMM: input (A) base; VECTOR: accumulator base"),
    Field("addr1", 80, 16, doc="GEMM: weight (W) base; VECTOR: destination (A) base"),
    Field("addr2", 96, 16, doc="GEMM: accumulator base; VECTOR: bias row base (ACC)"),
    Field("addr3", 112, 16, doc="VECTOR: residual base (A)"),
    Field("k", 128, 16, doc="GEMM: K (a multiple of ROWS)"),
    Field("mult", 144, 16, doc="VECTOR: requantize multiplier (unsigned)"),
    Field("clip_lo", 160, 8, reset=0x80, doc="VECTOR: lower clip bound (INT8, two's complement)"),
    Field("clip_hi", 168, 8, reset=0x7F, doc="VECTOR: upper clip bound (INT8, two's complement)"),
], OPCODES, doc="Six words per command; the sixth push enqueues it. Layouts: A row = ROWS INT8 (one K slice), "
                "W row = COLS INT8 (one row of a ROWS x COLS weight tile), ACC row = COLS INT32.")

# The FP16 datapath's commands: the same fields (mult, shift, clip_lo and
# clip_hi are ignored) plus the binary16 clip bound in word 5's upper half.
# INT8 keeps COMMANDS, so its queue stores no bits it does not use.
COMMANDS_FP16 = CommandFormat("gemm_cmd", 6, list(COMMANDS.fields) + [
    Field("clip_fp16", 176, 16, reset=0x7C00,
          doc="VECTOR (FP16 datapath): |y| bound, a binary16 pattern (its sign ignored): a non-NaN result "
              "beyond it becomes +-bound; 0x7C00 (+inf) clips nothing, 0x7BFF saturates at 65504"),
], OPCODES, doc="Six words per command; the sixth push enqueues it. FP16 datapath layouts: A row = ROWS "
                "binary16, W row = COLS binary16, ACC row = COLS binary32. VECTOR ignores mult, shift, "
                "clip_lo and clip_hi and clips with clip_fp16.")


def commands(dtype="int8"):
    """The command format of a datapath type."""
    return COMMANDS_FP16 if dtype == "fp16" else COMMANDS


def core_registers(unit_id, id_doc, *, rows, cols, a_depth, w_depth, acc_depth, queue_depth, stream_bytes,
                   dtype="int8", command_words=None, **replace):
    """The GEMM core's registers 0x00 .. 0x40 (docs/SPEC.md "GEMM core",
    "Registers"), which every top built on the core starts its map with.

    ``unit_id`` / ``id_doc`` are the top's ID value and its description;
    ``replace`` maps a register name to the ``Register`` a top puts in its
    place (its own control bits, a counter's wording), at the same offset."""
    ro = "ro"
    lane = "binary16" if dtype == "fp16" else "INT8"
    acc = "binary32" if dtype == "fp16" else "INT32"
    words = commands(dtype).words if command_words is None else command_words
    regs = [
        Register("id", 0x00, 32, ro, id_doc, reset=unit_id),
        Register("version", 0x04, 32, ro, "register map / command format version", reset=VERSION),
        Register("array", 0x08, [Field("rows", 0, 16, reset=rows), Field("cols", 16, 16, reset=cols)], ro,
                 "systolic array size"),
        Register("a_depth", 0x0C, 32, ro, f"input scratchpad rows (ROWS {lane} each)", reset=a_depth),
        Register("w_depth", 0x10, 32, ro, f"weight scratchpad rows (COLS {lane} each)", reset=w_depth),
        Register("acc_depth", 0x14, 32, ro, f"accumulator rows (COLS {acc} each)", reset=acc_depth),
        Register("config", 0x18, [Field("stream_bytes", 0, 8, reset=stream_bytes),
                                  Field("queue_depth", 8, 16, reset=queue_depth),
                                  Field("cmd_words", 24, 8, reset=words)], ro,
                 "AXI4-Stream bytes per beat, command queue depth, words per command"),
        Register("datapath", 0x1C, [Field("dtype", 0, 4, reset=DTYPE_CODES[dtype])], ro,
                 "datapath type: 0 INT8, 1 FP16 (binary16 operands, binary32 sums)"),
        Register("control", 0x20, [Field("start", 0, 1), Field("soft_reset", 1, 1)], "wo",
                 "start: run the queued commands; soft_reset: reset controller, queue, status and counters "
                 "(memories keep their contents)"),
        Register("status", 0x24, [Field("busy", 0, 1), Field("done", 1, 1), Field("error", 2, 1),
                                  Field("error_code", 8, 4)], ro,
                 "done and error stay set until the next start; error_code is the first error of the run"),
        Register("cmd", 0x28, 32, "wo", "command word push (word 0 first; the last word enqueues)"),
        Register("queue", 0x2C, [Field("fill", 0, 16), Field("words", 16, 8)], ro,
                 "queued commands; words of a command being pushed"),
        Register("cycles", 0x30, 32, ro, "cycles busy since start"),
        Register("array_busy", 0x34, 32, ro, "cycles an activation row entered the array"),
        Register("stall", 0x38, 32, ro, "cycles s_axis had no data for a LOAD or m_axis held back a beat"),
        Register("gemm_cycles", 0x3C, 32, ro, "cycles of the last GEMM command"),
        Register("commands", 0x40, 32, ro, "commands executed (bad ones included) since start"),
    ]
    unknown = set(replace) - {r.name for r in regs}
    if unknown:
        raise ValueError(f"replace: no core register named {sorted(unknown)}")
    out = []
    for r in regs:
        new = replace.get(r.name, r)
        if new.offset != r.offset:
            raise ValueError(f"replace: {r.name} must stay at 0x{r.offset:02X}, not 0x{new.offset:02X}")
        out.append(new)
    return out


def regmap(*, rows, cols, a_depth, w_depth, acc_depth, queue_depth, stream_bytes, dtype="int8"):
    """The register map of a configuration (its parameter registers read it back)."""
    return RegisterMap("gemm_accelerator", core_registers(
        ID_MAGIC, "0x47454D4D ('GEMM')", rows=rows, cols=cols, a_depth=a_depth, w_depth=w_depth,
        acc_depth=acc_depth, queue_depth=queue_depth, stream_bytes=stream_bytes, dtype=dtype), version=VERSION)
