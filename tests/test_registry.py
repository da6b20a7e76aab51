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
