"""Put this folder first on PYTHONPATH and Python starts as on a GPU box without
TensorFlow, DVC or dvclive: those packages cannot be found or imported (``find_spec``
returns None, ``import`` raises ModuleNotFoundError, ``importlib.metadata`` has no version
of them), whatever the environment holds."""

import sys
from importlib.machinery import PathFinder

HIDDEN = {"tensorflow", "tf_keras", "dvc", "dvclive"}


class _Hide:
    """The standard path finder, blind to the hidden packages."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN:
            return None
        return PathFinder.find_spec(name, path, target)

    @staticmethod
    def invalidate_caches():
        PathFinder.invalidate_caches()

    @staticmethod
    def find_distributions(*args, **kwargs):
        """Installed distributions (importlib.metadata), without the hidden ones."""
        for dist in PathFinder.find_distributions(*args, **kwargs):
            name = (dist.metadata["Name"] or "").lower().replace("-", "_")
            if name not in HIDDEN:
                yield dist


sys.meta_path[:] = [_Hide if f is PathFinder else f for f in sys.meta_path]
