"""``alexnet_keras.optimize(model)``: the opt-in fast path, Keras's own switch named once.

XLA fuses the LRN's chain of element-wise ops, where the paper variant spends much of its time;
on other variants and other CPUs it can be slower (docs/benchmarks.md), which is why Keras's
``jit_compile="auto"`` leaves it off on CPU and why it is not on by default here either.
"""

from __future__ import annotations

import keras


# --8<-- [start:optimize]
def optimize(model: keras.Model) -> keras.Model:
    """Turn XLA on for ``model.predict``/``fit``/``evaluate`` (what ``model.compile(jit_compile=True)``
    does) on the backends where Keras takes that switch; return the same model. The switch is not
    saved with the model (``model.save`` then ``load_model`` gives the plain path): call it again
    after loading."""
    if keras.backend.backend() in ("tensorflow", "jax"):
        model.jit_compile = True
        model.predict_function = None  # rebuilt with XLA on the next predict
        model.train_function = model.test_function = None
    return model
# --8<-- [end:optimize]
