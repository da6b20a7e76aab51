from pathlib import Path

import pytest
import yaml

from medgan.config import (
    ExperimentConfig,
    apply_overrides,
    config_to_dict,
    load_config,
    parse_override,
    save_config,
)
from medgan.errors import ConfigError, MissingFileError

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))

BASE = {
    "recipe": {"name": "cyclegan"},
    "nets": {"generator": {"type": "resnet_generator", "feature_size": 8}, "discriminator": {"type": "patchgan"}},
    "data": {"root": "DS", "pairing": "unpaired"},
}


def test_overrides_are_typed_by_yaml():
    cfg = load_config(None, ["trainer.max_steps=4", "optim.lr=1e-4", "data.patch_size=[32,48]",
                             "trainer.deterministic=true", "nets.generator.channels=[8,16]"], base=BASE)
    assert cfg.trainer.max_steps == 4
    assert cfg.optim.lr == pytest.approx(1e-4) and isinstance(cfg.optim.lr, float)
    assert cfg.data.patch_size == [32, 48]
    assert cfg.trainer.deterministic is True
    assert cfg.nets.generator["channels"] == [8, 16]  # free net kwargs keep YAML types


def test_scientific_floats_in_files_are_floats(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(BASE) + "optim:\n  lr: 2e-4\n")
    assert load_config(path).optim.lr == pytest.approx(2e-4)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.max_step=4", "unknown key 'trainer.max_step' (did you mean 'trainer.max_steps'?)"),
        ("recipe.lambda_cycl=3", "unknown key 'recipe.lambda_cycl' (did you mean 'recipe.lambda_cycle'?)"),
        ("trainr.max_steps=3", "unknown key 'trainr' (did you mean 'trainer'?)"),
        ("trainer.max_steps=abc", "config key 'trainer.max_steps': got 'abc' (str); input should be a valid integer"),
        ("data.batch_size=0", "config key 'data.batch_size': got 0 (int)"),
        ("recipe.name=cyclegn", "recipe.name: got 'cyclegn'; allowed: cgan, cyclegan, dae"),
        ("validation.window=lung", "unknown window 'lung'"),
        ("data.input_mode=3d", "data.patch_size [64, 64] has 2 sizes but data.input_mode '3d' needs 3"),
        ("nets.discriminator=null", "nets.discriminator is required by recipe 'cyclegan'"),
        ("nets.generator={feature_size: 4}", "needs a 'type'"),
        ("seed", "not of the form key.sub=value"),
        ("optim.betas=[0.5]", "must be 2 floats"),
    ],
)
def test_user_errors_name_key_value_and_allowed(override, message):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override], base=BASE)
    assert message in str(info.value)


def test_unknown_key_in_a_file_is_reported_with_its_path(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({**BASE, "trainer": {"max_epoch": 3}}))
    with pytest.raises(ConfigError, match=r"unknown key 'trainer.max_epoch' \(did you mean 'trainer.max_epochs'\?\)"):
        load_config(path)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(MissingFileError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_overrides_do_not_mutate_the_base():
    before = yaml.safe_dump(BASE)
    out = apply_overrides(BASE, ["nets.generator.feature_size=4", "new.section.key=1"])
    assert out["nets"]["generator"]["feature_size"] == 4 and out["new"] == {"section": {"key": 1}}
    assert yaml.safe_dump(BASE) == before
    assert parse_override("a.b= [1, 2]") == (["a", "b"], [1, 2])


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(None, ["trainer.max_steps=7", "validation.window={center: 40, width: 80}"], base=BASE)
    path = save_config(cfg, tmp_path / "run" / "config.yaml")
    again = load_config(path)
    assert again == cfg
    assert config_to_dict(again)["trainer"]["max_steps"] == 7
    assert cfg.validation.hu_window() == (0.0, 80.0)
    assert not list(path.parent.glob(".config.yaml.*")), "temporary file left behind"


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_configs_validate_and_have_the_contract_keys(path):
    cfg = load_config(path)
    assert isinstance(cfg, ExperimentConfig)
    text = path.read_text()
    assert "#" in text, "configs are documented with comments"
    for section, key in [("data", "root"), ("data", "patch_size"), ("data", "batch_size"), ("trainer", "max_steps"),
                         ("trainer", "accelerator"), ("trainer", "devices"), ("trainer", "precision")]:
        assert key in yaml.safe_load(text)[section], f"{path.name} sets {section}.{key} explicitly"


def test_every_shipped_config_exists():
    names = {p.stem for p in CONFIGS}
    assert {"ldct_cyclegan", "ldct_cyclegan_3d", "ldct_pix2pix", "ldct_dae", "ldct_redcnn", "sr_srgan",
            "anomaly_ae", "anomaly_vae", "synth_cgan"} <= names


def test_configuration_reference_is_generated_from_the_schema():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_config_docs", Path(__file__).parents[1] / "scripts/gen_config_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = module.render()
    assert (Path(__file__).parents[1] / "docs/configuration.md").read_text() == text, "run scripts/gen_config_docs.py"
    for key in ("`trainer.max_steps`", "`data.patch_size`", "`recipe.lambda_cycle`", "`validation.diversity.warn_fraction`"):
        assert key in text


BOMB = "\n".join([f"l0: &l0 [{', '.join(['lol'] * 9)}]"]
                 + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]) + "\n"


FLOW_BOMB = "[" + ", ".join([f"&l0 [{', '.join(['lol'] * 9)}]"]
                             + [f"&l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]) + "]"


def test_alias_bomb_is_refused_before_it_expands(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(yaml.safe_dump(BASE) + BOMB)  # 9^10 values once expanded: would never finish
    with pytest.raises(ConfigError, match=r"bomb.yaml: the YAML expands to more than 100000 values"):
        load_config(path)
    with pytest.raises(ConfigError, match="override 'seed'.*expands to more than"):
        load_config(None, ["seed=" + FLOW_BOMB], base=BASE)
    recursive = tmp_path / "rec.yaml"
    recursive.write_text("seed: &a [*a]\n")
    with pytest.raises(ConfigError, match="recursive alias"):
        load_config(recursive)
    # aliases that stay small are fine
    small = tmp_path / "small.yaml"
    small.write_text("optim: &o {lr: 1.0e-3}\n" + yaml.safe_dump(BASE))
    assert load_config(small).optim.lr == pytest.approx(1e-3)


def test_non_utf8_and_oversized_configs_are_refused_with_the_offset(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"seed: 0\n# caf\xe9\n")
    with pytest.raises(ConfigError, match=r"latin1.yaml: not UTF-8 text \(byte 0xe9 at offset 13\)"):
        load_config(path)
    big = tmp_path / "big.yaml"
    big.write_text("#" * (2 << 20))
    with pytest.raises(ConfigError, match="too large for a config"):
        load_config(big)


@pytest.mark.parametrize("doc", ["nets.md", "training.md", "data_layout.md", "configuration.md"])
def test_config_examples_in_the_docs_are_accepted(doc):
    import re

    text = (Path(__file__).parents[1] / "docs" / doc).read_text(encoding="utf-8")
    for block in re.findall(r"```yaml\n(.*?)```", text, re.S):
        raw = yaml.safe_load(block)
        if isinstance(raw, dict) and "recipe" in raw:  # a whole config, not a fragment
            load_config(None, [], base={"data": {"root": "DS"}, **raw})


def test_the_schema_does_not_import_the_recipes():
    import ast
    import subprocess
    import sys

    modules = sorted((Path(__file__).parents[1] / "medgan" / "config").glob("*.py"))
    assert len(modules) > 1  # the schema is a package of one module per concept
    for module in modules:
        tree = ast.parse(module.read_text(encoding="utf-8"))
        imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        assert not [m for m in imported if m and m.startswith("medgan.recipes")], module.name
    # loading a config pulls in the torch-free recipe parameters only (through the registry), not torch
    code = ("import sys; from medgan.config import load_config; "
            f"load_config({str(CONFIGS[0])!r}); "
            "assert 'medgan.recipes.params' in sys.modules and 'torch' not in sys.modules, sorted(sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert proc.returncode == 0, proc.stderr[-1500:]


@pytest.mark.parametrize("kind", ["linear_decay", "cosine"])
def test_a_decaying_schedule_needs_a_length_when_only_time_ends_the_run(kind):
    cfg = load_config("configs/ldct_redcnn.yaml", ["trainer.max_steps=-1", "trainer.max_time=00:00:14:00",
                                                   f"scheduler.type={kind}"])
    with pytest.raises(ConfigError, match="set trainer.max_steps or scheduler.total_steps"):
        cfg.scheduler.check_has_a_length(cfg.trainer)
    fixed = load_config("configs/ldct_redcnn.yaml", ["trainer.max_steps=-1", "trainer.max_time=00:00:14:00",
                                                     f"scheduler.type={kind}", "scheduler.total_steps=500"])
    fixed.scheduler.check_has_a_length(fixed.trainer)  # a fixed length is enough
    constant = load_config("configs/ldct_redcnn.yaml", ["trainer.max_steps=-1", "trainer.max_time=00:00:14:00",
                                                        "scheduler.type=constant"])
    constant.scheduler.check_has_a_length(constant.trainer)
