import keras
import numpy as np
import pytest
from reference_ops import batch_norm_reference, conv3d_reference, random_state

from avlae_keras.metrics import InceptionI3D, i3d_state_dict_shapes, load_i3d_weights
from flows.pytorch_file import CheckpointError
from tests.torch_format import write_torch_zip

NARROW = {"width": 1 / 16, "num_classes": 5, "logits_pool_size": (1, 1, 1)}


def narrow_shapes():
    return i3d_state_dict_shapes(num_classes=5, width=1 / 16)


def test_default_is_the_published_architecture():
    shapes = i3d_state_dict_shapes()
    assert shapes["Conv3d_1a_7x7.conv3d.weight"] == (64, 3, 7, 7, 7)
    assert shapes["Mixed_3b.b0.conv3d.weight"] == (64, 192, 1, 1, 1)
    assert shapes["Mixed_5c.b2b.conv3d.weight"] == (128, 48, 3, 3, 3)
    assert shapes["logits.conv3d.weight"] == (400, 1024, 1, 1, 1)
    trainable = sum(
        int(np.prod(s)) for k, s in shapes.items() if not k.endswith(("running_mean", "var"))
    )
    assert trainable == 12_697_264  # parameters of piergiaj/pytorch-i3d's InceptionI3d(400)
    model = InceptionI3D(weight_init="constant")
    assert model.default_input_shape == (16, 224, 224, 3)
    model(keras.KerasTensor((1, *model.default_input_shape)))  # builds without computing
    assert sum(int(np.prod(v.shape)) for v in model.trainable_weights) == 12_697_264
    assert model.count_params() == sum(int(np.prod(s)) for s in shapes.values())


def test_config_round_trip():
    # The narrow model's forward pass runs in test_video_metrics (through the extractor).
    model = InceptionI3D(weight_init="constant", **NARROW)
    clone = InceptionI3D.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
    assert isinstance(revived, InceptionI3D) and revived.width == model.width
    for layer in model.endpoints:
        assert type(layer).from_config(layer.get_config()).get_config() == layer.get_config()


@pytest.fixture(scope="module")
def narrow_checkpoint(tmp_path_factory):
    state = random_state(narrow_shapes(), seed=1)
    state["Conv3d_1a_7x7.bn.num_batches_tracked"] = np.array(10, dtype=np.int64)
    path = tmp_path_factory.mktemp("i3d") / "rgb_imagenet.pt"
    write_torch_zip(path, state)
    return path, state


def test_converter_places_weights_and_matches_numpy(narrow_checkpoint):
    path, state = narrow_checkpoint
    model = load_i3d_weights(InceptionI3D(weight_init="constant", **NARROW), path)
    rng = np.random.default_rng(2)
    # Even sizes with stride 2: 'same' padding puts the odd pixel after (k=7: 2 before, 3 after).
    x = rng.uniform(-1, 1, (1, 4, 6, 8, 3)).astype("float32")
    stem = keras.ops.convert_to_numpy(model.endpoints[0](x))
    expected = conv3d_reference(
        x, state["Conv3d_1a_7x7.conv3d.weight"], (2, 2, 2), ((2, 3), (2, 3), (2, 3))
    )
    bn = [state[f"Conv3d_1a_7x7.bn.{n}"] for n in ("weight", "bias", "running_mean", "running_var")]
    expected = np.maximum(batch_norm_reference(expected, *bn, eps=1e-3), 0)
    np.testing.assert_allclose(stem, expected, rtol=1e-4, atol=1e-5)

    # The logits convolution and its bias (a 1x1x1 convolution of the pooled features).
    features = rng.uniform(0, 1, (2, 1, 1, 1, model.logits.conv3d.kernel.shape[-2]))
    features = features.astype("float32")
    expected = conv3d_reference(
        features, state["logits.conv3d.weight"], bias=state["logits.conv3d.bias"]
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model.logits(features)), expected, rtol=1e-4, atol=1e-5
    )
    # A weight deep inside: the 3x3x3 convolution of Mixed_4e's third branch.
    unit = model.endpoints[[layer.name for layer in model.endpoints].index("Mixed_4e")].b2b
    x = rng.uniform(-1, 1, (1, 3, 3, 3, unit.conv3d.kernel.shape[-2])).astype("float32")
    expected = conv3d_reference(x, state["Mixed_4e.b2b.conv3d.weight"], pads=((1, 1),) * 3)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(
            unit.conv3d(np.pad(x, ((0, 0), (1, 1), (1, 1), (1, 1), (0, 0))))
        ),
        expected,
        rtol=1e-4,
        atol=1e-5,
    )


def test_max_pool_pads_like_the_port():
    from avlae_keras.metrics.i3d import MaxPool3DSamePadding

    x = -np.arange(1, 1 + 2 * 4 * 4, dtype="float32").reshape(1, 2, 4, 4, 1)
    pooled = keras.ops.convert_to_numpy(MaxPool3DSamePadding((1, 3, 3), (1, 2, 2))(x))
    # Size 4, stride 2, kernel 3: one zero row/column after; the port pads with zeros.
    assert pooled.shape == (1, 2, 2, 2, 1)
    assert pooled[0, 0, 1, 1, 0] == 0.0
    assert pooled[0, 0, 0, 0, 0] == x[0, 0, 0, 0, 0]


def test_converter_rejects_mismatching_checkpoints(narrow_checkpoint):
    _, state = narrow_checkpoint
    model = InceptionI3D(weight_init="constant", **NARROW)
    missing = {k: v for k, v in state.items() if k != "Mixed_4c.b1b.bn.running_var"}
    with pytest.raises(CheckpointError, match=r"missing Mixed_4c\.b1b\.bn\.running_var"):
        load_i3d_weights(model, missing)
    extra = {**state, "Mixed_6a.b0.conv3d.weight": np.zeros((1, 1, 1, 1, 1), "float32")}
    with pytest.raises(CheckpointError, match="unexpected Mixed_6a"):
        load_i3d_weights(model, extra)
    wrong = {**state, "logits.conv3d.bias": np.zeros(400, "float32")}
    with pytest.raises(CheckpointError, match=r"logits\.conv3d\.bias: checkpoint shape \(400,\)"):
        load_i3d_weights(model, wrong)
