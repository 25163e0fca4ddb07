"""Cheaper numpy views of vesin's output buffers.

vesin's Python wrapper (0.6) turns each output buffer into a numpy array with ``numpy.ctypeslib.as_array``,
which creates a new ctypes array type for every new pair count. Across a dataset the pair count changes from
structure to structure, so that costs ~0.04 ms per buffer (five buffers per search, about a tenth of building a
graph) and leaves one ctypes type behind per distinct count. `install` replaces that helper with the same view
made through numpy's array interface: same memory, shape and dtype, no new type. It is installed only when
vesin's helper has the signature it was written for; anything else (another vesin version, a GPU buffer) goes
to vesin's own helper.
"""

from __future__ import annotations

import ctypes
import inspect

import numpy as np

_SIGNATURE = ["ptr", "shape", "dtype", "owner", "device"]
_TYPESTR = {ctypes.c_double: np.dtype(np.float64).str, ctypes.c_float: np.dtype(np.float32).str,
            ctypes.c_int32: np.dtype(np.int32).str, ctypes.c_size_t: np.dtype(np.uintp).str}


class _Buffer:
    """A view's base: the array interface of vesin's buffer, and the object that owns that memory."""

    __slots__ = ("__array_interface__", "owner")

    def __init__(self, address: int, shape: tuple[int, ...], typestr: str, owner) -> None:
        self.__array_interface__ = {"data": (address, False), "shape": shape, "typestr": typestr, "version": 3}
        self.owner = owner


def install() -> bool:
    """Replace vesin's buffer-to-numpy helper where it is the expected one; True when installed (now or before)."""
    try:
        from vesin import _neighbors
    except ImportError:
        return False
    original = getattr(_neighbors, "_ptr_to_numpy", None)
    if original is None:
        return False
    if getattr(original, "_crystograph_view", False):
        return True
    cpu = getattr(_neighbors, "VesinCPU", None)
    try:
        params = list(inspect.signature(original).parameters)
    except (TypeError, ValueError):
        return False
    if params != _SIGNATURE or cpu is None:
        return False

    def ptr_to_numpy(ptr, shape, dtype, owner, device):
        typestr = _TYPESTR.get(dtype)
        if typestr is None or device.type != cpu:
            return original(ptr, shape, dtype, owner, device)
        address = ctypes.cast(ptr, ctypes.c_void_p).value
        return np.asarray(_Buffer(address, tuple(int(n) for n in shape), typestr, owner))

    ptr_to_numpy._crystograph_view = True
    ptr_to_numpy.original = original
    _neighbors._ptr_to_numpy = ptr_to_numpy
    return True
