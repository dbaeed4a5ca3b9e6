"""The search space: defaults, overrides, suggestion and the published configurations."""

from __future__ import annotations

import dataclasses

import optuna
import pytest

from study.config import TrialConfig
from study.errors import UsageError
from study.space import (
    Param,
    apply_overrides,
    config_from_params,
    default_space,
    original_configs,
    space_from_json,
    space_to_json,
    suggest,
)


def by_name(space):
    return {p.name: p for p in space}


def test_default_space_brackets_the_original_study():
    space = by_name(default_space())
    assert set(space) <= {f.name for f in dataclasses.fields(TrialConfig)}
    assert space["layers"].low == 1 and space["layers"].high == 4
    assert space["hidden"].contains(384) and (384 - space["hidden"].low) % space["hidden"].step == 0
    assert space["lr"].log and space["lr"].contains(1e-3)
    assert space["temperature"].log and space["temperature"].low == 1.0
    assert space["temperature"].high == 10.0
    assert 0 in space["attention_size"].choices and 64 in space["batch_size"].choices
    # no augmented set in the run: augmentation is fixed off
    assert space["augment_factor"].fixed and space["augment_factor"].value == 0
    assert by_name(default_space(3))["augment_factor"].high == 3


def test_original_configs_are_the_published_students():
    configs = original_configs(default_space())
    assert len(configs) == 6
    first = configs[0]
    assert (first["cell"], first["layers"], first["hidden"], first["soft_loss"],
            first["temperature"]) == ("lstm", 3, 384, "mse", 1.0)
    assert first["input_dropout"] == first["layer_dropout"] == 0.25
    assert ("gru", 2, "kl", 2.0) in {(c["cell"], c["layers"], c["soft_loss"], c["temperature"])
                                     for c in configs}
    space = by_name(default_space())
    for c in configs:
        assert all(space[k].contains(v) for k, v in c.items())
        config_from_params(TrialConfig(), c)  # valid configurations
    # augmented ones appear when the run has an augmented set
    assert len(original_configs(default_space(3))) == 8


def test_original_configs_are_clipped_to_fixed_and_narrowed_space():
    space = apply_overrides(default_space(), ["cell=gru", "temperature=3"], ["layers=1:2"])
    configs = original_configs(space)
    assert all(c["cell"] == "gru" and c["temperature"] == 3.0 and c["layers"] <= 2
               for c in configs)
    assert len(configs) == len({tuple(sorted(c.items())) for c in configs})  # deduplicated
    assert len(configs) == 2  # mse and kl survive once each


def test_fix_and_range_parse_to_the_right_types():
    space = by_name(apply_overrides(default_space(), ["cell=gru", "layers=2", "lr=5e-4",
                                                      "batch_size=32"],
                                    ["hidden=192:320", "attention_size=0,64", "alpha=0.5:1"]))
    assert space["cell"].value == "gru"
    assert space["layers"].value == 2 and isinstance(space["layers"].value, int)
    assert space["lr"].value == 5e-4
    assert space["batch_size"].value == 32 and isinstance(space["batch_size"].value, int)
    assert (space["hidden"].low, space["hidden"].high) == (192, 320)
    assert space["attention_size"].choices == (0, 64)
    assert (space["alpha"].low, space["alpha"].high) == (0.5, 1.0)


@pytest.mark.parametrize(
    ("fixes", "ranges", "message"),
    [
        (["depth=3"], [], "unknown parameter; valid names: cell, layers"),
        (["layers=7"], [], "outside the space"),
        (["layers=two"], [], "not an integer"),
        (["cell=rnn"], [], "must be one of lstm, gru"),
        (["lr"], [], "expected NAME=VALUE"),
        (["lr=1e-3", "lr=2e-3"], [], "given more than once"),
        ([], ["lr=1e-5:1e-3"], "must lie inside"),
        ([], ["lr=1e-3:1e-4"], "low is above high"),
        ([], ["hidden=150:300"], "grid"),
        ([], ["cell=lstm:gru"], "comma-separated subset"),
        ([], ["nope=1:2"], "valid names"),
        (["cell=gru"], ["cell=gru,lstm"], "also fixed"),
    ],
)
def test_bad_overrides_are_refused_with_a_clear_message(fixes, ranges, message):
    with pytest.raises(UsageError, match=message):
        apply_overrides(default_space(), fixes, ranges)


def test_suggest_samples_inside_the_space_and_records_fixed_params():
    space = apply_overrides(default_space(), ["cell=gru", "hidden=200"], ["lr=1e-4:1e-3"])
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    seen = []

    def objective(trial):
        params = suggest(trial, space)
        config = config_from_params(TrialConfig(), params)
        seen.append((params, config))
        return 0.0

    study.optimize(objective, n_trials=5)
    names = [p.name for p in space]
    space_d = by_name(space)
    for (params, config), trial in zip(seen, study.trials, strict=True):
        assert list(params) == names and set(trial.params) == set(names)
        assert params["cell"] == "gru" and params["hidden"] == 200  # off the grid, but fixed
        assert all(space_d[k].contains(v) for k, v in params.items())
        assert config.cell == "gru" and config.lr == params["lr"]
    assert len({s[0]["lr"] for s in seen}) == 5


def test_config_from_params_refuses_unknown_fields():
    with pytest.raises(ValueError, match="not TrialConfig fields"):
        config_from_params(TrialConfig(), {"depth": 3})


def test_space_json_round_trip():
    space = apply_overrides(default_space(2), ["cell=gru"], ["batch_size=32,64"])
    assert space_from_json(space_to_json(space)) == space
    assert Param("x", "float", 1e-3, 1e-1, log=True).clip(1.0) == 1e-1
    assert Param("h", "int", 128, 512, step=64).clip(400) == 384
