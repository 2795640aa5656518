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
# Kernel regularizers that see every element alike, so a transposed kernel gives the same penalty.
_ELEMENTWISE = (keras.regularizers.L1, keras.regularizers.L2, keras.regularizers.L1L2)


@keras.saving.register_keras_serializable(package="alexnet_keras")
class TowerConv2D(layers.Conv2D):
    """``Conv2D`` with ``groups > 1`` computed tower by tower, as the 2012 network ran on two GPUs:
    the same kernel, config and weights as the ``Conv2D`` it replaces, the same numbers."""

    def convolution_op(self, inputs, kernel):
        # channels-first stays one call: TensorFlow's CPU convolution takes no NCHW, Conv2D's handles it
        if self.groups == 1 or self.data_format != "channels_last":
            return super().convolution_op(inputs, kernel)
        towers = zip(ops.split(inputs, self.groups, axis=-1), ops.split(kernel, self.groups, axis=-1))
        return ops.concatenate(
            [
                ops.conv(x, k, strides=list(self.strides), padding=self.padding,
                         dilation_rate=self.dilation_rate, data_format=self.data_format)
                for x, k in towers
            ],
            axis=-1,
        )


@keras.saving.register_keras_serializable(package="alexnet_keras")
class TransposedDense(layers.Layer):
    """``Dense`` whose kernel is stored ``(units, input_dim)``, as ``nn.Linear`` stores its weight;
    ``x @ kernel.T + bias``, the same product as ``Dense``'s. Ports and ``.safetensors`` files see the
    kernel in ``Dense``'s layout (``alexnet_keras.weights``), and a fresh one is initialized as
    ``Dense`` initializes its own (the same fan-in and fan-out), then transposed."""

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
        found = [k for k in ("lora_rank", "quantization_config") if config.get(k)]
        if getattr(dense, "quantization_mode", None):
            found.append("a quantized kernel")
        if dense.kernel_constraint is not None:  # MaxNorm and the like act along an axis of the kernel
            found.append(f"kernel_constraint {type(dense.kernel_constraint).__name__}")
        if dense.kernel_regularizer is not None and type(dense.kernel_regularizer) not in _ELEMENTWISE:
            found.append(f"kernel_regularizer {type(dense.kernel_regularizer).__name__}")
        if found:
            raise ValueError(
                f"optimize() stores Dense kernels transposed, which Dense layer {dense.name!r} does not "
                f"allow: it has {', '.join(found)}. Call the model without optimize() (or turn on XLA "
                "alone with model.compile(..., jit_compile=True))."
            )
        keep = ("name", "trainable", "dtype", "units", "activation", "use_bias", "kernel_initializer",
                "bias_initializer", "kernel_regularizer", "bias_regularizer", "kernel_constraint",
                "bias_constraint", "activity_regularizer")
        return cls.from_config({k: config[k] for k in keep if k in config})

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=(self.units, input_shape[-1]), initializer=self._transposed_init,
            regularizer=self.kernel_regularizer, constraint=self.kernel_constraint,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(self.units,), initializer=self.bias_initializer,
                regularizer=self.bias_regularizer, constraint=self.bias_constraint,
            )
        self.input_spec = layers.InputSpec(min_ndim=2, axes={-1: input_shape[-1]})

    def _transposed_init(self, shape, dtype=None):
        return ops.transpose(self.kernel_initializer(shape[::-1], dtype=dtype))

    def call(self, inputs):
        # einsum rather than matmul of a transpose, which XLA materializes (docs/benchmarks.md)
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
    """The twin of a layer that is faster under XLA (and only there: without XLA, TensorFlow runs
    the transposed kernel's product more slowly than ``Dense``'s), or a plain copy."""
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
    slows down (cifar), and on other backends, a plain copy. ``model`` is left as it is; the copy
    gets its weights and, as ``keras.models.clone_model`` gives them, its compile settings (with a
    fresh optimizer). Ports and ``.safetensors`` files read it as they read the plain model;
    Keras's ``.weights.h5`` does not cross between the two. Saved and reloaded, it keeps its layers
    and loses the XLA switch, a setting of the running model: call ``optimize`` again after
    loading."""
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"alexnet_keras.optimize() takes a Keras model; found {type(model).__name__}. "
            "For a torch module use alexnet_torch.optimize()."
        )
    if not _is_graph_model(model):
        raise ValueError(
            f"alexnet_keras.optimize() rebuilds a functional or Sequential model layer by layer; "
            f"{type(model).__name__} is a subclassed model, whose layers it cannot rebuild. Build the "
            "model with alexnet_keras.build(), or turn on XLA alone with model.compile(..., jit_compile=True)."
        )
    xla = getattr(model, "variant", None) not in XLA_SLOWER and keras.backend.backend() in ("tensorflow", "jax")
    fast = keras.models.clone_model(model, clone_function=_xla_layer if xla else _copy_layer)
    set_layer_weights(fast, layer_weights(model))  # the helpers hand every kernel over in Dense's layout
    if isinstance(model, AlexNetModel):
        fast.variant, fast.options = model.variant, dict(model.options)
    if xla:
        fast.jit_compile = True
    return fast
# --8<-- [end:optimize]


def _is_graph_model(model: keras.Model) -> bool:
    """Functional or Sequential: what ``clone_model`` can rebuild with new layers. Keras exports
    no ``Functional`` class, so its name in the class's bases is what is checked."""
    return isinstance(model, keras.Sequential) or any(c.__name__ == "Functional" for c in type(model).__mro__)
