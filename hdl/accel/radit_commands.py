"""Command format, error codes and register map of the RADiT accelerator
(docs/SPEC.md "RADiT accelerator"): the GEMM accelerator's six-word commands
plus BLOCK_BEGIN / BLOCK_END, which reuse its fields under block meanings."""

from ..common.regmap import CommandFormat, Field, Register, RegisterMap
from .gemm_commands import COMMANDS as GEMM_COMMANDS
from .gemm_commands import DTYPE_CODES, core_registers
from .gemm_commands import ERRORS as GEMM_ERRORS, MEMORIES, OPCODES as GEMM_OPCODES

__all__ = ["DTYPE_CODES", "COMMANDS", "OPCODES", "MEMORIES", "ERRORS", "ID_MAGIC", "VERSION", "BLOCK_FIELDS", "regmap"]

OPCODES = {**GEMM_OPCODES, "BLOCK_BEGIN": 8, "BLOCK_END": 9}
ERRORS = {**GEMM_ERRORS, "SEQUENCE": 5}   # a GEMM command or BLOCK_END outside a block, or BEGIN inside one
ID_MAGIC = 0x52414454  # "RADT"
VERSION = 0x00010000

# BLOCK_BEGIN's meaning of the shared fields (the field layout stays the GEMM
# one so that GEMM commands pass to the core word for word).
BLOCK_FIELDS = {
    "block": "addr0",        # DNN operation block id (< BLOCKS): DTSM state row
    "t": "addr1",            # timestep index (<= TIMESTEPS): row of the α table
    "in_beats": "m",         # beats of the block's FP16 input that follow on s_axis
    "out_beats": "n",        # beats of the block's output (reuse region size)
    "code_addr": "addr2",    # first code-memory row of the block's codes
    "reuse_addr": "addr3",   # first reuse-memory row of the block's output
    "first": "accumulate",   # the run's first timestep: compute, clear the block's DTSM state
}

COMMANDS = CommandFormat(
    "radit_cmd", GEMM_COMMANDS.words,
    list(GEMM_COMMANDS.fields) + [Field("output", 13, 1, doc="STORE / VECTOR to the stream: these beats are the "
                                                              "block's output (kept in the reuse memory)")],
    OPCODES,
    doc="The GEMM accelerator's commands plus BLOCK_BEGIN=8 (block=addr0, t=addr1, input beats=m, output "
        "beats=n, code base=addr2, reuse base=addr3, first=accumulate) and BLOCK_END=9 (no fields); "
        "bit 13 (output) marks the STORE / VECTOR whose beats are the block's output.")


def regmap(*, rows, cols, a_depth, w_depth, acc_depth, queue_depth, stream_bytes, blocks, timesteps,
           code_depth, reuse_depth, alpha_frac, dtype="int8"):
    """The register map of a configuration: the GEMM accelerator's map with
    RADiT's parameter, α, decision and counter registers after it."""
    ro = "ro"
    core = core_registers(
        ID_MAGIC, "0x52414454 ('RADT')", rows=rows, cols=cols, a_depth=a_depth, w_depth=w_depth,
        acc_depth=acc_depth, queue_depth=queue_depth, stream_bytes=stream_bytes, dtype=dtype,
        command_words=COMMANDS.words,
        control=Register("control", 0x20, [Field("start", 0, 1), Field("soft_reset", 1, 1), Field("no_skip", 2, 1)],
                         "wo", "start: run the queued commands (no_skip: compute every block, decisions still "
                               "reported); soft_reset: reset controller, queue, status, counters (memories keep)"),
        stall=Register("stall", 0x38, 32, ro, "cycles a stream held the controller back"),
        gemm_cycles=Register("gemm_cycles", 0x3C, 32, ro, "cycles of the core's last GEMM command"),
        commands=Register("commands", 0x40, 32, ro, "commands decoded (bad and dropped ones included) since start"))
    return RegisterMap("radit_accelerator", core + [
        Register("radit", 0x44, [Field("blocks", 0, 16, reset=blocks), Field("alpha_frac", 16, 8, reset=alpha_frac)],
                 ro, "DTSM blocks, fractional bits of alpha"),
        Register("timesteps", 0x48, 32, ro, "largest t of the alpha table", reset=timesteps),
        Register("code_depth", 0x4C, 32, ro, "code memory rows (4-bit codes of one input beat each)",
                 reset=code_depth),
        Register("reuse_depth", 0x50, 32, ro, "reuse memory rows (one output beat and its tlast each)",
                 reset=reuse_depth),
        Register("alpha", 0x54, [Field("value", 0, 16), Field("t", 16, 16)], "wo",
                 "alpha table write: alpha[t] := value (unsigned, ALPHA_FRAC fractional bits)"),
        Register("decision", 0x58, [Field("block", 0, 16), Field("skip", 16, 1), Field("theta_valid", 17, 1),
                                    Field("dtsm_skip", 18, 1), Field("valid", 19, 1)], ro,
                 "last BLOCK_BEGIN's decision: skip taken, theta set, the DTSM's own skip (taken unless "
                 "no_skip), valid (cleared by start)"),
        Register("delta", 0x5C, 32, ro, "last BLOCK_BEGIN's delta (code bits that differ)"),
        Register("theta", 0x60, 32, ro, "threshold in force for the last decision"),
        Register("blocks_done", 0x64, 32, ro, "BLOCK_ENDs closed since start"),
        Register("blocks_skipped", 0x68, 32, ro, "blocks skipped since start"),
        Register("dropped", 0x6C, 32, ro, "GEMM-program commands dropped in skipped blocks since start"),
        Register("a_rows_skipped", 0x70, 32, ro, "input scratchpad rows not loaded (dropped LOAD A) since start"),
        Register("w_rows_skipped", 0x74, 32, ro, "weight rows not loaded (dropped LOAD W) since start"),
    ], version=VERSION)
