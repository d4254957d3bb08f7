"""Command format, error codes and register map of the ORBIS accelerator
(docs/SPEC.md "ORBIS accelerator"): the GEMM accelerator's six-word commands
with ORBIS flags and a layer field in word 0, plus MATCH and STEP."""

from ..common.regmap import CommandFormat, Field, Register, RegisterMap
from .gemm_commands import COMMANDS as GEMM_COMMANDS
from .gemm_commands import ERRORS as GEMM_ERRORS, MEMORIES, OPCODES as GEMM_OPCODES
from .gemm_commands import DTYPE_CODES, core_registers

__all__ = ["DTYPE_CODES", "COMMANDS", "OPCODES", "MEMORIES", "ERRORS", "ID_MAGIC", "VERSION", "MATCH_FIELDS",
           "regmap", "LAYER_BITS"]

OPCODES = {**GEMM_OPCODES, "MATCH": 8, "STEP": 9}
# SEQUENCE: REDUCE / RESTORE of a layer without pairs; NO error for a MATCH in an RC step (dropped, counted).
ERRORS = {**GEMM_ERRORS, "SEQUENCE": 5}
ID_MAGIC = 0x4F524253  # "ORBS"
VERSION = 0x00010000
LAYER_BITS = 8

# MATCH's meaning of the shared fields.
MATCH_FIELDS = {
    "layer": "layer",        # pair-memory layer the pairs go to
    "k": "m",                # pairs wanted (k' = min(k, TOKENS - NUM_DST) are made)
    "max_iter": "n",         # DATM iteration cap (0 counts as 1)
    "eps": "mult",           # ε with 16 fraction bits
    "seed": "addr0",         # dst initialisation seed
}

COMMANDS = CommandFormat(
    "orbis_cmd", GEMM_COMMANDS.words,
    list(GEMM_COMMANDS.fields) + [
        Field("capture", 13, 1, doc="VECTOR to the stream, FC step: its beats also go to the feature memory "
                                    "(the SDPA output the next MATCH quantizes and matches)"),
        Field("reduce", 14, 1, doc="LOAD A, RC step: m = k·TOKENS rows (k K tiles of TOKENS rows); the rows "
                                   "pass the reduce unit (srcs merged into their dsts) and TOKENS - r rows per tile "
                                   "are written"),
        Field("restore", 15, 1, doc="VECTOR to the stream, RC step: m = TOKENS - r rows per N tile; every "
                                    "tile leaves as TOKENS rows (srcs copy their dst)"),
        Field("layer", 24, LAYER_BITS, doc="MATCH / reduce / restore: the pair-memory layer"),
    ],
    OPCODES,
    doc="The GEMM accelerator's commands plus MATCH=8 (layer, k=m, max_iter=n, eps=mult, seed=addr0; QE + "
        "DATM in the background) and STEP=9 (next OGM timestep; accumulate=1: the first, an FC step); "
        "bits 13-15 capture / reduce / restore, bits 24-31 the layer.")


def regmap(*, rows, cols, a_depth, w_depth, acc_depth, queue_depth, stream_bytes, tokens, channels, num_dst,
           layers, rc_steps, dtype="int8"):
    """The register map of a configuration: the GEMM accelerator's map with
    ORBIS's parameter, OGM, pair-window and counter registers after it."""
    ro = "ro"
    core = core_registers(
        ID_MAGIC, "0x4F524253 ('ORBS')", rows=rows, cols=cols, a_depth=a_depth, w_depth=w_depth,
        acc_depth=acc_depth, queue_depth=queue_depth, stream_bytes=stream_bytes, dtype=dtype,
        command_words=COMMANDS.words,
        datapath=Register("datapath", 0x1C, [Field("dtype", 0, 4, reset=DTYPE_CODES[dtype])], ro,
                          "datapath type of the GEMM core and the QE: 0 INT8, 1 FP16"),
        control=Register("control", 0x20, [Field("start", 0, 1), Field("soft_reset", 1, 1)], "wo",
                         "start: run the queued commands; soft_reset: reset controller, queue, engines, status, "
                         "counters, OGM step and pair-valid bits (memories keep their contents)"),
        status=Register("status", 0x24, [Field("busy", 0, 1), Field("done", 1, 1), Field("error", 2, 1),
                                         Field("error_code", 8, 4)], ro,
                        "done (queue empty and the match engine idle) and error stay set until the next start"),
        stall=Register("stall", 0x38, 32, ro, "cycles a host stream held the controller back"),
        gemm_cycles=Register("gemm_cycles", 0x3C, 32, ro, "cycles of the core's last GEMM command"),
        commands=Register("commands", 0x40, 32, ro, "commands decoded (bad and dropped ones included) since start"))
    return RegisterMap("orbis_accelerator", core + [
        Register("orbis", 0x44, [Field("tokens", 0, 16, reset=tokens), Field("num_dst", 16, 16, reset=num_dst)],
                 ro, "tokens N matched per layer, dst tokens D"),
        Register("orbis2", 0x48, [Field("channels", 0, 16, reset=channels), Field("layers", 16, 8, reset=layers),
                                  Field("rc_steps", 24, 8, reset=rc_steps)], ro,
                 "channels C of the matched matrix, pair-memory layers, RC steps per FC step"),
        Register("ogm", 0x4C, [Field("phase", 0, 8), Field("rc", 8, 1), Field("engine_busy", 9, 1),
                               Field("feeder_busy", 10, 1)], ro,
                 "OGM step: phase 0 is the FC step, 1..RC_STEPS the RC steps; match engine / feeder busy"),
        Register("pairs_valid", 0x50, 32, ro, "bit l: layer l holds pairs from a finished MATCH"),
        Register("pair_sel", 0x54, [Field("index", 0, 16), Field("layer", 16, 8)], "wo",
                 "pair window: the PAIR register reads pair `index` of `layer`"),
        Register("pair", 0x58, [Field("src", 0, 16), Field("dst", 16, 16)], ro,
                 "the selected pair (ascending loss order)"),
        Register("pair_count", 0x5C, [Field("count", 0, 16), Field("iterations", 16, 16)], ro,
                 "pairs k' of the selected layer and the DATM iterations that made them"),
        Register("datm_busy", 0x60, 32, ro, "cycles the match engine (feeder, QE, DATM, map) was busy, since start"),
        Register("exposed", 0x64, 32, ro, "cycles the controller waited for the match engine, since start"),
        Register("matches", 0x68, 32, ro, "MATCH commands run since start"),
        Register("dropped", 0x6C, 32, ro, "MATCH commands dropped in RC steps since start"),
        Register("late", 0x70, 32, ro, "bit l: the controller waited for layer l's match since start"),
        Register("match_cycles", 0x74, 32, ro, "cycles of the last finished match, launch to pairs valid"),
        Register("match_done", 0x78, 32, ro, "CYCLES when the selected layer's last match made its pairs valid"),
    ], version=VERSION)
