"""Algorithm 1 with `fit` on a tiny AVLAE: losses, optimizers, which weights move, ablations."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from avlae_keras import AVLAE, UPDATE_GROUPS
from avlae_keras.backend import loss_and_gradients
from avlae_keras.logged_metrics import health_names, loss_term_names
from tests.model.conftest import TINY_CONFIG, tiny_videos
from tests.model.step_losses_worker import compute_step_losses
from tests.test_case import jitted_on_jax

STEPS = 2
BATCH = 2


def snapshot(variables) -> dict:
    return {id(v): keras.ops.convert_to_numpy(v.value).copy() for v in variables}


def changed(variables, before: dict, after: dict) -> list[bool]:
    return [not np.array_equal(before[id(v)], after[id(v)]) for v in variables]


def _state_variables(model) -> list:
    """Every variable a training step writes: weights, seed state, optimizers, metrics."""
    optimizer_variables = [v for o in model.optimizers for v in o.variables]
    variables = model.variables + optimizer_variables + model.metrics_variables
    return list({id(v): v for v in variables}.values())


class Batches(keras.utils.PyDataset):
    """The given batches of videos, in order."""

    def __init__(self, *batches: np.ndarray):
        super().__init__()
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, index):
        return self.batches[index]


@pytest.fixture(scope="module")
def _trained_once(make_tiny_model):
    model = make_tiny_model(r1_gamma=1.0)
    # TensorFlow without XLA: the tests below fit again on tf.data and after loading, and a new
    # kind of input retraces the step; an XLA compile of it costs about a minute on CPU each
    # time (on TensorFlow the session's trained_workdir is the one step compiled with XLA). JAX
    # always compiles its steps. The fits on a PyDataset share one trace (NumPy arrays, another
    # input signature, are fitted by test_backends_and_devices and test_fit_callbacks).
    model.compile(jit_compile=False if keras.backend.backend() == "tensorflow" else None)
    before = snapshot(model.variables)
    videos = tiny_videos(STEPS * BATCH)
    history = model.fit(Batches(*np.split(videos, STEPS)), epochs=1, shuffle=False, verbose=0)
    state = [keras.ops.convert_to_numpy(v.value).copy() for v in _state_variables(model)]
    return model, before, snapshot(model.variables), history, state


@pytest.fixture
def trained(_trained_once):
    """The model after STEPS training steps, shared by the module (training it costs minutes).

    Some tests train it further (`fit` on a PyDataset, on tf.data, after loading); its whole
    state is put back after each test, so that every test sees it after exactly STEPS steps
    whatever the order (e.g. `test_each_optimizer_steps_once_per_batch` after those)."""
    model, before, after, history, state = _trained_once
    yield model, before, after, history
    for variable, value in zip(_state_variables(model), state, strict=True):
        variable.assign(value)


def test_fit_logs_every_loss_term_finite(trained):
    _, _, _, history = trained
    assert set(history.history) == set(loss_term_names(r1_gamma=1.0)) | set(health_names())
    for name, values in history.history.items():
        assert np.all(np.isfinite(values)), name


def test_r1_penalties_are_positive(trained):
    _, _, _, history = trained
    assert min(history.history["video_r1_penalty"]) > 0
    assert min(history.history["image_r1_penalty"]) > 0


def test_each_optimizer_steps_once_per_batch(trained):
    model, _, _, _ = trained
    assert len(model.optimizers) == 4
    assert [o.name for o in model.optimizers] == [f"{g}_optimizer" for g in UPDATE_GROUPS]
    for optimizer in model.optimizers:
        assert int(optimizer.iterations) == STEPS
        assert float(optimizer.learning_rate) == pytest.approx(2e-4)
        assert optimizer.beta_1 == 0.5 and optimizer.beta_2 == 0.999


def test_every_network_moves_and_the_flow_estimator_does_not(trained):
    model, before, after, _ = trained
    networks = {
        "FA": model.appearance_mapping,
        "FM": model.motion_mapping,
        "G": model.video_generator,
        "EA": model.appearance_encoder,
        "DI": model.image_discriminator,
        "EM*": model.motion_encoder.flow_sequence_encoder,
        "DV": model.video_discriminator,
    }
    for name, network in networks.items():
        assert network.trainable_variables, name
        assert all(changed(network.trainable_variables, before, after)), name
    raft = model.motion_encoder.flow_estimator
    assert raft.weights and not any(changed(raft.weights, before, after))
    assert not raft.trainable_variables


def test_update_groups_follow_algorithm_1(trained):
    model, _, _, _ = trained
    groups = {name: {id(v) for v in variables} for name, variables in model.update_groups().items()}
    ids = {
        name: {id(v) for v in net.trainable_variables}
        for name, net in {
            "FA": model.appearance_mapping,
            "FM": model.motion_mapping,
            "G": model.video_generator,
            "EA": model.appearance_encoder,
            "DI": model.image_discriminator,
            "EM*": model.motion_encoder.flow_sequence_encoder,
            "DV": model.video_discriminator,
        }.items()
    }
    assert groups["video_discriminator"] == ids["EM*"] | ids["DV"]
    assert groups["image_discriminator"] == ids["EA"] | ids["DI"]
    assert groups["generator"] == ids["FA"] | ids["FM"] | ids["G"]
    assert groups["latent_reconstruction"] == ids["EA"] | ids["EM*"] | ids["G"]
    raft_ids = {id(v) for v in model.motion_encoder.flow_estimator.weights}
    for optimizer, group in zip(model.optimizers, groups.values()):
        assert not raft_ids & group
        assert len(optimizer.variables) == 2 + 2 * len(group)  # iteration, lr, Adam moments


def _reconstruction_gradients(model, videos_batch: int = 2):
    rng = np.random.default_rng(3)
    z_a = rng.standard_normal((videos_batch, model.latent_dim)).astype("float32")
    z_m = rng.standard_normal((videos_batch, model.latent_dim)).astype("float32")
    frame_index = np.array([0, model.frames - 1][:videos_batch], "int32")
    groups = {
        "G": model.video_generator.trainable_variables,
        "EA": model.appearance_encoder.trainable_variables,
        "EM*": model.motion_encoder_trainable_variables,
    }
    variables = [v for group in groups.values() for v in group]

    def run(term):
        def loss_fn():
            terms = model.latent_reconstruction_terms(z_a, z_m, frame_index)
            return terms[term], terms

        _, terms, gradients = loss_and_gradients(loss_fn, variables)
        return terms, gradients

    results = {}
    for term in ("motion_reconstruction_loss", "appearance_reconstruction_loss"):
        terms, gradients = jitted_on_jax(lambda term=term: run(term))()
        norms, start = {}, 0
        for name, group in groups.items():
            grads = gradients[start : start + len(group)]
            norms[name] = float(
                sum(np.sum(np.square(keras.ops.convert_to_numpy(g))) for g in grads)
            )
            start += len(group)
        results[term] = ({k: float(v) for k, v in terms.items()}, norms)
    return results


def test_motion_reconstruction_gradient_reaches_generator_through_raft(trained):
    model, _, _, _ = trained
    terms, norms = _reconstruction_gradients(model)["motion_reconstruction_loss"]
    assert terms["motion_reconstruction_loss"] > 0
    assert norms["G"] > 0  # only path from G to this loss: RAFT's flow of G's video
    assert norms["EM*"] > 0
    assert norms["EA"] == 0


@pytest.mark.parametrize("zeroed", ["k1", "k2"])
def test_reconstruction_weight_zero_removes_that_term(make_tiny_model, zeroed):
    model = make_tiny_model(**{zeroed: 0.0})
    results = _reconstruction_gradients(model)
    removed, kept = (
        ("motion_reconstruction_loss", "appearance_reconstruction_loss")
        if zeroed == "k1"
        else ("appearance_reconstruction_loss", "motion_reconstruction_loss")
    )
    terms, norms = results[removed]
    assert terms[removed] == 0.0
    assert all(norm == 0.0 for norm in norms.values())
    terms, norms = results[kept]
    assert terms[kept] > 0 and norms["G"] > 0


def test_without_motion_encoder_dv_has_no_em(make_tiny_model):
    with pytest.raises(ValueError, match="k1=0"):
        make_tiny_model(use_motion_encoder=False)
    model = make_tiny_model(use_motion_encoder=False, k1=0.0, flow_estimator=None)
    assert model.motion_encoder is None
    assert model.video_discriminator.motion_dim == 0
    assert model.motion_encoder_trainable_variables == []
    groups = model.update_groups()
    dv_ids = {id(v) for v in model.video_discriminator.trainable_variables}
    assert {id(v) for v in groups["video_discriminator"]} == dv_ids
    assert not any("flow" in v.path or "fnet" in v.path for v in model.weights)
    videos = tiny_videos(2)
    z = np.random.default_rng(0).standard_normal((2, model.latent_dim)).astype("float32")
    losses = jitted_on_jax(lambda: compute_step_losses(model, videos, z, z, [0, 1], [2, 3]))()
    assert float(losses["motion_reconstruction_loss"]) == 0.0
    assert all(np.isfinite(float(v)) for v in losses.values())


def test_step3_switch_adds_mappings_to_the_reconstruction_group(make_tiny_model):
    model = make_tiny_model(step3_updates_mappings=True)
    group = {id(v) for v in model.update_groups()["latent_reconstruction"]}
    for network in (model.appearance_mapping, model.motion_mapping):
        assert {id(v) for v in network.trainable_variables} <= group


def test_inference_api(trained):
    model, _, _, _ = trained
    videos = model.generate(2, seed=1)
    videos = keras.ops.convert_to_numpy(videos)
    assert videos.shape == (2, *tuple(TINY_CONFIG[k] for k in ("frames",)), 32, 32, 3)
    assert np.all(np.abs(videos) <= 1)
    again = keras.ops.convert_to_numpy(model.generate(2, seed=1))
    np.testing.assert_array_equal(videos, again)
    z = np.zeros((2, model.latent_dim), "float32")
    w_a, w_m = model.map_latents(z, z)
    assert tuple(w_a.shape) == tuple(w_m.shape) == (2, model.latent_dim)
    fixed_appearance = model.generate(z_a=z)
    assert tuple(fixed_appearance.shape) == videos.shape
    w_a, w_m = model.encode(tiny_videos(2))
    assert tuple(w_a.shape) == tuple(w_m.shape) == (2, model.latent_dim)
    reconstruction = model.reconstruct(tiny_videos(2))
    assert tuple(reconstruction.shape) == videos.shape


def test_inference_is_compiled_on_jax_and_follows_the_weights(trained):
    """`generate` on arrays runs compiled on JAX (eagerly on TensorFlow): the same videos as the
    networks op by op, also after the weights change."""
    model = trained[0]
    z_a, z_m = np.random.default_rng(2).standard_normal((2, 2, model.latent_dim), "float32")

    def op_by_op():
        return keras.ops.convert_to_numpy(model.synthesize(*model.map_latents(z_a, z_m)))

    def generated():
        return keras.ops.convert_to_numpy(model.generate(z_a=z_a, z_m=z_m))

    before = generated()
    np.testing.assert_allclose(before, op_by_op(), atol=1e-5)
    assert "generate" in model._compiled_calls
    kernel = [v for v in model.video_generator.trainable_weights if "kernel" in v.path][-1]
    original = keras.ops.convert_to_numpy(kernel.value)
    try:
        kernel.assign(original * 0.5)
        after = generated()
        np.testing.assert_allclose(after, op_by_op(), atol=1e-5)
        assert np.abs(after - before).max() > 1e-3
    finally:
        kernel.assign(original)


def _all_state(model) -> list[np.ndarray]:
    optimizer_variables = [v for o in model.optimizers for v in o.variables]
    return [keras.ops.convert_to_numpy(v.value) for v in model.variables + optimizer_variables]


def test_save_and_load_restore_every_network_and_optimizer_state(trained, tmp_path):
    model, _, _, _ = trained
    path = str(tmp_path / "avlae.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, AVLAE)
    assert restored.get_config() == model.get_config()
    assert [o.name for o in restored.optimizers] == [o.name for o in model.optimizers]
    assert [int(o.iterations) for o in restored.optimizers] == [STEPS] * 4
    original, loaded = _all_state(model), _all_state(restored)
    assert len(original) == len(loaded)
    for a, b in zip(original, loaded, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not restored.motion_encoder.flow_estimator.trainable_variables


@pytest.mark.slow
def test_training_continues_exactly_after_loading(trained, tmp_path):
    model, _, _, _ = trained
    path = str(tmp_path / "avlae.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    batch = Batches(tiny_videos(BATCH, seed=30))
    model.fit(batch, epochs=1, shuffle=False, verbose=0)
    restored.fit(batch, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(_all_state(model), _all_state(restored), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_fit_accepts_pydataset_and_continues(trained):
    model, _, _, _ = trained
    start = [int(o.iterations) for o in model.optimizers]
    history = model.fit(Batches(tiny_videos(BATCH, seed=10)), epochs=1, verbose=0)
    assert [int(o.iterations) for o in model.optimizers] == [s + 1 for s in start]
    assert all(np.isfinite(v[0]) for v in history.history.values())


def test_fit_accepts_tf_data(trained):
    tf = pytest.importorskip("tensorflow")
    model, _, _, _ = trained
    dataset = tf.data.Dataset.from_tensor_slices(tiny_videos(BATCH, seed=20)).batch(BATCH)
    start = int(model.optimizers[0].iterations)
    model.fit(dataset, epochs=1, verbose=0)
    assert int(model.optimizers[0].iterations) == start + 1


def test_trains_under_mixed_bfloat16(small_raft):
    """Networks compute in bfloat16, RAFT and the losses stay float32, every term is finite."""
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = AVLAE(**TINY_CONFIG, flow_estimator=small_raft, seed=3)
        # Without XLA on TensorFlow: an XLA compile of the step costs ~30 CPU-s there, and the
        # session's trained_workdir already compiles one (float32) with XLA.
        model.compile(jit_compile=False if keras.backend.backend() == "tensorflow" else None)
        logs = model.train_on_batch(tiny_videos(2), return_dict=True)
        assert model.video_generator.compute_dtype == "bfloat16"
        assert model.motion_encoder.flow_estimator.compute_dtype == "float32"
        assert all(np.isfinite(float(v)) for v in logs.values()), logs
        videos = keras.ops.convert_to_numpy(keras.ops.cast(model.generate(2, seed=0), "float32"))
        assert np.all(np.isfinite(videos)) and np.abs(videos).max() <= 1.0
    finally:
        keras.config.set_dtype_policy("float32")
