"""The renderer's fast path: its per-pixel work as explicit 8-lane LLVM vector code.

A row of a capsule at 64-128 px is only 3-8 pixels wide, too short for LLVM's loop
vectoriser (and numba leaves the SLP vectoriser off), and scalar code pays a square root
per pixel; these four primitives do 8 pixels at a time and triple the renderer's speed.
They are written against ``llvmlite``'s IR builder and ``numba.extending.intrinsic``, which
a numba/llvmlite upgrade can break: :mod:`doodle.rendering.raster` compiles :func:`probe` first and
falls back to plain-numba versions of the same arithmetic (identical images) if it fails.

Each primitive works on ``LANES`` consecutive float32 pixels of a padded row:

* ``cover8``: ``cov[q:q+8] = max(cov[q:q+8], coverage of pixels px0 + 0..7)``;
* ``cover8_rgb``: the same, and where coverage grows, the two per-pixel colours (order3, time3);
* ``blend8`` / ``blend8_rgb``: blend a stroke's coverage layer over the canvas and clear it.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

LANES = 8  # float32 lanes per block: one AVX register

_F32 = ir.FloatType()
_I32 = ir.IntType(32)
_VEC = ir.VectorType(_F32, LANES)
_LANE_IDS = ir.Constant(_VEC, [float(i) for i in range(LANES)])
_ZEROS = ir.Constant(_VEC, [0.0] * LANES)
_ONES = ir.Constant(_VEC, [1.0] * LANES)


def _splat(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    undef = ir.Constant(_VEC, ir.Undefined)
    v = builder.insert_element(undef, x, ir.Constant(_I32, 0))
    return builder.shuffle_vector(v, undef, ir.Constant(ir.VectorType(_I32, LANES), [0] * LANES))


def _vmin(builder: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return builder.select(builder.fcmp_ordered("<", x, y), x, y)


def _vmax(builder: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return builder.select(builder.fcmp_ordered(">", x, y), x, y)


def _lanes_ptr(context, builder, aryty, ary, q: ir.Value) -> ir.Value:
    """Pointer to the 8 floats ``ary[q:q + 8]`` (callers guarantee they are in bounds)."""
    data = context.make_array(aryty)(context, builder, value=ary).data
    return builder.bitcast(builder.gep(data, [q], inbounds=True), _VEC.as_pointer())


def _load8(builder: ir.IRBuilder, ptr: ir.Value) -> ir.Value:
    # The explicit type keeps this valid with LLVM's opaque pointers too.
    return builder.load(ptr, align=4, typ=_VEC)


def _capsule_lanes(builder, px0, py, dx, dy, inv_l2, r, inv_ramp):
    """Coverage of pixels ``px0 + 0..7`` (row offset ``py``) by the capsule; also ``t``."""
    px = builder.fadd(_splat(builder, px0), _LANE_IDS)
    vdx = _splat(builder, dx)
    vdy = _splat(builder, dy)
    vpy = _splat(builder, py)
    t = builder.fmul(
        builder.fadd(builder.fmul(px, vdx), builder.fmul(vpy, vdy)), _splat(builder, inv_l2)
    )
    t = _vmin(builder, _vmax(builder, t, _ZEROS), _ONES)
    ex = builder.fsub(px, builder.fmul(t, vdx))
    ey = builder.fsub(vpy, builder.fmul(t, vdy))
    sqrt = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(_VEC, [_VEC]), "llvm.sqrt.v8f32"
    )
    dist = builder.call(sqrt, [builder.fadd(builder.fmul(ex, ex), builder.fmul(ey, ey))])
    c = builder.fmul(builder.fsub(_splat(builder, r), dist), _splat(builder, inv_ramp))
    return _vmin(builder, c, _ONES), t


@intrinsic
def cover8(typingctx, cov, q, px0, py, dx, dy, inv_l2, r, inv_ramp):
    """``cov[q:q+8] = max(cov[q:q+8], coverage)`` for pixels ``px0 + 0..7`` of a row."""
    f = types.float32
    sig = types.void(cov, types.intp, f, f, f, f, f, f, f)

    def codegen(context, builder, signature, args):
        ptr = _lanes_ptr(context, builder, signature.args[0], args[0], args[1])
        c, _ = _capsule_lanes(builder, *args[2:])
        builder.store(_vmax(builder, c, _load8(builder, ptr)), ptr, align=4)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def cover8_rgb(
    typingctx, cov, col1, col2, q, px0, py, dx, dy, inv_l2, r, inv_ramp, p1a, d1, p2a, d2
):
    """:func:`cover8`, and where the coverage grows, ``col? = p?a + d? * t`` (t along the
    segment): the colour channels take the colour of the segment covering a pixel most."""
    f = types.float32
    sig = types.void(cov, col1, col2, types.intp, f, f, f, f, f, f, f, f, f, f, f)

    def codegen(context, builder, signature, args):
        q = args[3]
        ptr = _lanes_ptr(context, builder, signature.args[0], args[0], q)
        ptr1 = _lanes_ptr(context, builder, signature.args[1], args[1], q)
        ptr2 = _lanes_ptr(context, builder, signature.args[2], args[2], q)
        c, t = _capsule_lanes(builder, *args[4:11])
        old = _load8(builder, ptr)
        more = builder.fcmp_ordered(">", c, old)
        for p, a, dv in ((ptr1, args[11], args[12]), (ptr2, args[13], args[14])):
            colour = builder.fadd(_splat(builder, a), builder.fmul(_splat(builder, dv), t))
            builder.store(builder.select(more, colour, _load8(builder, p)), p, align=4)
        builder.store(builder.select(more, c, old), ptr, align=4)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def blend8(typingctx, acc, cov, q, g0):
    """``acc[q:q+8] += (g0 - acc) * cov[q:q+8]``, then clear that part of ``cov``."""
    sig = types.void(acc, cov, types.intp, types.float32)

    def codegen(context, builder, signature, args):
        pa = _lanes_ptr(context, builder, signature.args[0], args[0], args[2])
        pc = _lanes_ptr(context, builder, signature.args[1], args[1], args[2])
        v = _load8(builder, pa)
        c = _load8(builder, pc)
        builder.store(
            builder.fadd(v, builder.fmul(builder.fsub(_splat(builder, args[3]), v), c)), pa, align=4
        )
        builder.store(_ZEROS, pc, align=4)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def blend8_rgb(typingctx, acc, cov, col1, col2, q, plane, g0):
    """:func:`blend8` for the three planes of ``acc`` (``plane`` floats apart); channels 1
    and 2 blend towards the per-pixel colours ``col1``/``col2``."""
    sig = types.void(acc, cov, col1, col2, types.intp, types.intp, types.float32)

    def codegen(context, builder, signature, args):
        acc_t, cov_t, c1_t, c2_t = signature.args[:4]
        q, plane = args[4], args[5]
        pc = _lanes_ptr(context, builder, cov_t, args[1], q)
        c = _load8(builder, pc)
        targets = (
            _splat(builder, args[6]),
            _load8(builder, _lanes_ptr(context, builder, c1_t, args[2], q)),
            _load8(builder, _lanes_ptr(context, builder, c2_t, args[3], q)),
        )
        for ch, colour in enumerate(targets):
            qc = builder.add(q, builder.mul(plane, ir.Constant(plane.type, ch)))
            pa = _lanes_ptr(context, builder, acc_t, args[0], qc)
            v = _load8(builder, pa)
            builder.store(builder.fadd(v, builder.fmul(builder.fsub(colour, v), c)), pa, align=4)
        builder.store(_ZEROS, pc, align=4)
        return context.get_dummy_value()

    return sig, codegen


@numba.njit(cache=True, nogil=True)
def probe() -> float:
    """Compile and run every primitive once (raises if the vector code cannot be built)."""
    n = 2 * LANES
    cov = np.zeros(n, np.float32)
    col1 = np.zeros(n, np.float32)
    col2 = np.zeros(n, np.float32)
    acc = np.zeros(3 * n, np.float32)
    f = np.float32
    cover8(cov, 0, f(-1.0), f(0.0), f(4.0), f(0.0), f(1 / 16), f(2.0), f(1.0))
    cover8_rgb(
        cov,
        col1,
        col2,
        LANES,
        f(-1.0),
        f(0.0),
        f(4.0),
        f(0.0),
        f(1 / 16),
        f(2.0),
        f(1.0),
        f(255.0),
        f(-10.0),
        f(255.0),
        f(-20.0),
    )
    blend8(acc, cov, 0, f(255.0))
    blend8_rgb(acc, cov, col1, col2, LANES, n, f(200.0))
    return float(acc.sum())
