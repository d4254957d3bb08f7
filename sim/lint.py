"""``make lint``: Verilator ``--lint-only -Wall`` over emitted Verilog.

Waivers with their reasons are in ``lint.vlt``. UNUSEDSIGNAL is filtered here:
Amaranth writes a named alias wire (``assign name = net;``) for every named
signal and every field of a packed payload, whether the design reads it or
not. A warning about such an alias is waived; any other unused signal (an
input port nobody reads, a register nobody uses) is a finding.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from .runner import setup_toolchain

WAIVERS = Path(__file__).resolve().parent / "lint.vlt"
_WARN = re.compile(r"^%(Warning|Error)-(\w+): ([^:]+):(\d+):\d+: (.*)$")
_UNUSED = re.compile(r"(?:Signal is not used|Bits of signal are not used): '([^']+)'")


def lint(files: list[Path], top: str) -> list[str]:
    """Lint one design; return the findings that no waiver covers."""
    setup_toolchain()
    cmd = ["verilator", "--lint-only", "-Wall", "-Wno-fatal", "--top-module", top,
           str(WAIVERS)] + [str(f) for f in files]
    out = subprocess.run(cmd, capture_output=True, text=True)
    text = "\n".join(Path(f).read_text() for f in files)
    findings = []
    for line in (out.stdout + out.stderr).splitlines():
        m = _WARN.match(line)
        if not m:
            continue
        kind, rule, path, lineno, message = m.groups()
        if kind == "Error" and rule in ("", None):
            continue
        if rule == "UNUSEDSIGNAL":
            u = _UNUSED.search(message)
            if u and _is_alias(text, u.group(1)):
                continue
        findings.append(f"{Path(path).name}:{lineno}: {rule}: {message}")
    if out.returncode != 0 and not findings:
        findings.append(f"verilator exited {out.returncode}: {(out.stderr or out.stdout)[-500:]}")
    return findings


def _is_alias(text: str, name: str) -> bool:
    # Amaranth writes the name plain or as an escaped identifier (\name ).
    for form in (name, "\\" + name + " "):
        if re.search(r"^\s*assign\s+" + re.escape(form) + r"\s*=", text, re.M):
            return True
    return False
