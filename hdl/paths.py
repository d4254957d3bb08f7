"""Where the repository and its generated files are: the one definition of both.

``BUILD`` (default ``<repository>/build``, overridden by ``DITGEN_BUILD``)
holds everything generated; nothing under it is committed.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ROOT", "BUILD", "DOCS"]

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("DITGEN_BUILD", ROOT / "build"))
DOCS = ROOT / "docs"
