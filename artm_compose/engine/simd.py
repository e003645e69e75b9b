"""Explicit 16-lane float32 vectors for numba kernels (LLVM ``<16 x float>``).

numba offers no vector type, and LLVM's auto-vectoriser, given the E-step's short loops over a
run-time topic count, keeps sums in memory, splits loops into main, epilogue and scalar parts
and reduces every dot product horizontally. These intrinsics let a kernel hold vectors in
registers across a loop and choose its own reductions. On a CPU without AVX-512 LLVM lowers a
16-lane operation into two 8-lane ones, so compiled code stays portable.

Arrays passed to ``load``/``store``/``add_to_f64`` are 1-D and C-contiguous; the index is that of
the first element; nothing is bounds-checked (the kernel's layout guarantees the range).
"""

from __future__ import annotations

from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic, models, register_model

LANES = 16
_F32 = ir.FloatType()
_VEC = ir.VectorType(_F32, LANES)
_VEC64 = ir.VectorType(ir.DoubleType(), LANES)
# Summation order of a reduction is ours to choose (see the kernel's precision note).
_REASSOC = ("reassoc",)


class Vector(types.Type):
    """Sixteen float32 lanes in one LLVM vector value."""

    def __init__(self) -> None:
        super().__init__(name="float32x16")


vector = Vector()


@register_model(Vector)
class _VectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _VEC)


def _is_array(ty, dtype) -> bool:
    return isinstance(ty, types.Array) and ty.dtype == dtype and ty.ndim == 1 and ty.layout == "C"


def _element_pointer(context, builder, array_type, array, index, index_type):
    data = context.make_array(array_type)(context, builder, array).data
    return builder.gep(data, [context.cast(builder, index, index_type, types.intp)])


def _splat(builder: ir.IRBuilder, value: ir.Value) -> ir.Value:
    """``value`` in every lane."""
    one = builder.insert_element(ir.Constant(_VEC, ir.Undefined), value, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(one, ir.Constant(_VEC, ir.Undefined),
                                  ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES))


@intrinsic
def load(typingctx, array, index):
    """``array[index:index + 16]`` as a vector."""
    if not (_is_array(array, types.float32) and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        pointer = _element_pointer(context, builder, signature.args[0], args[0], args[1], signature.args[1])
        return builder.load(builder.bitcast(pointer, _VEC.as_pointer()), align=4)
    return vector(array, index), codegen


@intrinsic
def store(typingctx, array, index, value):
    """``array[index:index + 16] = value``."""
    if not (_is_array(array, types.float32) and isinstance(index, types.Integer) and value == vector):
        return None

    def codegen(context, builder, signature, args):
        pointer = _element_pointer(context, builder, signature.args[0], args[0], args[1], signature.args[1])
        builder.store(args[2], builder.bitcast(pointer, _VEC.as_pointer()), align=4)
        return context.get_dummy_value()
    return types.none(array, index, value), codegen


@intrinsic
def splat(typingctx, value):
    """A vector with ``value`` (float32) in every lane."""
    if value != types.float32:
        return None

    def codegen(context, builder, signature, args):
        return _splat(builder, args[0])
    return vector(value), codegen


@intrinsic
def zero(typingctx):
    """A vector of zeros."""
    def codegen(context, builder, signature, args):
        return ir.Constant(_VEC, [0.0] * LANES)
    return vector(), codegen


@intrinsic
def fma(typingctx, a, b, c):
    """``a * b + c``, fused, lane by lane."""
    if not (a == b == c == vector):
        return None

    def codegen(context, builder, signature, args):
        function = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_VEC, [_VEC] * 3), "llvm.fma.v16f32")
        return builder.call(function, args)
    return vector(a, b, c), codegen


def _binary(operation: str):
    @intrinsic
    def binary(typingctx, a, b):
        if not (a == b == vector):
            return None

        def codegen(context, builder, signature, args):
            return getattr(builder, operation)(args[0], args[1])
        return vector(a, b), codegen
    return binary


add = _binary("fadd")
mul = _binary("fmul")


@intrinsic
def keep_at_least(typingctx, value, floor):
    """Lanes of ``value`` that are ``>= floor`` (float32), the others 0."""
    if not (value == vector and floor == types.float32):
        return None

    def codegen(context, builder, signature, args):
        bound = _splat(builder, args[1])
        return builder.select(builder.fcmp_ordered(">=", args[0], bound), args[0], ir.Constant(_VEC, [0.0] * LANES))
    return vector(value, floor), codegen


@intrinsic
def ratio(typingctx, numerator, denominator):
    """``numerator / denominator`` where the denominator is > 0, else 0 (lane by lane)."""
    if not (numerator == denominator == vector):
        return None

    def codegen(context, builder, signature, args):
        zeros = ir.Constant(_VEC, [0.0] * LANES)
        return builder.select(builder.fcmp_ordered(">", args[1], zeros), builder.fdiv(args[0], args[1]), zeros)
    return vector(numerator, denominator), codegen


@intrinsic
def total(typingctx, value):
    """The sum of the lanes (float32, in LLVM's reduction order)."""
    if value != vector:
        return None

    def codegen(context, builder, signature, args):
        function = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_F32, [_F32, _VEC]),
                                                  "llvm.vector.reduce.fadd.v16f32")
        return builder.call(function, [ir.Constant(_F32, 0.0), args[0]], fastmath=_REASSOC)
    return types.float32(value), codegen


def _shuffle(builder: ir.IRBuilder, a: ir.Value, b: ir.Value, lanes: list[int]) -> ir.Value:
    return builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(ir.IntType(32), len(lanes)), lanes))


def _halves(builder: ir.IRBuilder, a: ir.Value, b: ir.Value, width: int) -> ir.Value:
    """Adds a's and b's lane groups pairwise: groups of ``width`` alternate between a and b."""
    first, second = [], []
    for start in range(0, LANES, 2 * width):
        first += list(range(start, start + width)) + list(range(LANES + start, LANES + start + width))
        second += list(range(start + width, start + 2 * width)) + list(range(LANES + start + width,
                                                                              LANES + start + 2 * width))
    return builder.fadd(_shuffle(builder, a, b, first), _shuffle(builder, a, b, second))


@intrinsic
def totals4(typingctx, out, index, a, b, c, d):
    """``out[index + k]`` = the sum of the lanes of the k-th vector, four at once (a shuffle tree)."""
    if not (_is_array(out, types.float32) and isinstance(index, types.Integer) and a == b == c == d == vector):
        return None

    def codegen(context, builder, signature, args):
        va, vb, vc, vd = args[2:]
        ab = _halves(builder, va, vb, 8)  # lanes 0-7: a, 8-15: b (partial sums)
        cd = _halves(builder, vc, vd, 8)
        # Groups of four lanes: a, c, b, d.
        abcd = _halves(builder, ab, cd, 4)
        pairs = builder.fadd(abcd, _shuffle(builder, abcd, abcd, [i ^ 2 for i in range(LANES)]))
        sums = builder.fadd(pairs, _shuffle(builder, pairs, pairs, [i ^ 1 for i in range(LANES)]))
        pointer = _element_pointer(context, builder, signature.args[0], args[0], args[1], signature.args[1])
        for k, lane in enumerate((0, 8, 4, 12)):
            value = builder.extract_element(sums, ir.Constant(ir.IntType(32), lane))
            builder.store(value, builder.gep(pointer, [ir.Constant(ir.IntType(64), k)]))
        return context.get_dummy_value()
    return types.none(out, index, a, b, c, d), codegen


@intrinsic
def add_to_f64(typingctx, out, index, value):
    """``out[index:index + 16] += value`` for a float64 array (the lanes widened exactly)."""
    if not (_is_array(out, types.float64) and isinstance(index, types.Integer) and value == vector):
        return None

    def codegen(context, builder, signature, args):
        pointer = builder.bitcast(
            _element_pointer(context, builder, signature.args[0], args[0], args[1], signature.args[1]),
            _VEC64.as_pointer())
        old = builder.load(pointer, align=8)
        builder.store(builder.fadd(old, builder.fpext(args[2], _VEC64)), pointer, align=8)
        return context.get_dummy_value()
    return types.none(out, index, value), codegen

