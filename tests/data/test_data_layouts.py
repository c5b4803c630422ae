from __future__ import annotations

import logging

import pytest
from data_test_utils import WEIZMANN_STRIPS, require

from avlae_keras.data import NO_LABEL, index_videos, make_source
from avlae_keras.data.layouts import WEIZMANN_ACTIONS, parse_weizmann_name


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_folder_is_recursive_and_ignores_other_files(tmp_path):
    for name in ["a.mp4", "x/b.MKV", "x/y/c.webm", "x/y/d.mov", "e.avi", "notes.txt", "f.png"]:
        touch(tmp_path / name)
    index = index_videos("folder", tmp_path)
    assert [r.key for r in index.records] == [
        "a.mp4",
        "e.avi",
        "x/b.MKV",
        "x/y/c.webm",
        "x/y/d.mov",
    ]
    assert all(r.label == NO_LABEL for r in index.records) and index.class_names is None


def test_missing_and_empty_paths_fail_naming_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nope")):
        index_videos("ucf101", tmp_path / "nope")
    with pytest.raises(ValueError, match=str(tmp_path)):
        index_videos("folder", tmp_path)
    with pytest.raises(ValueError, match="unknown dataset layout"):
        index_videos("kinetics", tmp_path)


def test_uva_nemo(tmp_path):
    for name in ["001_deliberate_smile_1.mp4", "001_spontaneous_smile_2.mp4", "other.mp4"]:
        touch(tmp_path / name)
    touch(tmp_path / "readme.txt")
    index = index_videos("uva_nemo", tmp_path)
    labels = {r.key: r.label for r in index.records}
    assert labels == {
        "001_deliberate_smile_1.mp4": 0,
        "001_spontaneous_smile_2.mp4": 1,
        "other.mp4": NO_LABEL,
    }
    assert index.records[0].meta == {"subject": 1, "smile": "deliberate", "take": 1}


def test_weizmann_names():
    assert parse_weizmann_name("denis_jack") == ("denis", "jack")
    assert parse_weizmann_name("lena_run2") == ("lena", "run")
    assert parse_weizmann_name("ido_wave1") == ("ido", "wave1")
    assert parse_weizmann_name("eli_pjump") == ("eli", "pjump")
    assert parse_weizmann_name("background") is None
    assert parse_weizmann_name("moshe_dance") is None


def test_weizmann_avi_tree(tmp_path, caplog):
    names = ["daria_bend", "denis_jack", "lena_run1", "lena_run2", "ido_wave1", "ira_wave2"]
    for name in names:
        touch(tmp_path / "walk_and_more" / f"{name}.avi")
    touch(tmp_path / "shahar_dance.avi")
    with caplog.at_level(logging.WARNING, logger="avlae_keras.data"):
        index = index_videos("weizmann", tmp_path)
    assert "shahar_dance.avi" in caplog.text
    assert len(index) == 6 and index.class_names == WEIZMANN_ACTIONS
    actions = [index.class_names[r.label] for r in index.records]
    assert actions == ["bend", "jack", "wave1", "wave2", "run", "run"]  # sorted by file name
    assert [r.meta["person"] for r in index.records] == ["daria", "denis", "ido", "ira"] + [
        "lena"
    ] * 2


def test_weizmann_strips_layout_on_fake_tree(tmp_path):
    for folder, number in [(0, 2), (0, 10), (1, 0), (4, 17)]:
        touch(tmp_path / str(folder) / f"{number:08d}.jpg")
    index = index_videos("weizmann_strips", tmp_path)
    assert index.class_names == ("one_hand_wave", "two_hand_wave", "bend")
    assert [(r.key, r.label, r.meta["person"]) for r in index.records] == [
        ("0/00000002.jpg", 0, 0),
        ("0/00000010.jpg", 0, 1),
        ("1/00000000.jpg", 1, 0),
        ("4/00000017.jpg", 2, 2),
    ]


def test_weizmann_strips_shared_copy():
    root = require(WEIZMANN_STRIPS)
    source = make_source("weizmann_strips", root)
    assert len(source) == 72 and int(source.frame_counts.sum()) == 5290
    assert source.class_names == ("one_hand_wave", "two_hand_wave", "jumping_jack", "bend")
    persons = {r.meta["person"] for r in source.index.records}
    assert persons == set(range(9))  # 72 clips = 9 people x 8 clips


def make_ucf_tree(root):
    videos = [
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi",
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c02.avi",
        "HandstandPushups/v_HandStandPushups_g01_c01.avi",
        "HandstandPushups/v_HandStandPushups_g09_c03.avi",
        "YoYo/v_YoYo_g02_c01.avi",
    ]
    for video in videos:
        touch(root / "UCF-101" / video)
    splits = root / "ucfTrainTestlist"
    splits.mkdir()
    (splits / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 HandstandPushups\n3 YoYo\n")
    (splits / "trainlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c02.avi 1\n"
        "HandstandPushups/v_HandStandPushups_g09_c03.avi 2\n"
        "YoYo/v_YoYo_g09_c01.avi 3\n"  # listed but absent: warned about, not fatal
    )
    (splits / "testlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\n"
        "HandStandPushups/v_HandStandPushups_g01_c01.avi\n"  # capitalisation as in the release
        "YoYo/v_YoYo_g02_c01.avi\n"
    )
    return root / "UCF-101", splits


def test_ucf101_without_splits(tmp_path):
    videos, _ = make_ucf_tree(tmp_path)
    index = index_videos("ucf101", videos)
    assert index.class_names == ("ApplyEyeMakeup", "HandstandPushups", "YoYo")
    assert [r.label for r in index.records] == [0, 0, 1, 1, 2]
    assert index.records[1].meta == {"class": "ApplyEyeMakeup", "group": 8, "clip": 2}


def test_ucf101_official_splits(tmp_path, caplog):
    videos, splits = make_ucf_tree(tmp_path)
    with caplog.at_level(logging.WARNING, logger="avlae_keras.data"):
        train = index_videos("ucf101", videos, split_dir=splits, split=1, subset="train")
    assert "v_YoYo_g09_c01.avi" in caplog.text
    assert [(r.key, r.label) for r in train.records] == [
        ("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c02.avi", 0),
        ("HandstandPushups/v_HandStandPushups_g09_c03.avi", 1),
    ]
    test = index_videos("ucf101", videos, split_dir=splits, subset="test")
    assert [r.label for r in test.records] == [0, 1, 2]
    with pytest.raises(FileNotFoundError, match="trainlist02.txt"):
        index_videos("ucf101", videos, split_dir=splits, split=2)


def test_frame_folders_and_strips(tmp_path):
    for name in ["clip_a/0001.png", "clip_a/0002.png", "group/clip_b/1.jpg", "group/notes.txt"]:
        touch(tmp_path / "frames" / name)
    index = index_videos("frames", tmp_path / "frames")
    assert [r.key for r in index.records] == ["clip_a", "group/clip_b"]
    for name in ["x/1.png", "2.jpg", "3.txt"]:
        touch(tmp_path / "strips" / name)
    strips = index_videos("strips", tmp_path / "strips", frame_width=48)
    assert [r.key for r in strips.records] == ["2.jpg", "x/1.png"] and strips.frame_width == 48
