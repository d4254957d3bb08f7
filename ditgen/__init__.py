"""The ``ditgen`` command line: the one package that imports every layer.

See :mod:`ditgen.cli` and ``docs/ARCHITECTURE.md``.
"""
