"""ardm.tasks.seq2seq.augment: `ardm seq2seq augment` appends drawn concept pairs to the train split,
copies the other splits byte for byte, and refuses a folder without aligned files."""

from __future__ import annotations

import json

from ardm.cli import main
from ardm.data.parallel import aligned_pairs


def _corpus(folder):
    folder.mkdir()
    train = ["a dog throws a frisbee in the park", "two men are riding horses on a beach"]
    (folder / "cg.train.src").write_text("dog frisbee park\nman horse beach\n")
    (folder / "cg.train.tgt").write_text("\n".join(train) + "\n")
    (folder / "cg.test.src").write_text("cat sofa sleep\n")
    (folder / "cg.test.tgt").write_text("A cat sleeps on the sofa.\n")
    return folder


def test_augment_appends_drawn_pairs_and_copies_other_splits(tmp_path, capsys):
    data = _corpus(tmp_path / "data")
    out = tmp_path / "aug"
    assert main(["seq2seq", "augment", "--data", str(data), "--out", str(out), "--pair", "src,tgt"]) == 0
    pairs = aligned_pairs(out / "cg.train.src", out / "cg.train.tgt")
    assert pairs[:2] == aligned_pairs(data / "cg.train.src", data / "cg.train.tgt")
    assert [t for _, t in pairs[2:]] == [t for _, t in pairs[:2]] and len(pairs) == 4
    assert "horse" in pairs[3][0].split() and len(pairs[3][0].split()) >= 3  # horses -> horse
    assert (out / "cg.test.tgt").read_bytes() == (data / "cg.test.tgt").read_bytes()
    manifest = json.loads((out / "augment.json").read_text())
    assert manifest["drawn_pairs"] == 2 and manifest["splits_copied"] == ["test"]
    assert "wrote" in capsys.readouterr().out


def test_augment_refuses_a_folder_without_aligned_files(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    args = ["seq2seq", "augment", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no aligned files" in err and not (tmp_path / "o").exists()
