"""The GPU box: what the driver lists (``nvidia``), which GPUs a stage may use (``lease``),
whether the backend can use them (``guard``), the install line (``install``), and the
user's checks (``doctor``: ``make doctor``; ``check``: ``make gpu-check``).

Every question about the machine's NVIDIA GPUs goes through :mod:`doodle.gpu.nvidia`,
which reads ``nvidia-smi``: the one tool every NVIDIA box has, and the one a stand-in can
answer in tests. Nothing here imports a backend at module level.
"""
