"""`edgedigits compare-none`: the 11th class against a second, binary model, on the same data."""

import json

import pytest

pytest.importorskip("edgedigits.train.negatives")


@pytest.mark.slow
def test_compare_none_scores_both_ways(mnist_dir, shipped_dir, tmp_path):
    from edgedigits.train.none_head import compare, table, write

    result = compare(shipped_dir, shipped_dir.parent / "cnn-mnist", mnist_dir, negatives=300, epochs=1,
                     limit=2000, held_out=200, log=lambda *_: None)
    one, two = result["ways"].values()
    # the shipped 11-class model, on the first 2000 test digits: as its card says (98.9% with
    # rejections counted as errors, under 1% of the digits rejected, > 90% of synthetic marks)
    assert one["mnist_accuracy"] >= 0.97 and one["mnist_rejected"] <= 0.015 and one["marks_rejected"] >= 0.9
    # the pair runs two models: more parameters and MACs than the one
    assert two["params"] > one["params"] and two["macs"] > one["macs"]
    assert 0 <= two["mnist_rejected"] <= 1 and 0 <= two["marks_rejected"] <= 1
    write(tmp_path, result)
    assert json.loads((tmp_path / "none_head.json").read_text())["ways"].keys() == result["ways"].keys()
    assert table(result).count("\n") == 3                      # header, rule, two ways
