"""The packaged recipes and strict recipe parsing: a misspelt key, a wrong type or bad YAML is a one-line error
naming the file, line and key (with the valid keys); --set overrides go through the same checks."""

from __future__ import annotations

import pytest

from curate.errors import ConfigError
from curate.train.recipe import KINDS, DpoTrain, load_recipe, packaged_recipes


def test_every_packaged_recipe_parses_and_shows_as_is(cli):
    recipes = packaged_recipes()
    assert sorted(recipes) == sorted(f"{k}-lora" for k in KINDS)
    for name, text in recipes.items():
        recipe, _ = load_recipe(name)
        assert recipe.kind == name.removesuffix("-lora") and recipe.model == "SmolLM2-135M-Instruct"
        assert recipe.lora.target_modules == ["q_proj", "k_proj", "v_proj", "o_proj"]
        code, out, _ = cli("recipes", "show", name)
        assert code == 0 and out == text
    dpo, _ = load_recipe("dpo-lora")
    assert isinstance(dpo.train, DpoTrain) and dpo.train.beta == 0.1 and dpo.train.learning_rate == 5e-5
    code, _, err = cli("recipes", "show", "dpo")
    assert code != 0 and "no packaged recipe 'dpo': choose one of dpo-lora" in err


def test_a_copied_recipe_with_a_misspelt_key_names_file_line_and_valid_keys(cli, tmp_path):
    _, text, _ = cli("recipes", "show", "dpo-lora")
    mine = tmp_path / "my-dpo.yaml"
    mine.write_text(text.replace("  learning_rate:", "  lerning_rate:"), encoding="utf-8")
    line = next(i for i, t in enumerate(mine.read_text().splitlines(), 1) if "lerning_rate" in t)
    with pytest.raises(ConfigError) as err:
        load_recipe(str(mine))
    message = str(err.value)
    assert f"unknown key 'lerning_rate' in {mine}:{line} [train]; did you mean 'learning_rate'?" in message
    assert "valid keys: learning_rate, num_train_epochs" in message and "beta" in message and "\n" not in message

    mine.write_text(text.replace("  r: 16", "  r: sixteen"), encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"{mine}:\d+ \[lora\]: 'r' must be an integer, got 'sixteen'"):
        load_recipe(str(mine))
    mine.write_text(text.replace("kind: dpo", "kind: ppo"), encoding="utf-8")
    with pytest.raises(ConfigError, match="'kind' must be one of dpo, reward, sft, kto, got 'ppo'"):
        load_recipe(str(mine))
    mine.write_text(text + "train: [oops\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"{mine}:\d+: invalid YAML"):
        load_recipe(str(mine))
    with pytest.raises(ConfigError, match=r"no recipe 'missing\.yaml'"):
        load_recipe("missing.yaml")


def test_overrides_are_typed_and_checked():
    recipe, _ = load_recipe("kto-lora", overrides=["train.learning_rate=1e-4", "lora.r=8", "train.max_steps=3",
                                                   "model=/models/mine", "lora.target_modules=[q_proj]"])
    assert (recipe.train.learning_rate, recipe.lora.r, recipe.train.max_steps) == (1e-4, 8, 3)
    assert recipe.model == "/models/mine" and recipe.lora.target_modules == ["q_proj"]
    with pytest.raises(ConfigError, match=r"unknown key 'beta' in recipe sft-lora \[train\] \(valid keys"):
        load_recipe("sft-lora", overrides=["train.beta=0.2"])  # beta is for dpo and kto
    with pytest.raises(ConfigError, match=r"recipe dpo-lora \[train\]: 'max_steps' must be an integer, got 2.5"):
        load_recipe("dpo-lora", overrides=["train.max_steps=2.5"])  # no line: the value came from --set
    with pytest.raises(ConfigError, match=r"--set takes section\.key=value"):
        load_recipe("dpo-lora", overrides=["learning_rate"])
