"""``alexnet_keras.optimize(model)``: the opt-in fast path, one call, the literal model untouched.

Three changes, together or not at all, each the same arithmetic as the literal layer
(docs/benchmarks.md measures them):
XLA (Keras's own ``jit_compile``), which fuses the LRN's chain of element-wise ops; grouped
convolutions run as their towers, one ``ops.conv`` per group, because XLA's CPU convolution of a
grouped kernel is slower than the two halves (on JAX by an order of magnitude); and dense kernels
stored as ``(units, input_dim)``, PyTorch's ``nn.Linear`` layout, because XLA's CPU dot reads the
other layout slowly when a batch has few rows (without XLA it is the other way round, so the
layers change only where XLA is on). Written with ``keras.ops`` only, like the models.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from alexnet_keras.model import AlexNetModel
from alexnet_keras.weights import layer_weights, set_layer_weights

# Variants that predict slower under XLA on CPU, which optimize leaves to Keras: cifar, whose small
# 4x4 and 2x2 maps XLA's CPU convolutions handle badly (measured in docs/benchmarks.md).
XLA_SLOWER = frozenset({"cifar"})


@keras.saving.register_keras_serializable(package="alexnet_keras")
class TowerConv2D(layers.Conv2D):
    """``Conv2D`` with ``groups > 1`` computed tower by tower, as the 2012 network ran on two GPUs:
    the same kernel, config and weights as the ``Conv2D`` it replaces, the same numbers."""

    def convolution_op(self, inputs, kernel):
        if self.groups == 1:
            return super().convolution_op(inputs, kernel)
        axis = -1 if self.data_format == "channels_last" else 1
        towers = zip(ops.split(inputs, self.groups, axis=axis), ops.split(kernel, self.groups, axis=-1))
        return ops.concatenate(
            [
                ops.conv(x, k, strides=list(self.strides), padding=self.padding,
                         dilation_rate=self.dilation_rate, data_format=self.data_format)
                for x, k in towers
            ],
            axis=axis,
        )


@keras.saving.register_keras_serializable(package="alexnet_keras")
class TransposedDense(layers.Layer):
    """``Dense`` whose kernel is stored ``(units, input_dim)``, as ``nn.Linear`` stores its weight;
    ``x @ kernel.T + bias``, the same product as ``Dense``'s. Ports and weight files see the
    kernel in ``Dense``'s layout (``alexnet_keras.weights``), so a fast model ports like a plain one."""

    kernel_transposed = True

    def __init__(self, units: int, activation=None, use_bias: bool = True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.input_spec = layers.InputSpec(min_ndim=2)

    @classmethod
    def replacing(cls, dense: layers.Dense) -> "TransposedDense":
        """An unbuilt ``TransposedDense`` with ``dense``'s config (its name included)."""
        config = dense.get_config()
        unsupported = {k: config.get(k) for k in ("lora_rank", "quantization_config") if config.get(k)}
        if unsupported or getattr(dense, "quantization_mode", None):
            raise ValueError(
                f"optimize() rewrites plain Dense layers; {dense.name!r} has {unsupported or 'a quantized kernel'}. "
                "Optimize the model before adding LoRA or quantizing it."
            )
        keep = ("name", "trainable", "dtype", "units", "activation", "use_bias", "kernel_initializer",
                "bias_initializer", "kernel_regularizer", "bias_regularizer", "kernel_constraint",
                "bias_constraint", "activity_regularizer")
        return cls.from_config({k: config[k] for k in keep if k in config})

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=(self.units, input_shape[-1]), initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer, constraint=self.kernel_constraint,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(self.units,), initializer=self.bias_initializer,
                regularizer=self.bias_regularizer, constraint=self.bias_constraint,
            )
        self.input_spec = layers.InputSpec(min_ndim=2, axes={-1: input_shape[-1]})

    def call(self, inputs):
        # einsum, not matmul of a transpose: under XLA the latter took 108 ms for fc1 at batch 1
        # against 8 ms (the transpose is materialized), and both took 52 ms at batch 32
        x = ops.einsum("...i,oi->...o", inputs, self.kernel)
        if self.bias is not None:
            x = ops.add(x, self.bias)
        return self.activation(x)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": keras.constraints.serialize(self.kernel_constraint),
            "bias_constraint": keras.constraints.serialize(self.bias_constraint),
        }


def _copy_layer(layer: layers.Layer) -> layers.Layer:
    return layer.__class__.from_config(layer.get_config())


def _xla_layer(layer: layers.Layer) -> layers.Layer:
    """The twin of a layer that is faster under XLA (and only there: without XLA, TensorFlow ran
    the transposed kernel's product 4x slower than ``Dense``'s), or a plain copy."""
    if type(layer) is layers.Conv2D and layer.groups > 1:
        return TowerConv2D.from_config(layer.get_config())
    if type(layer) is layers.Dense:
        return TransposedDense.replacing(layer)
    return _copy_layer(layer)


# --8<-- [start:optimize]
def optimize(model: keras.Model) -> keras.Model:
    """A new model computing what ``model`` computes, faster under ``predict``/``fit``/``evaluate``:
    XLA on (``jit_compile=True``), with grouped convolutions as towers and dense kernels in
    ``nn.Linear``'s layout, on the backends where Keras takes that switch; for the variants XLA
    slows down (cifar), and elsewhere, a plain copy. ``model`` is left as it is; its weights are copied, and its compile settings
    too (an optimizer starts fresh). Ports and weight files read it as they read the plain model.
    Saved and reloaded, it keeps its layers and loses the XLA switch, which
    is a setting of the running model: call ``optimize`` again after loading."""
    if not isinstance(model, keras.Model):
        raise TypeError(f"optimize() takes a Keras model; found {type(model).__name__}")
    xla = getattr(model, "variant", None) not in XLA_SLOWER and keras.backend.backend() in ("tensorflow", "jax")
    fast = keras.models.clone_model(model, clone_function=_xla_layer if xla else _copy_layer)
    set_layer_weights(fast, layer_weights(model))  # each kernel in its layer's own layout
    if isinstance(model, AlexNetModel):
        fast.variant, fast.options = model.variant, dict(model.options)
    if model.compiled:
        fast.compile_from_config(model.get_compile_config())
    if xla:
        fast.jit_compile = True
        fast.predict_function = fast.train_function = fast.test_function = None  # rebuilt with XLA
    return fast
# --8<-- [end:optimize]
