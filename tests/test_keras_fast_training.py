"""What makes a Keras epoch as fast as torch's: alexnet_keras.optim.SGD (Keras's SGD steps, its update
compiled by XLA inside a graph) and precise BatchNorm statistics from one compiled call per batch."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")
if keras.backend.backend() != "tensorflow":
    pytest.skip("the fused update is the TensorFlow backend's", allow_module_level=True)
tf = pytest.importorskip("tensorflow")

from alexnet_keras.optim import SGD  # noqa: E402


def _xla_calls(graph) -> int:
    """Function calls in ``graph`` that XLA must compile."""
    return sum(op.type in ("PartitionedCall", "StatefulPartitionedCall") and "_XlaMustCompile" in op.node_def.attr
               and op.get_attr("_XlaMustCompile") for op in graph.get_operations())


def _graph_step(optimizer, variables):
    return tf.function(lambda grads: optimizer.apply(grads, variables))


def test_sgd_takes_keras_sgd_steps_with_its_update_fused_by_xla():
    """Three steps with momentum, weight decay and a learning rate that changes between steps (as
    the recipes' schedules do): the same weights as keras.optimizers.SGD to fp32 rounding (XLA may
    fuse a multiply-add), the same optimizer variables, and the update is one XLA call."""
    rng = np.random.default_rng(0)
    shapes = [(64, 32), (32,), (3, 3, 8, 16)]
    start = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[rng.standard_normal(s).astype(np.float32) * 0.1 for s in shapes] for _ in range(3)]
    weights = {}
    for cls in (keras.optimizers.SGD, SGD):
        variables = [keras.Variable(w, name=f"w{i}") for i, w in enumerate(start)]
        optimizer = cls(learning_rate=0.01, momentum=0.9, weight_decay=5e-4)
        step = _graph_step(optimizer, variables)
        for number, g in enumerate(grads):
            optimizer.learning_rate.assign(0.01 * 0.1 ** (number // 2))
            step([tf.constant(x) for x in g])
        weights[cls] = [v.numpy() for v in variables] + [v.numpy() for v in optimizer.variables]
        paths = [v.path.split("/", 1)[1] for v in optimizer.variables]  # less the optimizer's unique name
        weights[cls, "paths"] = paths
        weights[cls, "xla"] = _xla_calls(step.get_concrete_function([tf.constant(x) for x in grads[0]]).graph)
    assert weights[SGD, "paths"] == weights[keras.optimizers.SGD, "paths"]
    for ours, theirs in zip(weights[SGD], weights[keras.optimizers.SGD]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)
    assert not np.array_equal(weights[SGD][0], start[0])  # it stepped
    assert weights[SGD, "xla"] == 1 and weights[keras.optimizers.SGD, "xla"] == 0


def test_sgd_runs_keras_own_ops_eagerly_and_under_a_strategy():
    """Outside a graph, or in a tf.distribute strategy's scope, the plain update runs (XLA would
    not see the strategy's cross-replica merge)."""
    variables = [keras.Variable(np.ones(4, np.float32))]
    optimizer = SGD(learning_rate=0.5, momentum=0.0)
    optimizer.apply([tf.constant(np.ones(4, np.float32))], variables)  # eager
    np.testing.assert_array_equal(variables[0].numpy(), np.full(4, 0.5, np.float32))
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        variables = [keras.Variable(np.ones(4, np.float32))]
        optimizer = SGD(learning_rate=0.5, momentum=0.0)
        optimizer.build(variables)
    step = tf.function(lambda g: strategy.run(lambda g: optimizer.apply(g, variables), args=(g,)))
    grads = [tf.constant(np.ones(4, np.float32))]
    step(grads)
    np.testing.assert_array_equal(variables[0].numpy(), np.full(4, 0.5, np.float32))
    assert _xla_calls(step.get_concrete_function(grads).graph) == 0


def test_fp16s_loss_scale_wrapper_takes_the_same_steps_around_it():
    """``compile_for_training`` wraps the optimizer in a ``LossScaleOptimizer`` under fp16's policy
    (GPUs only): wrapped, the fused update runs inside the wrapper's finite-gradients branch and
    steps as the wrapped ``keras.optimizers.SGD`` does (float32 variables, scaled gradients)."""
    rng = np.random.default_rng(1)
    shapes = [(64, 32), (32,)]
    start = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[rng.standard_normal(s).astype(np.float32) * 0.1 for s in shapes] for _ in range(3)]
    weights = {}
    for cls in (keras.optimizers.SGD, SGD):
        variables = [keras.Variable(w) for w in start]
        optimizer = keras.optimizers.LossScaleOptimizer(cls(learning_rate=0.01, momentum=0.9, weight_decay=5e-4))
        optimizer.build(variables)
        step = _graph_step(optimizer, variables)
        for g in grads:
            step([tf.constant(x * float(optimizer.dynamic_scale.numpy())) for x in g])
        weights[cls] = [v.numpy() for v in variables]
    for ours, theirs, first in zip(weights[SGD], weights[keras.optimizers.SGD], start):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)
        assert np.abs(ours - first).max() > 1e-3  # it stepped, unscaled


def test_precise_statistics_come_from_one_compiled_call_per_batch_traced_once_per_model():
    """update_bn_stats runs the network through Keras's compiled predict, not layer by layer in
    Python: a BatchNormalization's ``call`` runs while Keras builds and traces, not once per batch,
    and a second update (the next epoch's) traces nothing anew (tests/test_precise_bn.py checks the
    statistics themselves)."""
    import alexnet_keras
    from alexnet_keras.training import update_bn_stats

    model = alexnet_keras.build("cifar", 10, logits=True)
    layer = model.get_layer("conv2_bn")
    calls = []
    plain = layer.call
    layer.call = lambda *args, **kwargs: calls.append(1) or plain(*args, **kwargs)
    batches = [np.random.default_rng(i).standard_normal((4, 32, 32, 3)).astype(np.float32) for i in range(6)]
    assert update_bn_stats(model, batches) == 9  # conv1-5, fc1-3 and predictions
    first = len(calls)
    assert 1 <= first < len(batches)
    update_bn_stats(model, batches)
    assert len(calls) == first
