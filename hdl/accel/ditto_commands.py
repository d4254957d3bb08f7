"""Command format, error codes and register map of the Ditto accelerator
(docs/SPEC.md "Ditto accelerator"): six-word commands in the GEMM
accelerator's field layout, with LAYER in the place of GEMM."""

from ..common.regmap import CommandFormat, Field, Register, RegisterMap
from .gemm_commands import ERRORS as GEMM_ERRORS

__all__ = ["COMMANDS", "OPCODES", "MEMORIES", "ERRORS", "ID_MAGIC", "VERSION", "STEPS", "regmap"]

OPCODES = {"LOAD": 1, "STORE": 2, "LAYER": 3, "VECTOR": 4, "TADD": 5}
# Memory selector of LOAD (destination) and STORE (source).
MEMORIES = {"A": 0, "W": 1, "O": 2, "P": 3}
ERRORS = dict(GEMM_ERRORS)   # NONE, OPCODE, SHAPE, ADDRESS, QUEUE_FULL: the GEMM accelerator's codes
STEPS = {"first": 0, "second": 1, "later": 2}   # Defo's step of a LAYER
ID_MAGIC = 0x4449544F  # "DITO"
VERSION = 0x00010000

COMMANDS = CommandFormat("ditto_cmd", 6, [
    Field("opcode", 0, 4, doc="LOAD=1, STORE=2, LAYER=3, VECTOR=4, TADD=5"),
    Field("mem", 4, 2, doc="LOAD destination / STORE source: 0 activations (A), 1 weights (W, LOAD only), "
                          "2 outputs (O, INT32), 3 previous inputs (P)"),
    Field("spatial", 8, 1, doc="LAYER: difference steps take Ditto+ spatial (row) differences, not temporal"),
    Field("store", 9, 1, doc="LAYER: temporal differences store ΔA·W in O instead of adding it (a partial "
                            "product for TADD)"),
    Field("relu", 11, 1, doc="VECTOR: ReLU after requantize"),
    Field("shift", 16, 6, doc="VECTOR: requantize right shift (round half to even)"),
    Field("m", 32, 16, doc="LOAD/STORE/VECTOR: rows; LAYER: M (activation rows); TADD: rows of the sum"),
    Field("n", 48, 16, doc="LAYER: N (a multiple of CUS * PES); TADD: columns of the sum (rows of the partial)"),
    Field("addr0", 64, 16, doc="LOAD/STORE/VECTOR: first row; LAYER: activation (A) base; TADD: partial (O) base"),
    Field("addr1", 80, 16, doc="LAYER: weight (W) base"),
    Field("addr2", 96, 16, doc="LAYER: output (O) base: previous outputs read, new outputs written; TADD: sum "
                              "(O) base"),
    Field("addr3", 112, 16, doc="LAYER: previous-input (P) base"),
    Field("k", 128, 16, doc="LAYER: K (a multiple of LANES, at most MAX_K)"),
    Field("mult", 144, 16, doc="VECTOR: requantize multiplier (unsigned)"),
    Field("layer", 160, 16, doc="LAYER: Defo table entry (< DEFO_ENTRIES)"),
    Field("step", 176, 2, doc="LAYER: 0 first timestep (activations), 1 second (differences), 2 later (Defo)"),
], OPCODES, doc="Six words per command; the sixth push enqueues it. Layouts: A / P row = LANES INT8 (one "
                "encoder beat; an M x K operand is M rows of K / LANES beats), W row = CUS * PES INT8 (row k "
                "of an N tile, CU c holds bytes c*PES ..), O row = CUS * PES INT32 (one output row of an N tile).")


def regmap(*, cus, pes, lanes, a_depth, w_depth, o_depth, p_depth, max_k, defo_entries, queue_depth,
           stream_bytes):
    """The register map of a configuration (its parameter registers read it back)."""
    ro = "ro"
    return RegisterMap("ditto_accelerator", [
        Register("id", 0x00, 32, ro, "0x4449544F ('DITO')", reset=ID_MAGIC),
        Register("version", 0x04, 32, ro, "register map / command format version", reset=VERSION),
        Register("array", 0x08, [Field("cus", 0, 16, reset=cus), Field("pes", 16, 16, reset=pes)], ro,
                 "compute units, PEs per compute unit (output columns per pass = CUS * PES)"),
        Register("a_depth", 0x0C, 32, ro, "activation scratchpad rows (LANES INT8 each)", reset=a_depth),
        Register("w_depth", 0x10, 32, ro, "weight rows per compute unit (PES INT8 each)", reset=w_depth),
        Register("o_depth", 0x14, 32, ro, "previous-output buffer rows (CUS * PES INT32 each)", reset=o_depth),
        Register("config", 0x18, [Field("stream_bytes", 0, 8, reset=stream_bytes),
                                  Field("queue_depth", 8, 16, reset=queue_depth),
                                  Field("cmd_words", 24, 8, reset=COMMANDS.words)], ro,
                 "AXI4-Stream bytes per beat, command queue depth, words per command"),
        Register("p_depth", 0x1C, 32, ro, "previous-input buffer rows (LANES INT8 each)", reset=p_depth),
        Register("control", 0x20, [Field("start", 0, 1), Field("soft_reset", 1, 1)], "wo",
                 "start: run the queued commands; soft_reset: reset controller, queue, status and counters "
                 "(memories and the Defo table keep their contents)"),
        Register("status", 0x24, [Field("busy", 0, 1), Field("done", 1, 1), Field("error", 2, 1),
                                  Field("error_code", 8, 4)], ro,
                 "done and error stay set until the next start; error_code is the first error of the run"),
        Register("cmd", 0x28, 32, "wo", "command word push (word 0 first; the last word enqueues)"),
        Register("queue", 0x2C, [Field("fill", 0, 16), Field("words", 16, 8)], ro,
                 "queued commands; words of a command being pushed"),
        Register("cycles", 0x30, 32, ro, "cycles busy since start"),
        Register("busy_cycles", 0x34, 32, ro, "cycles a packed lane beat entered the compute units"),
        Register("stall", 0x38, 32, ro, "cycles s_axis had no data for a LOAD or m_axis held back a beat"),
        Register("commands", 0x3C, 32, ro, "commands executed (bad ones included) since start"),
        Register("ditto", 0x40, [Field("lanes", 0, 8, reset=lanes), Field("max_k", 8, 16, reset=max_k)], ro,
                 "INT8 elements per encoder beat (A / P row), longest K"),
        Register("defo_entries", 0x44, 32, ro, "Defo table entries", reset=defo_entries),
        Register("memory", 0x48, [Field("bw_log2", 0, 4, reset=4), Field("enable", 4, 1, reset=1)], "rw",
                 "memory model: 2^bw_log2 bytes per cycle; enable 0 = compute cycles only"),
        Register("layers", 0x4C, 32, ro, "LAYER commands completed since start"),
        Register("decision", 0x50, [Field("layer", 0, 16), Field("step", 16, 2), Field("use_diff", 18, 1),
                                    Field("decision", 19, 1), Field("valid", 20, 1)], ro,
                 "last LAYER: its entry and step, the execution used (1 differences), the stored decision, "
                 "valid (cleared by start)"),
        Register("cycles_act", 0x54, 32, ro, "last LAYER's table entry: cycles of the first timestep"),
        Register("cycles_diff", 0x58, 32, ro, "last LAYER's table entry: cycles of the second timestep"),
        Register("layer_cycles", 0x5C, 32, ro, "last LAYER: max(compute, memory) cycles, as Defo records"),
        Register("compute_cycles", 0x60, 32, ro, "last LAYER: compute cycles"),
        Register("memory_cycles", 0x64, 32, ro, "last LAYER: memory-model cycles (0 when disabled)"),
        Register("zero", 0x68, 32, ro, "last LAYER: zero differences (encoder statistics)"),
        Register("low", 0x6C, 32, ro, "last LAYER: low (4-bit) differences"),
        Register("full", 0x70, 32, ro, "last LAYER: full (8-bit) elements"),
    ], version=VERSION)
