"""Every disagreement class the fuzzer knows today, pinned as a minimal program.

Each test runs its program with torch and with tracegrad (eagerly, and compiled where the
class is about the compiler) and asserts that nothing differs. They are strict xfails: the
fix of a class turns its test into an XPASS failure; then remove the xfail mark and take
the feature out of ``features.KNOWN_OPEN`` so the CI slice covers it from then on.

The programs are written as the fuzzer prints them: inputs, the body (the function that is
compiled) and the tail (backward passes); ``W(t, k)`` is the fuzzer's deterministic weight.
"""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import tracegrad  # noqa: E402

from .campaign import check  # noqa: E402
from .features import KNOWN_OPEN, select  # noqa: E402
from .program import Program  # noqa: E402


def assert_agrees(inputs, body, tail="", compiled=False, call_under_no_grad=False):
    program = Program.from_source(inputs, body, tail, call_under_no_grad)
    mismatches = check(program, torch, tracegrad, compiled, select())
    assert not mismatches, "\n".join(map(str, mismatches)) + "\n\n" + program.render(compiled=compiled)


def known(feature):
    # raises=AssertionError: a broken harness (any other exception) is a failure, not the bug
    return pytest.mark.xfail(strict=True, raises=AssertionError, reason=KNOWN_OPEN[feature])


# ------------------------------------------------------------------ issue 9 item 1: views
@known("inplace_view")
def test_fill_through_a_row_view_is_seen_by_the_base():
    assert_agrees("x0 = T.zeros(2, 3, dtype=T.float64)", "x0[0].fill_(5)")


@known("inplace_view")
def test_mul_through_a_slice_of_a_clone_reaches_the_gradient():
    assert_agrees("x0 = T.ones(3, dtype=T.float64, requires_grad=True)",
                  "v0 = x0.clone()\nv0[1:].mul_(3)", "v0.backward(W(v0))")


@known("inplace_view")
def test_add_through_a_transpose_view():
    assert_agrees("x0 = T.tensor([[0.5, 1.0], [2.0, -1.0]], dtype=T.float64, requires_grad=True)",
                  "v0 = x0 * 1\nv0.t().add_(x0)\nv1 = v0 * 2", "v1.backward(W(v1))")


@known("alias_no_grad")
def test_a_view_made_under_no_grad_requires_grad():
    assert_agrees("x0 = T.tensor([[1.0, 2.0]], dtype=T.float64, requires_grad=True)",
                  "with T.no_grad():\n    v0 = x0.squeeze()")


@known("alias_no_grad")
def test_an_empty_slice_made_under_no_grad_requires_grad():
    assert_agrees("x0 = T.tensor([1.0, 2.0], dtype=T.float64, requires_grad=True)",
                  "with T.no_grad():\n    v0 = x0[1:1]")


@known("trivial_views")
def test_t_of_a_0d_tensor_is_a_view_with_TBackward0():
    assert_agrees("x0 = T.tensor(-1.0, dtype=T.float64, requires_grad=True)", "v0 = x0.t()",
                  "v0.backward()")


@known("trivial_views")
def test_flatten_of_a_1d_leaf_returns_the_leaf():
    assert_agrees("x0 = T.tensor([0.5, -0.5], dtype=T.float64, requires_grad=True)",
                  "v0 = x0.flatten()\nv1 = v0 * v0", "v1.backward(W(v1))")


@known("version")
def test_a_view_shares_its_base_version_counter():
    assert_agrees("x0 = T.zeros(3, dtype=T.float64)", "v0 = x0[0:2]\nx0.add_(1)")


@known("version")
def test_compiled_in_place_bumps_the_version():
    assert_agrees("x0 = T.tensor([1.0, 2.0], dtype=T.float64)", "v0 = x0.clone()\nv0.fill_(2.5)",
                  compiled=True)


# ------------------------------------------------------------------ item 2: 0-d tensors
@known("dim_on_0d")
def test_sum_over_dim_0_of_a_0d_tensor():
    assert_agrees("x0 = T.tensor(1.5, dtype=T.float64, requires_grad=True)", "v0 = x0.sum(0)",
                  "v0.backward()")


@known("dim_on_0d")
def test_argmax_over_dim_minus_1_of_a_0d_tensor():
    assert_agrees("x0 = T.tensor(1.5, dtype=T.float64)", "v0 = x0.argmax(-1)")


@known("dim_on_0d")
def test_nonzero_of_a_0d_tensor():
    assert_agrees("x0 = T.tensor(1.5, dtype=T.float64)", "v0 = x0.nonzero()")


@known("dim_on_0d")
def test_sum_to_size_of_a_0d_tensor_is_a_sum():
    assert_agrees("x0 = T.tensor(1.0, dtype=T.float64, requires_grad=True)", "v0 = x0.sum_to_size(())")


# ------------------------------------------------------------------ item 3: errors, dtypes
@known("invalid")
def test_view_of_a_transposed_tensor_raises():
    assert_agrees("x0 = T.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=T.float64)",
                  "v0 = x0.t().view(-1)")


@known("invalid")
def test_outer_of_a_2d_tensor_raises():
    assert_agrees("x0 = T.tensor([[1.0, 2.0]], dtype=T.float64)\n"
                  "x1 = T.tensor([1.0, 2.0], dtype=T.float64)", "v0 = T.outer(x0, x1)")


@known("invalid")
def test_matmul_of_float32_and_float64_raises():
    assert_agrees("x0 = T.tensor([[1.0, 2.0]], dtype=T.float32)\n"
                  "x1 = T.tensor([[1.0], [2.0]], dtype=T.float64)", "v0 = x0 @ x1")


@known("scalar_where")
def test_where_of_two_python_floats_is_float32():
    assert_agrees("x0 = T.tensor([1.0, -1.0], dtype=T.float64)", "v0 = T.where(x0 > 0, 2.0, -1.0)")


@known("alpha")
def test_sub_with_alpha():
    assert_agrees("x0 = T.tensor([1.0, 2.0], dtype=T.float64, requires_grad=True)\n"
                  "x1 = T.tensor([0.5, -1.0], dtype=T.float64)",
                  "v0 = x0.sub(x1, alpha=2)", "v0.backward(W(v0))")


# ------------------------------------------------------------------ a silent wrong gradient
@known("clamp_tensor")
def test_clamp_with_a_tensor_bound_at_the_bound_gives_the_gradient_to_the_input():
    assert_agrees("x0 = T.tensor([0.0, 0.5], dtype=T.float64, requires_grad=True)\n"
                  "x1 = T.tensor([0.0, 1.0], dtype=T.float64, requires_grad=True)",
                  "v0 = x0.clamp(max=x1)", "v0.backward(W(v0))")


@known("std_zero")
def test_std_of_one_element_has_a_zero_gradient():
    assert_agrees("x0 = T.tensor(2.0, dtype=T.float64, requires_grad=True)",
                  "v0 = x0.std(unbiased=False)", "v0.backward()")


@known("std_zero")
def test_std_of_equal_values_has_a_zero_gradient():
    assert_agrees("x0 = T.tensor([0.5, 0.5], dtype=T.float64, requires_grad=True)",
                  "v0 = x0.std()", "v0.backward()")


@known("second_order_kinks")
def test_relu_gradient_under_create_graph_requires_grad():
    assert_agrees("x0 = T.tensor([0.5, -1.0], dtype=T.float64, requires_grad=True)",
                  "v0 = T.relu(x0)",
                  "g0, = T.autograd.grad([v0], [x0], grad_outputs=[W(v0)], create_graph=True)")


# ------------------------------------------------------------------ item 4: compiled vs eager
# fixed (issue 9 item 4b): kept as a plain regression test
def test_enable_grad_inside_a_compiled_function_called_under_no_grad():
    assert_agrees("x0 = T.tensor([1.0, 2.0], dtype=T.float64, requires_grad=True)",
                  "with T.enable_grad():\n    v0 = x0 * x0", "v0.backward(W(v0))",
                  compiled=True, call_under_no_grad=True)


# fixed (issue 9 item 4a): kept as a plain regression test
def test_retain_grad_on_a_non_leaf_input_of_a_compiled_function_fires_once():
    assert_agrees("x0_leaf = T.tensor([1.0, 2.0], dtype=T.float64, requires_grad=True)\n"
                  "x0 = x0_leaf * 1.5\nx0.retain_grad()",
                  "v0 = x0 + x0", "v0.backward(W(v0))", compiled=True)


@known("hooks")
def test_autograd_grad_of_a_hooked_non_leaf_and_its_leaf():
    # PyTorch: with the leaf among the inputs too, the non-leaf's gradient is captured before
    # its hook runs (3, not 6), while the leaf's gets the hooked one (9)
    assert_agrees("x0_leaf = T.tensor([1.0, 2.0], dtype=T.float64, requires_grad=True)\n"
                  "x0 = x0_leaf * 1.5\nx0.register_hook(lambda g: g * 2)",
                  "v0 = x0 * 3", "g0, g1 = T.autograd.grad([v0], [x0_leaf, x0], grad_outputs=[W(v0)])")


@known("partial_backward")
def test_compiled_grad_of_an_input_the_backward_does_not_reach_is_none():
    assert_agrees("x0 = T.tensor([1.0, 2.0], dtype=T.float64, requires_grad=True)\n"
                  "x1 = T.tensor([3.0], dtype=T.float64, requires_grad=True)",
                  "v0 = x0 * 2\nv1 = x1 * 2", "v0.backward(W(v0))", compiled=True)


@known("backward_after_free")
def test_compiled_backward_twice_without_saved_tensors_does_not_raise():
    assert_agrees("x0 = T.tensor([1.0, 2.0], dtype=T.float64, requires_grad=True)",
                  "v0 = x0.clone()", "v0.backward(W(v0))\nv0.backward(W(v0))", compiled=True)


@known("backward_after_free")
def test_compiled_backward_after_a_second_order_pass_freed_the_graph_raises():
    assert_agrees("x0 = T.tensor([1.0, 2.0], dtype=T.float64, requires_grad=True)",
                  "v0 = x0 * x0 * x0",
                  "g0, = T.autograd.grad([v0], [x0], grad_outputs=[W(v0)], create_graph=True, retain_graph=True)\n"
                  "gg0, = T.autograd.grad([(g0 * W(g0, 1)).sum()], [x0])\n"
                  "g0, = T.autograd.grad([v0], [x0], grad_outputs=[W(v0)])", compiled=True)


@known("inplace_saved")
def test_compiled_in_place_change_of_a_saved_tensor_raises_only_at_backward():
    assert_agrees("x0 = T.tensor([1.0, 2.0], dtype=T.float64, requires_grad=True)",
                  "v0 = x0.exp()\nv0.mul_(2)", compiled=True)


@known("inplace_input")
def test_compiled_in_place_op_on_a_non_leaf_input():
    assert_agrees("x0_leaf = T.tensor([1.0, 2.0], dtype=T.float64, requires_grad=True)\n"
                  "x0 = x0_leaf * 1.5", "x0.mul_(2)", "x0.backward(W(x0))", compiled=True)


@known("inplace_input")
def test_compiled_in_place_change_of_an_input_before_an_exception_is_kept():
    # eager: x0 is [2, 3] when reshape raises; compiled: the trace raised before write-back
    assert_agrees("x0 = T.tensor([1.0, 2.0], dtype=T.float64)", "x0.add_(1)\nv0 = x0.reshape(3)",
                  compiled=True)


@known("requires_grad_inside")
def test_compiled_requires_grad_on_a_detached_tensor():
    assert_agrees("x0 = T.tensor([1.0, 2.0], dtype=T.float64, requires_grad=True)",
                  "v0 = x0.detach().requires_grad_()", compiled=True)


# ------------------------------------------------------------------ item 7: names
@known("grad_fn_name")
def test_mse_loss_grad_fn_name():
    assert_agrees("x0 = T.tensor([1.0, 2.0], dtype=T.float64, requires_grad=True)\n"
                  "x1 = T.tensor([0.0, 1.0], dtype=T.float64)",
                  "v0 = T.nn.functional.mse_loss(x0, x1)")


@known("grad_fn_name")
def test_grad_fn_class_is_named_after_the_node():
    assert_agrees("x0 = T.tensor([1.0, 2.0], dtype=T.float64, requires_grad=True)", "v0 = x0.amax()")
