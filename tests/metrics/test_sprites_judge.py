"""The sprites judge: it learns real clips, is cached and deterministic, separates a generator built
to be disentangled from an entangled one, and runs as `scripts/evaluate.py --metrics=judge`."""

import dataclasses
import hashlib
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import scipy.special

from avlae_keras.data import APPEARANCE_FACTORS, MOTION_FACTORS, SPRITE_FACTORS, background_image
from avlae_keras.data.sprites import _render_clip
from avlae_keras.evaluation import EvalConfig, EvaluationSetupError, evaluate
from avlae_keras.metrics import sprites_judge
from avlae_keras.metrics.sprites_judge import (
    FRAME_FACTORS,
    JudgeSettings,
    SpritesFrameJudge,
    SpritesJudge,
    format_verdict,
    judge_scores,
    label_scores,
    load_or_train_frame_judge,
    load_or_train_judge,
    predict_factors,
    train_judge,
    verdict_metrics,
)
from tests.avlae.test_evaluation import trained_run  # noqa: F401  (a fixture)
from tests.conftest import REPO_ROOT
from tests.test_case import run_serialization_test

SIZE, FRAMES, LATENT = 32, 8, 8
# About 20 s of training: far from the default judge's accuracy, far above chance.
SMALL = JudgeSettings(
    resolution=SIZE, frames=FRAMES, num_train=1024, num_heldout=512, batch_size=32, epochs=5
)
# The judge of `trained_run` (32 px, 4 frames) with --judge_train_videos=64: `tiny_judge` trains
# it, so `evaluate` finds it in the cache.
TINY = JudgeSettings(resolution=SIZE, frames=4, num_train=64)
CHANCE = {name: 1.0 / len(values) for name, values in SPRITE_FACTORS.items()}


@pytest.fixture(scope="module", autouse=True)
def cache_dir(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        folder = tmp_path_factory.mktemp("cache")
        patch.setenv("AVLAE_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture(scope="module")
def small_judge(cache_dir):
    return load_or_train_judge(SMALL)


@pytest.fixture(scope="module")
def small_frame_judge(cache_dir):
    return load_or_train_frame_judge(SMALL)


@pytest.fixture(scope="module")
def tiny_judge(cache_dir):
    return load_or_train_judge(TINY)


def test_judge_learns_real_clips(small_judge, cache_dir):
    _, results = small_judge
    accuracy = results["heldout"]["accuracy"]
    print(results["training_seconds"], accuracy)
    assert results["cached"] is False
    assert results["path"].startswith(str(cache_dir / "judges"))
    assert set(accuracy) == set(SPRITE_FACTORS)
    for name in SPRITE_FACTORS:
        assert accuracy[name] > CHANCE[name] + 0.2, name
    for name in ("colour", "background", "direction"):
        assert accuracy[name] > 0.9, name
    # Real clips: every label is used (H(y) near log K) and the judge is fairly sure of each.
    for name, score in results["heldout"]["scores"].items():
        assert score["marginal_entropy"] > 0.9 * score["max_entropy"]
        assert 1.0 < score["inception_score"] <= len(SPRITE_FACTORS[name]) + 1e-9
        changed = results["heldout"]["random_pairs_changed_truth"][name]["fraction"]
        assert changed == pytest.approx(1 - CHANCE[name], abs=0.1)


def test_cached_judge_is_reused_with_identical_predictions(small_judge, monkeypatch):
    judge, first = small_judge

    def no_training(*args, **kwargs):
        raise AssertionError("the cached judge should have been loaded")

    monkeypatch.setattr(sprites_judge, "train_judge", no_training)
    again, second = load_or_train_judge(SMALL)
    assert second["cached"] is True and second["path"] == first["path"]
    assert second["heldout"] == first["heldout"]
    clips = np.random.default_rng(0).uniform(-1, 1, (5, FRAMES, SIZE, SIZE, 3)).astype("float32")
    expected, actual = predict_factors(judge, clips), predict_factors(again, clips)
    for name in SPRITE_FACTORS:
        np.testing.assert_array_equal(actual[name], expected[name])


def test_cached_judge_loads_on_the_other_backend(small_judge, tmp_path):
    judge, _ = small_judge
    other = "tensorflow" if keras.backend.backend() == "jax" else "jax"
    clips = np.random.default_rng(1).uniform(-1, 1, (3, FRAMES, SIZE, SIZE, 3)).astype("float32")
    np.save(tmp_path / "clips.npy", clips)
    child = f"""
import sys, numpy as np
from avlae_keras.metrics import sprites_judge as sj
sj.train_judge = lambda *args, **kwargs: sys.exit("not cached")
judge, results = sj.load_or_train_judge(sj.JudgeSettings(**{dataclasses.asdict(SMALL)!r}))
np.savez(sys.argv[2], **sj.predict_factors(judge, np.load(sys.argv[1])))
"""
    env = {**os.environ, "KERAS_BACKEND": other, "TF_CPP_MIN_LOG_LEVEL": "3"}
    outputs = tmp_path / "probabilities.npz"
    result = subprocess.run(
        [sys.executable, "-c", child, str(tmp_path / "clips.npy"), str(outputs)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    expected = predict_factors(judge, clips)
    with np.load(outputs) as actual:
        for name in SPRITE_FACTORS:
            np.testing.assert_allclose(actual[name], expected[name], atol=1e-4)


def test_training_is_deterministic_for_a_seed(tiny_judge):
    first, first_results = tiny_judge
    second, second_results = train_judge(TINY)
    for a, b in zip(first.weights, second.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert second_results["heldout"] == first_results["heldout"]
    # The starting weights are drawn from the seed.
    sprites_judge._initialise(second, 0)
    start = np.asarray(second.weights[0]).copy()
    sprites_judge._initialise(second, 1)
    assert not np.array_equal(np.asarray(second.weights[0]), start)


def test_judge_config_and_label_scores():
    run_serialization_test(SpritesJudge(4, 64, appearance_frames=3, motion_width=8))
    run_serialization_test(SpritesFrameJudge(64, width=4, hidden_units=8))
    confident = np.eye(4)[np.arange(400) % 4] * 0.96 + 0.01
    scores = label_scores(confident)
    assert scores["marginal_entropy"] == pytest.approx(np.log(4))
    conditional = -(0.97 * np.log(0.97) + 3 * 0.01 * np.log(0.01))
    assert scores["conditional_entropy"] == pytest.approx(conditional)
    assert scores["inception_score"] == pytest.approx(np.exp(np.log(4) - conditional))
    assert label_scores(np.full((10, 4), 0.25))["inception_score"] == pytest.approx(1.0)


def test_larger_frames_are_pooled_to_the_working_size():
    judges = {}
    for size in (64, 32):  # the same weights for 64 px and 32 px clips
        config = SpritesJudge(frames=16, resolution=size).get_config()
        judges[size] = sprites_judge._built_judge(config, JudgeSettings(size, frames=16))
        sprites_judge._initialise(judges[size], 0)
    videos = np.random.default_rng(0).uniform(-1, 1, (2, 16, 64, 64, 3)).astype("float32")
    pooled = videos.reshape(2, 16, 32, 2, 32, 2, 3).mean(axis=(3, 5))
    large, small = predict_factors(judges[64], videos, 2), predict_factors(judges[32], pooled, 2)
    for name, classes in SPRITE_FACTORS.items():
        assert large[name].shape == (2, len(classes))
        np.testing.assert_allclose(large[name], small[name], atol=1e-5)


def test_flipped_clips_move_the_other_way():
    settings = JudgeSettings(resolution=16, frames=4, flip=True)
    loader, source = sprites_judge._clip_loader(settings, 64, seed=0)
    positions = np.arange(64)
    labels = sprites_judge._clip_factors(loader, source, 0, positions)
    plan = loader.plan(0)
    names = SPRITE_FACTORS["direction"]
    mirrored = {"right": "left", "left": "right", "up": "up", "down": "down"}
    assert 0 < plan.flip.sum() < 64
    for position in positions:
        true = names[source.factors["direction"][plan.video[position]]]
        seen = mirrored[true] if plan.flip[position] else true
        assert names[labels["direction"][position]] == seen
        assert labels["colour"][position] == source.factors["colour"][plan.video[position]]


def test_settings_of_a_run_and_cache_names(cache_dir):
    run = {"dataset": "sprites", "resolution": 64, "frames": 16, "frame_stride": 2, "seed": 3}
    settings = JudgeSettings.from_run_config(run, num_train=512)
    assert (settings.resolution, settings.frames, settings.frame_stride) == (64, 16, 2)
    assert (settings.seed, settings.num_train, settings.flip) == (3, 512, False)
    assert settings.cache_name().startswith("sprites-64px-16x2-seed3-n512-v")
    assert settings.cache_name() != JudgeSettings.from_run_config(run).cache_name()
    assert sprites_judge.judge_cache_dir() == cache_dir / "judges"
    with pytest.raises(ValueError, match="--dataset=sprites"):
        JudgeSettings.from_run_config({**run, "dataset": "weizmann"})


# --- generators with known factors ---------------------------------------------------------------


class ChosenDraws:
    """Stands in for the NumPy generator that `sprites._render_clip` draws a clip from: it draws
    the six factors with `integers`, in `SPRITE_FACTORS` order, then the start with `random(2)`.
    Answering with chosen values makes the real renderer draw the clip asked for."""

    def __init__(self, factors: dict[str, int], start: np.ndarray):
        self.values = iter([factors[name] for name in SPRITE_FACTORS])
        self.start = start

    def integers(self, high):
        return next(self.values)

    def random(self, size):
        return self.start


def render(factors: dict[str, int], start: np.ndarray) -> np.ndarray:
    video, drawn, _ = _render_clip(ChosenDraws(factors, start), FRAMES, SIZE, SIZE)
    assert drawn == factors  # the renderer drew what was asked
    return video.astype(np.float32) / 127.5 - 1.0


def code_rng(z_a: np.ndarray, z_m: np.ndarray) -> np.random.Generator:
    digest = hashlib.sha1(np.asarray(z_a).tobytes() + np.asarray(z_m).tobytes()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def from_code(values: np.ndarray, names) -> dict[str, int]:
    """Factor i is the class where coordinate i falls under N(0, 1): uniform over the classes."""
    sizes = {name: len(SPRITE_FACTORS[name]) for name in names}
    return {
        name: min(int(scipy.special.ndtr(value) * sizes[name]), sizes[name] - 1)
        for name, value in zip(names, values)
    }


def disentangled(a, m, rng) -> dict[str, int]:
    return {**from_code(a, APPEARANCE_FACTORS), **from_code(m, MOTION_FACTORS)}


def entangled(a, m, rng) -> dict[str, int]:
    return {n: int(rng.integers(len(v))) for n, v in SPRITE_FACTORS.items()}


def motion_from_za(a, m, rng) -> dict[str, int]:
    """Every factor from zA: the generator ignores zM and zA sets the motion (wrong code)."""
    return {**from_code(a, APPEARANCE_FACTORS), **from_code(a[3:], MOTION_FACTORS)}


def motion_collapsed(a, m, rng) -> dict[str, int]:
    """Appearance from zA; one motion for every video, so zM is ignored."""
    return {**from_code(a, APPEARANCE_FACTORS), "direction": 2, "speed": 0, "trajectory": 1}


def colour_collapsed(a, m, rng) -> dict[str, int]:
    return {**disentangled(a, m, rng), "colour": 4}


class FactorGenerator:
    """G(zA, zM) rendering sprites with the factors `factors_of(zA, zM, rng)` (rng: from a hash
    of both codes; the start position comes from it too). `truth` remembers the factors of every
    video it made and `frame_truth` those of every frame. With `flicker`, the first frame shows
    the sprite in another colour, or (`flicker="vanish"`) no sprite at all."""

    def __init__(self, factors_of=disentangled, flicker: str | None = None):
        self.factors_of = factors_of
        self.flicker = flicker
        self.truth: dict[bytes, dict[str, int]] = {}
        self.frame_truth: dict[bytes, dict[str, int]] = {}

    def __call__(self, z_a, z_m):
        videos = []
        for a, m in zip(np.asarray(z_a), np.asarray(z_m)):
            rng = code_rng(a, m)
            factors = self.factors_of(a, m, rng)
            start = rng.random(2)
            video = render(factors, start)
            frame_factors = [{**factors, "sprite": 1} for _ in video]
            if self.flicker == "colour":
                other = {**factors, "colour": (factors["colour"] + 3) % 6}
                video[0] = render(other, start)[0]
                frame_factors[0] = {**other, "sprite": 1}
            elif self.flicker == "vanish":
                video[0] = (
                    np.round(background_image(factors["background"], SIZE, SIZE)) / 127.5 - 1.0
                )
                frame_factors[0] = {**factors, "sprite": 0}
            self.truth[digest(video)] = factors
            for frame, truth in zip(video, frame_factors):
                self.frame_truth[digest(frame)] = truth
            videos.append(video)
        return np.stack(videos)


def digest(array: np.ndarray) -> bytes:
    return hashlib.sha1(np.ascontiguousarray(array, np.float32).tobytes()).digest()


class OracleJudge:
    """A judge that knows the true factors of every video (or, with `frames`, of every frame) a
    `FactorGenerator` made."""

    def __init__(self, generator: FactorGenerator, frames: bool = False):
        self.table = generator.frame_truth if frames else generator.truth
        classes = FRAME_FACTORS if frames else SPRITE_FACTORS
        self.classes = {name: len(values) for name, values in classes.items()}
        self.factors = list(self.classes)

    def predict_on_batch(self, inputs):
        truth = [self.table[digest(x)] for x in inputs]
        return {
            name: 30.0 * np.eye(k)[[t[name] for t in truth]] for name, k in self.classes.items()
        }


# Two independent uniform labels differ with probability 1 - 1/K.
UNIFORM_CHANGE = {name: 1.0 - 1.0 / len(values) for name, values in SPRITE_FACTORS.items()}


def swap_scores(factors_of=disentangled, judge=None, flicker=None, frame_judge=None) -> dict:
    generate = FactorGenerator(factors_of, flicker)
    judge = judge or OracleJudge(generate)
    if frame_judge == "oracle":
        frame_judge = OracleJudge(generate, frames=True)
    return judge_scores(
        generate,
        LATENT,
        judge,
        frame_judge=frame_judge,
        real_changed=UNIFORM_CHANGE,
        num_pairs=48,
        batch_size=16,
        seed=2,
    )


def means(scores: dict) -> dict[str, float]:
    b, c = scores["fixed_appearance"], scores["fixed_motion"]
    return {
        "appearance_kept": b["appearance_kept_mean"]["fraction"],
        "motion_changed": b["motion_changed_mean"]["fraction"],
        "motion_kept": c["motion_kept_mean"]["fraction"],
        "appearance_changed": c["appearance_changed_mean"]["fraction"],
    }


def selectivities(scores: dict) -> dict[str, float]:
    return {name: value["selectivity"] for name, value in scores["selectivity"].items()}


def test_swap_scores_with_a_perfect_judge():
    good, bad = swap_scores(disentangled), swap_scores(entangled)
    assert good["num_pairs"] == 48
    # zA alone fixes the appearance and zM alone the motion: every label stays.
    assert means(good)["appearance_kept"] == means(good)["motion_kept"] == 1.0
    for kept in good["fixed_appearance"]["appearance_kept"].values():
        assert kept == {"fraction": 1.0, "se": 0.0, "n": 48}
    # The other code's factors change about as often as for independent videos (1 - sum p^2).
    assert 0.4 < means(good)["motion_changed"] < 0.8
    assert 0.6 < means(good)["appearance_changed"] < 0.95
    # Entangled: either code changes everything.
    assert means(bad)["appearance_kept"] < 0.4 and means(bad)["motion_kept"] < 0.6
    for name in SPRITE_FACTORS:
        changed = bad["random_pairs_changed"][name]
        assert changed["se"] == pytest.approx(
            np.sqrt(changed["fraction"] * (1 - changed["fraction"]) / 48)
        )
    for name, score in good["samples"].items():
        assert 1.0 < score["inception_score"] <= len(SPRITE_FACTORS[name]) + 1e-9
        assert score["conditional_entropy"] < 1e-3


def test_selectivity_is_one_only_for_the_right_code():
    good = selectivities(swap_scores(disentangled))
    bad = selectivities(swap_scores(entangled))
    print("disentangled", good, "entangled", bad)
    assert set(good) == set(SPRITE_FACTORS)
    # S = (kept under the other code's swap - kept under its own) / change between real clips.
    for name in SPRITE_FACTORS:
        assert 0.6 < good[name] < 1.4, name
        assert abs(bad[name]) < 0.35, name
    assert np.mean(list(good.values())) == pytest.approx(1.0, abs=0.15)
    assert abs(np.mean(list(bad.values()))) < 0.15
    se = swap_scores(disentangled)["selectivity"]["colour"]
    assert 0.0 < se["se"] < 0.2 and se["n"] == 48


def test_a_collapsed_or_ignored_factor_scores_zero():
    # zM ignored, the motion the same for every video: each motion label is kept under any swap.
    ignored = selectivities(swap_scores(motion_collapsed))
    for name in MOTION_FACTORS:
        assert ignored[name] == 0.0, name
    for name in APPEARANCE_FACTORS:
        assert ignored[name] > 0.6, name
    collapsed = selectivities(swap_scores(colour_collapsed))
    assert collapsed["colour"] == 0.0
    assert collapsed["shape"] > 0.6 and collapsed["direction"] > 0.6
    # zM ignored, zA setting the motion: the wrong code, a negative selectivity.
    wrong = selectivities(swap_scores(motion_from_za))
    for name in MOTION_FACTORS:
        assert wrong[name] < -0.6, name


def test_verdict_metrics_of_constructed_generators():
    scores = swap_scores(motion_collapsed, flicker="colour", frame_judge="oracle")
    real = {name: {"inception_score": float(len(v))} for name, v in SPRITE_FACTORS.items()}
    result = {**scores, "real_samples": real}
    values = verdict_metrics(result)
    chosen = selectivities(scores)
    assert values["judge_selectivity_motion"] == 0.0
    assert values["judge_selectivity_appearance"] == pytest.approx(
        np.mean([chosen[n] for n in APPEARANCE_FACTORS])
    )
    assert values["judge_selectivity_min"] == min(chosen.values())
    # One motion for every video: its Inception Score is 1.
    assert values["judge_is_ratio_min"] == pytest.approx(1.0 / 4)
    # Neither code shared: a collapsed factor is always kept.
    assert values["judge_neither_kept_motion"] == 1.0
    assert 0.1 < values["judge_neither_kept_appearance"] < 0.4
    # Every video changes colour after its first frame.
    assert values["judge_temporal_consistency"] == 0.0
    assert values["judge_sprite_absent_frames"] == 0.0
    assert "judge_temporal_consistency_real" not in values  # no real-clip reference given
    text = format_verdict({**result, "real_random_pairs_changed": scores["random_pairs_changed"]})
    assert "selectivity_motion 0.000" in text and "colour" in text


def test_temporal_consistency_of_constructed_generators():
    steady = swap_scores(disentangled, frame_judge="oracle")["temporal"]
    assert steady["consistent"]["fraction"] == 1.0
    assert steady["sprite_absent_frames"]["fraction"] == 0.0
    assert steady["consistent"]["n"] == 4 * 48
    vanishing = swap_scores(disentangled, flicker="vanish", frame_judge="oracle")["temporal"]
    assert vanishing["sprite_absent_frames"]["fraction"] == pytest.approx(1 / FRAMES)
    assert vanishing["videos_with_absent_frame"]["fraction"] == 1.0
    assert vanishing["sprite_absent_by_frame"] == [1.0] + [0.0] * (FRAMES - 1)
    # A frame without its sprite breaks the video's consistency, but not its background's.
    assert vanishing["consistent"]["fraction"] == 0.0
    assert vanishing["consistent_per_factor"]["background"]["fraction"] == 1.0
    colour = swap_scores(disentangled, flicker="colour", frame_judge="oracle")["temporal"]
    assert colour["consistent_per_factor"]["colour"]["fraction"] == 0.0
    assert colour["consistent_per_factor"]["shape"]["fraction"] == 1.0


def test_swap_scores_with_the_trained_judge(small_judge):
    judge, _ = small_judge
    good = swap_scores(disentangled, judge=judge)
    bad = swap_scores(entangled, judge=judge)
    print("disentangled", means(good), "entangled", means(bad))
    assert means(good)["appearance_kept"] > 0.8 and means(good)["motion_kept"] > 0.75
    assert means(good)["appearance_kept"] > means(bad)["appearance_kept"] + 0.4
    assert means(good)["motion_kept"] > means(bad)["motion_kept"] + 0.25
    assert verdict_metrics(good)["judge_selectivity_appearance"] > 0.7
    assert verdict_metrics(good)["judge_selectivity_motion"] > 0.5
    assert abs(verdict_metrics(bad)["judge_selectivity_appearance"]) < 0.3


def test_the_trained_frame_judge_sees_flicker_and_missing_sprites(small_frame_judge):
    frame_judge, results = small_frame_judge
    heldout = results["heldout"]
    print(heldout["accuracy"], heldout["temporal"]["consistent"])
    assert heldout["accuracy"]["colour"] > 0.95 and heldout["accuracy"]["background"] > 0.95
    assert heldout["accuracy"]["sprite"] > 0.95
    assert heldout["sprite_free_frames_called_absent"]["fraction"] > 0.9
    # The small judge is unsure of shapes (about 0.7 per frame), so few real clips get the same
    # shape in all their frames; the default judge: 0.97 per frame, 0.85 of clips.
    assert heldout["temporal"]["consistent_per_factor"]["colour"]["fraction"] > 0.9
    steady = swap_scores(disentangled, frame_judge=frame_judge)["temporal"]
    colour = swap_scores(disentangled, flicker="colour", frame_judge=frame_judge)["temporal"]
    vanish = swap_scores(disentangled, flicker="vanish", frame_judge=frame_judge)["temporal"]
    assert steady["consistent_per_factor"]["colour"]["fraction"] > 0.9
    assert colour["consistent_per_factor"]["colour"]["fraction"] < 0.1
    assert vanish["sprite_absent_by_frame"][0] > 0.9
    assert max(vanish["sprite_absent_by_frame"][1:]) < 0.1


# --- scripts/evaluate.py --metrics=judge ---------------------------------------------------------


def test_judge_refuses_a_run_not_trained_on_sprites(tmp_path):
    config = {"dataset": "weizmann", "data_path": "/data/weizmann", "resolution": 64}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(EvaluationSetupError, match="--metrics: judge needs .*--dataset=sprites"):
        evaluate(EvalConfig(workdir=str(tmp_path), metrics=("judge",)))
    result = subprocess.run(
        [sys.executable, "scripts/evaluate.py", f"--workdir={tmp_path}", "--metrics=judge"],
        cwd=REPO_ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "--dataset=weizmann" in error[0] and "--metrics" in error[0]
    assert not (tmp_path / "eval").exists()


def test_evaluate_writes_the_judge_section(trained_run, tiny_judge, tmp_path):  # noqa: F811
    out = tmp_path / "report.json"
    config = EvalConfig(
        workdir=str(trained_run),
        metrics=("judge",),
        out=str(out),
        judge_pairs=6,
        judge_train_videos=64,
        batch_size=4,
        verbose=0,
    )
    report = evaluate(config)
    saved = json.loads(out.read_text())
    section = saved["judge"]
    assert section["settings"] == {"pairs": 6, "generated": 24, "batch_size": 4, "seed": 0}
    classifier = section["classifier"]
    assert classifier["settings"] == dataclasses.asdict(TINY)
    assert classifier["path"] == tiny_judge[1]["path"] and classifier["cached"] is True
    assert set(classifier["heldout"]["accuracy"]) == set(SPRITE_FACTORS)
    for key in ("samples", "real_samples", "random_pairs_changed", "real_random_pairs_changed"):
        assert set(section[key]) == set(SPRITE_FACTORS), key
    assert set(section["fixed_appearance"]["appearance_kept"]) == set(APPEARANCE_FACTORS)
    assert set(section["fixed_motion"]["motion_kept"]) == set(MOTION_FACTORS)
    fractions = {
        "judge_appearance_kept_under_zm_swap",
        "judge_motion_changed_under_zm_swap",
        "judge_motion_kept_under_za_swap",
        "judge_appearance_changed_under_za_swap",
        "judge_temporal_consistency",
        "judge_temporal_consistency_real",
        "judge_sprite_absent_frames",
        "judge_sprite_absent_frames_real",
        "judge_neither_kept_appearance",
        "judge_neither_kept_motion",
    }
    verdict = {
        "judge_selectivity_appearance",
        "judge_selectivity_motion",
        "judge_selectivity_min",
        "judge_is_ratio_min",
    }
    assert set(saved["metrics"]) == fractions | verdict | {"diversity_ratio"}
    assert all(0.0 <= saved["metrics"][key] <= 1.0 for key in fractions)
    assert saved["metrics"]["judge_is_ratio_min"] > 0 and saved["metrics"]["diversity_ratio"] > 0
    assert set(section["selectivity"]) == set(SPRITE_FACTORS)
    assert section["temporal"]["consistent"]["n"] == 24
    assert set(section["frame_classifier"]["heldout"]["accuracy"]) == set(FRAME_FACTORS)
    assert saved["samples"]["judge"] == {"pairs": 6, "generated": 24}
    assert report["metrics"] == saved["metrics"]
