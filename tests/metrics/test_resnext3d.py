import keras
import numpy as np
import pytest
from reference_ops import batch_norm_reference, conv3d_reference, random_state

from avlae_keras.metrics import ResNeXt3D, load_resnext3d_weights, resnext3d_state_dict_shapes
from tests.torch_format import write_torch_legacy, write_torch_zip

NARROW = {
    "layers": (2, 1, 1, 1),
    "cardinality": 4,
    "block_planes": (32, 32, 64, 64),
    "stem_channels": 8,
    "num_classes": 6,
    "sample_size": 32,
    "sample_duration": 8,
}
NARROW_SHAPES = {k: v for k, v in NARROW.items() if k not in ("sample_size", "sample_duration")}


def test_default_is_the_published_architecture():
    shapes = resnext3d_state_dict_shapes()
    assert shapes["conv1.weight"] == (64, 3, 7, 7, 7)
    assert shapes["layer1.0.conv2.weight"] == (128, 4, 3, 3, 3)
    assert shapes["layer1.0.downsample.0.weight"] == (256, 64, 1, 1, 1)
    assert shapes["layer3.22.conv3.weight"] == (1024, 512, 1, 1, 1)
    assert shapes["layer4.2.conv2.weight"] == (1024, 32, 3, 3, 3)
    assert shapes["fc.weight"] == (400, 2048)
    assert "layer2.1.downsample.0.weight" not in shapes
    trainable = sum(
        int(np.prod(s)) for k, s in shapes.items() if not k.endswith(("running_mean", "var"))
    )
    assert trainable == 48_340_816  # parameters of Hara et al.'s resnext101(cardinality=32)
    model = ResNeXt3D(weight_init="constant")
    model(keras.KerasTensor((1, *model.default_input_shape)))  # builds without computing
    assert sum(int(np.prod(v.shape)) for v in model.trainable_weights) == 48_340_816
    assert model.count_params() == sum(int(np.prod(s)) for s in shapes.values())
    assert model.feature_dim == 2048 and model.pool_size == (1, 4, 4)


def test_narrow_forward_shape_and_config_round_trip():
    model = ResNeXt3D(weight_init="constant", **NARROW)
    x = np.random.default_rng(0).standard_normal((2, 8, 32, 32, 3)).astype("float32")
    # Compiled: op-by-op JAX would compile every layer shape separately.
    assert model.predict_on_batch(x).shape == (2, 6)
    assert ResNeXt3D.from_config(model.get_config()).get_config() == model.get_config()
    block = model.blocks[0]
    assert type(block).from_config(block.get_config()).get_config() == block.get_config()
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
    assert isinstance(revived, ResNeXt3D) and revived.cardinality == 4


@pytest.fixture(scope="module", params=["zip", "legacy"])
def narrow_checkpoint(request, tmp_path_factory):
    state = random_state(resnext3d_state_dict_shapes(**NARROW_SHAPES), seed=3)
    wrapped = {
        "epoch": 200,
        "arch": "resnext-101",
        "state_dict": {f"module.{k}": v for k, v in state.items()},
    }
    path = tmp_path_factory.mktemp("resnext") / "resnext-101-kinetics.pth"
    (write_torch_zip if request.param == "zip" else write_torch_legacy)(path, wrapped)
    return path, state


def test_converter_places_weights_and_matches_numpy(narrow_checkpoint):
    path, state = narrow_checkpoint
    model = load_resnext3d_weights(ResNeXt3D(weight_init="constant", **NARROW), path)
    rng = np.random.default_rng(4)
    # Stem: symmetric padding 3, stride (1, 2, 2).
    x = rng.standard_normal((1, 3, 6, 6, 3)).astype("float32")
    expected = conv3d_reference(x, state["conv1.weight"], (1, 2, 2), ((3, 3),) * 3)
    got = keras.ops.convert_to_numpy(model.conv1(x))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    # Grouped 3x3x3 convolution with stride 2 (first block of layer2): groups keep their order.
    conv2 = model.blocks[2].conv2
    x = rng.standard_normal((1, 4, 5, 6, conv2.filters)).astype("float32")
    expected = conv3d_reference(
        x, state["layer2.0.conv2.weight"], (2, 2, 2), ((1, 1),) * 3, groups=4
    )
    np.testing.assert_allclose(keras.ops.convert_to_numpy(conv2(x)), expected, rtol=1e-4, atol=1e-4)
    # Batch norm statistics and the classifier.
    x = rng.standard_normal((1, 2, 2, 2, 8)).astype("float32")
    bn = [state[f"bn1.{n}"] for n in ("weight", "bias", "running_mean", "running_var")]
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model.bn1(x)),
        batch_norm_reference(x, *bn, eps=1e-5),
        rtol=1e-5,
        atol=1e-5,
    )
    x = rng.standard_normal((2, 8, 32, 32, 3)).astype("float32")
    features = keras.ops.convert_to_numpy(model.features(x))
    expected = features @ state["fc.weight"].T + state["fc.bias"]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), expected, rtol=1e-4, atol=1e-4)


def test_headless_model_ignores_the_classifier(narrow_checkpoint):
    path, _ = narrow_checkpoint
    model = ResNeXt3D(weight_init="constant", include_top=False, **NARROW)
    load_resnext3d_weights(model, path)
    assert model.fc is None
    assert model.predict_on_batch(np.zeros((1, 8, 32, 32, 3), "float32")).shape == (1, 128)
