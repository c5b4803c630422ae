"""`model.fit` with Keras's own callbacks on a tiny AVLAE: checkpoints (full model, weights only,
best only), backup and an interrupted fit resumed, CSV and TensorBoard logs, early stopping, and
the learning-rate callbacks acting on the four optimizers; `model.optimizer.iterations` counts
training steps.

One model (no motion encoder: cheap to build) and one main `fit` serve the whole module: the
callbacks are grouped into it, and the later tests resume from its checkpoints.
"""

from __future__ import annotations

import csv
import json
from types import SimpleNamespace

import keras
import numpy as np
import pytest

from avlae_keras import AVLAE, UPDATE_GROUPS
from avlae_keras.logged_metrics import health_names, loss_term_names
from tests.model.conftest import TINY_CONFIG, tiny_videos

BATCH = 2
STEPS_PER_EPOCH = 2
VIDEOS = tiny_videos(BATCH * STEPS_PER_EPOCH)
# A different rate per optimizer, so that each one's rate is seen to follow the callbacks.
RATES = (1e-3, 2e-3, 3e-3, 4e-3)
SCHEDULE_FACTOR = 0.5  # LearningRateScheduler: lr <- lr * 0.5 at each epoch's start
PLATEAU_FACTOR = 0.1  # ReduceLROnPlateau
# With a min_delta this large no epoch counts as an improvement, so ReduceLROnPlateau and
# EarlyStopping act at the second epoch whatever the losses do.
NEVER_IMPROVES = 1e9
BEST_MONITOR = "generator_image_loss"
PLATEAU_MONITOR = "video_real_loss"
STOP_MONITOR = "image_fake_loss"


def halve(epoch, learning_rate):
    return learning_rate * SCHEDULE_FACTOR


def state(model) -> list[np.ndarray]:
    """Every model and optimizer variable (the step counter included), as arrays."""
    variables = [*model.variables, *model.optimizer.variables]
    return [keras.ops.convert_to_numpy(v.value).copy() for v in variables]


def rates(model) -> list[float]:
    return [float(keras.ops.convert_to_numpy(o.learning_rate)) for o in model.optimizers]


def step_counts(model) -> tuple[int, list[int]]:
    return int(model.optimizer.iterations), [int(o.iterations) for o in model.optimizers]


def fit(model, epochs: int, callbacks=(), **options):
    return model.fit(
        VIDEOS,
        batch_size=BATCH,
        epochs=epochs,
        shuffle=False,
        verbose=0,
        callbacks=list(callbacks),
        **options,
    )


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    model = AVLAE(
        **{**TINY_CONFIG, "use_motion_encoder": False, "k1": 0}, flow_estimator=None, seed=7
    )
    optimizers = [
        keras.optimizers.Adam(rate, beta_1=0.5, name=f"{group}_optimizer")
        for rate, group in zip(RATES, UPDATE_GROUPS, strict=True)
    ]
    # On TensorFlow a plain tf.function compiles much faster than XLA on a CPU; the callbacks
    # see the same thing either way. JAX always jits.
    model.compile(optimizers, jit_compile=None if keras.backend.backend() == "jax" else False)
    return model


@pytest.fixture(scope="module")
def run(model, tmp_path_factory):
    """Three epochs asked; EarlyStopping ends the fit after the second."""
    folder = tmp_path_factory.mktemp("fit_callbacks")
    callbacks = SimpleNamespace(
        # The learning-rate callbacks first: they add `learning_rate_<optimizer>` to the logs
        # that the later ones see.
        schedule=keras.callbacks.LearningRateScheduler(halve),
        plateau=keras.callbacks.ReduceLROnPlateau(
            monitor=PLATEAU_MONITOR, factor=PLATEAU_FACTOR, patience=1, min_delta=NEVER_IMPROVES
        ),
        full=keras.callbacks.ModelCheckpoint(str(folder / "epoch_{epoch}.keras")),
        weights=keras.callbacks.ModelCheckpoint(
            str(folder / "epoch_{epoch}.weights.h5"), save_weights_only=True
        ),
        best=keras.callbacks.ModelCheckpoint(
            str(folder / "best.keras"), monitor=BEST_MONITOR, save_best_only=True
        ),
        stop=keras.callbacks.EarlyStopping(
            monitor=STOP_MONITOR, patience=1, min_delta=NEVER_IMPROVES
        ),
        tensorboard=keras.callbacks.TensorBoard(
            str(folder / "tensorboard"), write_steps_per_second=True
        ),
        csv=keras.callbacks.CSVLogger(str(folder / "log.csv")),
    )
    history = fit(model, epochs=3, callbacks=vars(callbacks).values())
    return SimpleNamespace(
        folder=folder,
        callbacks=callbacks,
        history=history.history,
        epochs=history.epoch,
        steps=step_counts(model),
        rates=rates(model),
        state=state(model),
    )


def test_iterations_count_training_steps_not_updates(run):
    iterations, per_optimizer = run.steps
    assert run.epochs == [0, 1]
    # One per train_step (each runs the four optimizers once): 4, not 16.
    assert iterations == 2 * STEPS_PER_EPOCH
    assert per_optimizer == [2 * STEPS_PER_EPOCH] * 4


def test_learning_rate_callbacks_act_on_every_optimizer(run):
    after_first = [r * SCHEDULE_FACTOR for r in RATES]
    after_second = [r * SCHEDULE_FACTOR**2 for r in RATES]
    for optimizer_rates, name in zip(zip(after_first, after_second), UPDATE_GROUPS):
        logged = run.history[f"learning_rate_{name}_optimizer"]
        # Logged at each epoch's end, before ReduceLROnPlateau's cut.
        assert logged == pytest.approx(list(optimizer_rates), rel=1e-5)
    # ReduceLROnPlateau cut every rate at the second epoch (no improvement by 1e9).
    assert run.rates == pytest.approx([r * PLATEAU_FACTOR for r in after_second], rel=1e-5)
    assert run.callbacks.plateau.monitor_op is keras.ops.less


def test_early_stopping_on_a_loss_term_needs_no_mode(run):
    stop = run.callbacks.stop
    assert stop.monitor_op is keras.ops.less  # a loss: minimised
    assert stop.stopped_epoch == 1 and run.epochs == [0, 1]


def test_undirected_statistics_need_a_mode(model):
    for name in ("diversity_ratio", "video_fake_accuracy"):
        callback = keras.callbacks.EarlyStopping(monitor=name)
        callback.set_model(model)
        with pytest.raises(ValueError, match="mode"):
            callback._set_monitor_op()  # what fit runs at the first epoch's end
    callback = keras.callbacks.EarlyStopping(monitor="appearance_reconstruction_error")
    callback.set_model(model)
    callback._set_monitor_op()
    assert callback.monitor_op is keras.ops.less


def test_best_only_checkpoint_keeps_the_lowest_loss(run):
    best = run.callbacks.best
    assert best.monitor_op is keras.ops.less
    assert best.best == pytest.approx(min(run.history[BEST_MONITOR]))
    restored = keras.saving.load_model(run.folder / "best.keras")
    assert isinstance(restored, AVLAE)


def test_full_checkpoint_restores_weights_optimizers_and_step_counter(run):
    assert (run.folder / "epoch_1.keras").exists()
    restored = keras.saving.load_model(run.folder / "epoch_2.keras")
    assert step_counts(restored) == run.steps
    assert rates(restored) == pytest.approx(run.rates, rel=1e-6)
    saved = state(restored)
    assert len(saved) == len(run.state)
    for a, b in zip(saved, run.state, strict=True):
        np.testing.assert_array_equal(a, b)


def test_csv_logger_writes_every_term_and_rate(run):
    with open(run.folder / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    logged = {
        *loss_term_names(),
        *health_names(k1=0),
        *(f"learning_rate_{name}_optimizer" for name in UPDATE_GROUPS),
    }
    # CSVLogger adds an empty (NA) val_ column per column when there is no validation.
    assert set(rows[0]) == {"epoch", *logged, *(f"val_{name}" for name in logged)}
    assert [int(row["epoch"]) for row in rows] == [0, 1]
    for name in logged:
        values = [float(row[name]) for row in rows]
        assert values == pytest.approx(run.history[name], rel=1e-5), name
        assert [row[f"val_{name}"] for row in rows] == ["NA", "NA"]


def test_tensorboard_logs_terms_rates_and_steps_per_second(run):
    tf = pytest.importorskip("tensorflow")
    scalars: dict[str, list[float]] = {}
    for path in sorted((run.folder / "tensorboard" / "train").glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append(float(tf.make_ndarray(value.tensor)))
    for name in (*loss_term_names(), "learning_rate_generator_optimizer"):
        assert len(scalars[f"epoch_{name}"]) == 2, name
    # Steps per second come from model.optimizer.iterations: nonzero only if it counts.
    assert len(scalars["epoch_steps_per_second"]) == 2
    assert all(v > 0 for v in scalars["epoch_steps_per_second"])


def test_resume_from_weights_checkpoint_continues_exactly(model, run):
    """Loading the first epoch's `.weights.h5` restores the step counter, the rates and the
    random stream; running the second epoch again gives the second epoch's weights."""
    model.load_weights(run.folder / "epoch_1.weights.h5")
    assert step_counts(model) == (STEPS_PER_EPOCH, [STEPS_PER_EPOCH] * 4)
    assert rates(model) == pytest.approx([r * SCHEDULE_FACTOR for r in RATES], rel=1e-6)
    schedule = keras.callbacks.LearningRateScheduler(halve)
    history = fit(model, epochs=2, initial_epoch=1, callbacks=[schedule])
    assert history.epoch == [1]
    assert step_counts(model) == run.steps
    # The schedule's rates of the second epoch (the first run's plateau cut came after it).
    assert rates(model) == pytest.approx([r * SCHEDULE_FACTOR**2 for r in RATES], rel=1e-5)
    resumed = [keras.ops.convert_to_numpy(v.value) for v in model.variables]
    for a, b in zip(resumed, run.state[: len(resumed)], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


class Interrupted(Exception):
    pass


class InterruptAt(keras.callbacks.Callback):
    """Raises after batch `batch` of epoch `epoch`, as a killed job would stop."""

    def __init__(self, epoch: int, batch: int):
        super().__init__()
        self.stop_epoch, self.stop_batch, self.epoch = epoch, batch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == (self.stop_epoch, self.stop_batch):
            raise Interrupted


def test_backup_and_restore_resumes_an_interrupted_fit(model, tmp_path):
    start, _ = step_counts(model)
    backup_dir = tmp_path / "backup"
    with pytest.raises(Interrupted):
        fit(
            model,
            epochs=2,
            callbacks=[keras.callbacks.BackupAndRestore(str(backup_dir)), InterruptAt(1, 0)],
        )
    # The backup holds the end of epoch 0; one step of epoch 1 ran after it.
    metadata = json.loads((backup_dir / "training_metadata.json").read_text())
    assert metadata["epoch"] == 1
    history = fit(model, epochs=2, callbacks=[keras.callbacks.BackupAndRestore(str(backup_dir))])
    assert history.epoch == [1]  # only the unfinished epoch runs again
    # Restored to the backup's count, then one full epoch: the interrupted step is not counted.
    assert step_counts(model) == (start + 2 * STEPS_PER_EPOCH, [start + 2 * STEPS_PER_EPOCH] * 4)
    assert not backup_dir.exists()  # deleted once the fit completes


def test_optimizer_group_learning_rate(model):
    before = rates(model)
    model.optimizer.learning_rate = 5e-4
    assert rates(model) == pytest.approx([5e-4] * 4)
    assert float(model.optimizer.learning_rate) == pytest.approx(5e-4)
    model.optimizers[2].learning_rate = 1e-4
    with pytest.raises(AttributeError, match="different learning rates"):
        _ = model.optimizer.learning_rate
    for optimizer, rate in zip(model.optimizers, before, strict=True):
        optimizer.learning_rate = rate
