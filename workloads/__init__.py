"""Real diffusion workloads: a small class-conditional DiT trained on sklearn's
8x8 digits, its DDIM activation traces, and hooks that run the RADiT, Ditto
and ORBIS golden models inside its sampler.

Modules (PyTorch is imported only by those that need it; a missing install
raises ``ModuleNotFoundError`` saying how to get it):

* ``workloads.dit``: the model, DDPM schedule, DDIM sampler, checkpoints;
* ``workloads.train``: training (``python -m workloads.train``);
* ``workloads.data``: the digits and the SVC used to judge samples;
* ``workloads.hooks``: the INT8 path and the RADiT / Ditto / ORBIS hooks;
* ``workloads.traces``: ``make traces`` (``python -m workloads.traces``),
  :func:`workloads.traces.load_traces` (NumPy only) and the committed
  checkpoint's path ``workloads.traces.CHECKPOINT``.

Nothing is defined here: an editable install made before this file existed
imports ``workloads`` as a namespace package, which skips this file.
"""
