"""bench.auto_choice reports the decision `auto` actually takes, by its own rule."""

from conftest import requires_shipped

from bench import auto_choice

pytestmark = requires_shipped


def test_auto_choice_follows_the_rule_on_the_sample(capsys):
    out = auto_choice.main([])
    assert capsys.readouterr().out.strip().startswith("{")
    nets = out["networks"]
    assert set(nets) == {"default", "sem-tio2"}
    for row in nets.values():
        assert 0 <= row["agreement"] <= 1 and 0 <= row["iou"] <= 1 and 0 <= row["f1"] <= 1
    # bright particles: sem-tio2 when it agrees with the first pass, else default
    assert out["polarity"] > 0
    expected = "sem-tio2" if nets["sem-tio2"]["agreement"] >= out["min_agreement"] else "default"
    assert out["chosen"] == expected
