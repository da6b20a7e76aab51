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
