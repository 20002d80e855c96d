"""One thin script per DVC stage, run from the repo root as ``python -m stages.<name>``
(the repo root first on ``sys.path``, so a copy of the repo runs its own code)."""
