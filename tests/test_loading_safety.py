"""What a weight file may and may not make the loaders do: metadata that chooses other files,
altered files beside their checksum, stale checksums, partial loads."""

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

import alexnet_keras
import alexnet_torch
import parity
from alexnet_spec import checksum
from parity import files
from alexnet_cli.parity import main


@pytest.fixture(scope="module")
def cifar_torch():
    return parity.randomize_torch(alexnet_torch.build("cifar"), seed=3).eval()


def test_options_in_metadata_cannot_name_another_file(tmp_path, cifar_torch, capsys):
    secret = tmp_path / "secret.pt"
    alexnet_torch.save_weights(cifar_torch, secret)
    state = {k: v.numpy() for k, v in cifar_torch.state_dict().items()}
    metadata = {"format": "alexnet-parity/1", "layout": "torch", "variant": "cifar",
                "options": json.dumps({"weights": str(secret)})}
    save_file(state, str(tmp_path / "hostile.safetensors"), metadata=metadata)
    assert main(["port", str(tmp_path / "hostile.safetensors"), str(tmp_path / "out.pt")]) == 2
    assert "option weights=" in capsys.readouterr().err and not (tmp_path / "out.pt").exists()
    with pytest.raises(ValueError, match="not one the 'cifar' AlexNet keeps"):
        alexnet_keras.build("cifar", weights=tmp_path / "hostile.safetensors")


def test_an_altered_file_is_refused_by_every_reader(tmp_path, cifar_torch, capsys):
    path = tmp_path / "m.safetensors"
    assert main(["port", *_saved(tmp_path, cifar_torch), str(path)]) == 0
    assert checksum.sidecar(path).is_file()
    data = bytearray(path.read_bytes())
    data[-1] ^= 1  # one bit of the last weight
    path.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["port", str(path), str(tmp_path / "out.keras")]) == 2
    assert "does not match its checksum" in capsys.readouterr().err
    with pytest.raises(ValueError, match="does not match its checksum"):
        files.read(path)


def test_overwriting_drops_the_stale_checksum(tmp_path, cifar_torch):
    path = tmp_path / "m.pt"
    assert main(["port", *_saved(tmp_path, cifar_torch), str(path)]) == 0
    other = parity.randomize_torch(alexnet_torch.build("cifar"), seed=4)
    alexnet_torch.save_weights(other, path, overwrite=True)
    assert not checksum.sidecar(path).exists()
    np.testing.assert_array_equal(files.read(path).state["features.0.weight"], other.features[0].weight.detach().numpy())


def test_a_weights_h5_that_does_not_fit_leaves_the_model_as_it_was(tmp_path):
    alexnet_keras.save_weights(alexnet_keras.build("cifar", num_classes=7), tmp_path / "seven.weights.h5")
    model = alexnet_keras.build("cifar")
    before = model.get_weights()
    with pytest.raises(ValueError, match="could not be loaded"):
        alexnet_keras.load_weights(model, tmp_path / "seven.weights.h5")
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_a_keras_softmax_head_is_not_ported_to_a_logits_model():
    model = alexnet_keras.AlexNet(input_shape=(63, 63, 3))  # keras.applications default: softmax
    with pytest.raises(ValueError, match="applies softmax"):
        parity.keras_to_torch(model)


def _saved(tmp_path, module):
    path = tmp_path / "source.pt"
    if not path.exists():
        alexnet_torch.save_weights(module, path)
    return [str(path)]


def test_detecting_the_variant_of_a_weights_h5_warns_nothing(tmp_path, cifar_torch):
    """Trying the variants that do not fit made Keras warn about layers left uninitialized (five
    times for a cifar file), though the one that fits then loaded completely."""
    import warnings

    path = tmp_path / "c.weights.h5"
    alexnet_keras.save_weights(parity.torch_to_keras(cifar_torch), path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        record = files.read(path)
    assert record.variant == "cifar" and [str(w.message) for w in caught] == []
