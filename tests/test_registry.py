import pytest

from medgan.registry import Registry


def test_register_and_get_returns_the_object():
    reg = Registry("things")

    @reg.register()
    def alpha():
        return 1

    @reg.register("b")
    class Beta:
        pass

    assert reg.get("alpha") is alpha
    assert reg.get("b") is Beta
    assert reg.names() == ["alpha", "b"]
    assert "alpha" in reg and "gamma" not in reg
    assert len(reg) == 2


def test_duplicate_name_is_refused():
    reg = Registry("things")
    reg.register("x")(object)
    with pytest.raises(KeyError, match="already registered"):
        reg.register("x")(dict)


def test_unknown_name_lists_known_and_suggests():
    reg = Registry("nets")
    reg.register("resnet_generator")(object)
    reg.register("unet_generator")(object)
    with pytest.raises(KeyError) as info:
        reg.get("resnet_genrator")
    msg = str(info.value)
    assert "No object named 'resnet_genrator' in 'nets' registry" in msg
    assert "did you mean 'resnet_generator'" in msg
    assert "unet_generator" in msg


def test_plugins_fill_the_registry_on_first_lookup(tmp_path, monkeypatch):
    (tmp_path / "plugin_mod.py").write_text("from tests_plugin_target import REG\nREG.register('late')(dict)\n")
    (tmp_path / "tests_plugin_target.py").write_text(
        "from medgan.registry import Registry\nREG = Registry('things', plugins=('plugin_mod',))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import sys

    from tests_plugin_target import REG

    assert "plugin_mod" not in sys.modules  # nothing imported until a lookup
    assert REG.get("late") is dict and REG.names() == ["late"]
    assert "plugin_mod" in sys.modules


def test_tags_live_with_the_entry_and_select_names():
    reg = Registry("nets")
    reg.register("d1", role="discriminator")(object)
    reg.register("g1", input="noise", role="generator")(dict)
    reg.register("plain")(list)
    assert reg.names(role="discriminator") == ["d1"]
    assert reg.names(input="noise", role="generator") == ["g1"] and reg.names(input="image") == []
    assert reg.tags("plain") == {} and reg.tags("g1") == {"input": "noise", "role": "generator"}
    reg.tags("g1")["role"] = "changed"  # a copy: the registry keeps its own
    assert reg.names(role="generator") == ["g1"]


def test_build_checks_arguments_and_does_not_mutate_the_config():
    from medgan.errors import ConfigError

    reg = Registry("losses", noun="loss", renamed={"w": "weight"})

    @reg.register("scaled")
    def scaled(weight: float = 1.0, *, offset: float):
        return weight * 10 + offset

    cfg = {"type": "scaled", "weight": 2.0, "offset": 1.0}
    assert reg.build(cfg) == 21.0 and cfg == {"type": "scaled", "weight": 2.0, "offset": 1.0}
    with pytest.raises(ConfigError, match=r"^loss 'scaled': argument 'w' is now called 'weight'$"):
        reg.build({"type": "scaled", "w": 2.0, "offset": 0})
    with pytest.raises(ConfigError, match=r"unknown argument 'weigth' \(did you mean 'weight'\?\)"):
        reg.build({"type": "scaled", "weigth": 2.0, "offset": 0})
    with pytest.raises(ConfigError, match="missing required argument 'offset'"):
        reg.build("scaled")
    with pytest.raises(ConfigError, match="loss config needs a 'type' naming one of: scaled"):
        reg.build({"weight": 1})


def test_the_package_asks_the_registries_not_its_own_lists():
    from medgan.losses import ADVERSARIAL
    from medgan.nets import DISCRIMINATORS, NETS

    assert DISCRIMINATORS == ("dcgan_discriminator", "patchgan", "pixelgan", "srgan_discriminator")
    assert ADVERSARIAL == ("hinge", "lsgan", "r1", "vanilla", "wgan_gp")
    assert NETS.names(input="noise") == ["dcgan_generator"]
    assert {n: NETS.tags(n)["size_argument"] for n in NETS.names() if "size_argument" in NETS.tags(n)} == {
        "patchgan": "num_layers", "srgan_discriminator": "feature_size", "srresnet": "scale",
        "unet_generator": "num_downs"}


def test_unregister_removes_an_entry_and_refuses_unknown_names():
    reg = Registry("things")
    reg.register("a", kind="x")(dict)
    reg.unregister("a")
    assert "a" not in reg and reg.names(kind="x") == []
    with pytest.raises(KeyError, match="not registered"):
        reg.unregister("a")
