"""``alexnet_keras.optimize(model)``: the opt-in fast path, Keras's own switch named once.

XLA fuses the LRN's chain of element-wise ops, where the paper variant spends much of its time;
on other variants and other CPUs it can be slower (docs/benchmarks.md), which is why Keras's
``jit_compile="auto"`` leaves it off on CPU and why it is not on by default here either.
"""

from __future__ import annotations

import keras

# Variants that predict slower under XLA on CPU, which optimize leaves to Keras: cifar, whose small
# 4x4 and 2x2 maps XLA's CPU convolutions handle badly (measured in docs/benchmarks.md).
XLA_SLOWER = frozenset({"cifar"})


# --8<-- [start:optimize]
def optimize(model: keras.Model) -> keras.Model:
    """Turn XLA on for ``model.predict``/``fit``/``evaluate`` (what ``model.compile(jit_compile=True)``
    does) on the backends where Keras takes that switch, for the variants it speeds up; return the
    same model. The switch is not saved with the model (``model.save`` then ``load_model`` gives the
    plain path): call it again after loading."""
    if getattr(model, "variant", None) in XLA_SLOWER:
        return model  # measured slower with XLA: Keras's own choice is the fast path
    if keras.backend.backend() in ("tensorflow", "jax"):
        model.jit_compile = True
        model.predict_function = None  # rebuilt with XLA on the next predict
        model.train_function = model.test_function = None
    return model
# --8<-- [end:optimize]
