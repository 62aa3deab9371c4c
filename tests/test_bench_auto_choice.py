"""bench/auto_choice.py reports the decision `auto` actually takes, by its own rule."""

import importlib.util

from conftest import REPO, requires_shipped

pytestmark = requires_shipped


def test_auto_choice_follows_the_rule_on_the_sample(capsys):
    spec = importlib.util.spec_from_file_location("auto_choice", REPO / "bench" / "auto_choice.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = bench.main([])
    assert capsys.readouterr().out.strip().startswith("{")
    nets = out["networks"]
    assert set(nets) == {"default", "sem-tio2"}
    for row in nets.values():
        assert 0 <= row["agreement"] <= 1 and 0 <= row["iou"] <= 1 and 0 <= row["f1"] <= 1
    # bright particles: sem-tio2 when it agrees with the first pass, else default
    assert out["polarity"] > 0
    expected = "sem-tio2" if nets["sem-tio2"]["agreement"] >= out["min_agreement"] else "default"
    assert out["chosen"] == expected
