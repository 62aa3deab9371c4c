import csv

import pytest

from napari_nanogan.data.splits import split_groups, split_names


def test_sources_stay_on_one_side_and_counts_are_reached():
    groups = {f"img{i:03d}": f"paper{i // 3}" for i in range(60)}  # 20 papers of 3 figures
    groups.update({f"solo{i}": None for i in range(10)})  # no source known: each its own
    split = split_groups(groups, n_test=12, n_val=9)
    assert sorted(sum(split.values(), [])) == sorted(groups)
    sides = {}
    for part, names in split.items():
        for name in names:
            sides.setdefault(groups[name] or name, set()).add(part)
    assert all(len(parts) == 1 for parts in sides.values())
    assert 12 <= len(split["test"]) < 12 + 3 and 9 <= len(split["val"]) < 9 + 3
    assert split == split_groups(dict(reversed(list(groups.items()))), n_test=12, n_val=9)  # order-free


def test_names_without_sources_split_as_single_items():
    names = [f"n{i}" for i in range(30)]
    split = split_names(names, n_test=6, n_val=3)
    assert [len(split[p]) for p in ("test", "val", "train")] == [6, 3, 21]
    with pytest.raises(ValueError, match="cannot hold out"):
        split_names(names[:9], n_test=6, n_val=3)


def test_shared_emps_split_keeps_each_paper_on_one_side(tmp_path):
    from napari_nanogan.data.datasets import shared_splits

    root = tmp_path / "emps"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    stems = [f"f{i:03d}" for i in range(120)]
    (root / "ids.txt").write_text("\n".join(stems))
    with open(root / "metadata.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["filename", "doi", "locator", "regions"])
        for i, stem in enumerate(stems):
            writer.writerow([f"{stem}.png", f"10.1000/paper{i // 4}", "gr1", "[]"])
    split = shared_splits(tmp_path)["emps"]
    paper = {stem: int(stem[1:]) // 4 for stem in stems}
    seen = {part: {paper[t[0]] for t in triples} for part, triples in split.items()}
    assert not (seen["test"] & seen["train"]) and not (seen["val"] & seen["train"]) and not (seen["test"] & seen["val"])
    assert len(split["test"]) >= 55 and len(split["val"]) >= 30
