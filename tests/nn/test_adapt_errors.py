"""Bad input to adapt / load_adapter / Adapter gives a clear error naming the argument; a failed
call leaves the model as it was; a damaged or half-written file never passes for a good one."""

import copy

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from lowrank._utils.io import CorruptFileError  # noqa: E402
from lowrank.nn import Adapter, adapt, list_methods, load_adapter  # noqa: E402
from lowrank.nn.adapters import AdaptedLayer  # noqa: E402


class Net(nn.Module):
    def __init__(self, width=16):
        super().__init__()
        self.fc1 = nn.Linear(8, width)
        self.fc2 = nn.Linear(width, 4)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def _unchanged(model, snapshot):
    return (not any(isinstance(m, AdaptedLayer) for m in model.modules())
            and all(p.requires_grad for p in model.parameters())
            and all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), snapshot.state_dict().values())))


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(method="nope"), ValueError, r"`method` must be one of the registered adapter methods \(.*'lora'"),
    (dict(targets="fc9"), ValueError, r"`targets`: 'fc9' matches no module"),
    (dict(targets="act"), TypeError, r"module 'act' is a ReLU"),
    (dict(targets=[3]), TypeError, r"`targets` entries must be"),
    (dict(rank=5, targets="fc2"), ValueError, r"`rank`=5 is above what layer 'fc2' \(Linear 16->4\) allows: rank <= 4"),
    (dict(rank=0), ValueError, r"`rank` must satisfy"),
    (dict(rank=2.0), TypeError, r"`rank` must be an integer"),
    (dict(colour="red"), TypeError, r"unknown option `colour` for adapter method 'lora'; its options are rank, "),
    (dict(init="xavier"), ValueError, r"`init` must be one of"),
    (dict(dropout=1.0), ValueError, r"`dropout` must satisfy"),
    (dict(alpha=float("nan")), ValueError, r"`alpha` must be finite"),
    (dict(name="a.b"), ValueError, r"`name` must be a non-empty"),
    (dict(name="keys"), ValueError, r"`name` must be a non-empty"),
    (dict(name=3), TypeError, r"`name` must be a string"),
    (dict(rng=-1, rank=2), ValueError, r"`rng`"),
])
def test_adapt_errors_name_the_argument_and_leave_the_model(kwargs, error, match):
    model = Net()
    snapshot = copy.deepcopy(model)
    with pytest.raises(error, match=match):
        adapt(model, **kwargs)
    assert _unchanged(model, snapshot)


def test_unknown_method_lists_every_registered_one():
    with pytest.raises(ValueError) as info:
        adapt(Net(), "nope")
    for name in list_methods():
        assert repr(name) in str(info.value)


def test_model_must_be_a_module():
    with pytest.raises(TypeError, match="`model` must be a torch.nn.Module"):
        adapt(torch.zeros(3))


@pytest.mark.parametrize("module, match", [
    (nn.Conv2d(4, 4, 3, groups=2), r"layer 'layer' is a grouped Conv2d \(groups=2\)"),
    (nn.Embedding(10, 4, max_norm=1.0), r"layer 'layer' has max_norm=1.0"),
    (nn.MultiheadAttention(8, 2).out_proj, r"out_proj of an nn.MultiheadAttention"),
    (nn.ConvTranspose2d(3, 3, 2), r"module 'layer' is a ConvTranspose2d; supported layers are Linear"),
])
def test_unsupported_layers_are_named(module, match):
    model = nn.Module()
    model.layer = module
    with pytest.raises((ValueError, TypeError), match=match):
        adapt(model, targets="layer")


def test_targets_none_skips_layers_it_cannot_adapt():
    model = nn.Module()
    model.grouped = nn.Conv2d(4, 4, 3, groups=2)
    model.attn = nn.MultiheadAttention(8, 2)
    model.fc = nn.Linear(8, 8)
    adapter = adapt(model, rank=2)
    assert adapter.targets == ["fc"]


def test_lora_dropout_on_an_embedding_is_an_error():
    model = nn.Sequential(nn.Embedding(10, 4))
    with pytest.raises(ValueError, match=r"`dropout`: layer '0' is an Embedding"):
        adapt(model, rank=2, dropout=0.1)


def test_name_taken_and_missing_adapter():
    model = Net()
    adapter = adapt(model, rank=2)
    with pytest.raises(ValueError, match="has an adapter 'default' already"):
        adapt(model, rank=2)
    with pytest.raises(ValueError, match=r"`name` must be one of the model's adapters \['default'\] or None"):
        adapter.set_active("other")
    adapter.delete()
    with pytest.raises(ValueError, match="the model has no adapter 'default'"):
        adapter.merge()
    with pytest.raises(ValueError, match="the model has no adapter 'x'"):
        Adapter(model, "x").state_dict()


def _saved(tmp_path, width=16, **kw):
    torch.manual_seed(0)
    model = Net(width)
    adapter = adapt(model, rank=2, rng=0, **kw)
    path = tmp_path / "adapter.npz"
    adapter.save(path)
    return model, adapter, path


def test_load_onto_other_shapes_or_layers_is_an_error(tmp_path):
    _, _, path = _saved(tmp_path)
    with pytest.raises(ValueError, match=r"layer 'fc1' is a Linear of weight shape \(32, 8\), but .* weight shape \(16, 8\)"):
        load_adapter(Net(width=32), path)
    other = nn.Sequential()
    other.fc1 = nn.Linear(8, 16)
    with pytest.raises(ValueError, match=r"`model` has no adaptable layer 'fc2'"):
        load_adapter(other, path)
    with pytest.raises(FileNotFoundError):
        load_adapter(Net(), tmp_path / "missing.npz")


def test_load_into_an_adapter_of_another_config_or_layers_is_an_error(tmp_path):
    _, adapter, path = _saved(tmp_path)
    model = Net()
    adapt(model, rank=1)
    with pytest.raises(ValueError, match=r"the config differs .*rank=2 there, 1 here"):
        load_adapter(model, path)
    model = Net()
    adapt(model, targets="fc1", rank=2)
    with pytest.raises(ValueError, match=r"adapts other layers .*only in .*\['fc2'\]"):
        load_adapter(model, path)
    model = Net()
    adapt(model, rank=2)
    state = adapter.state_dict()
    state["method"] = "not-lora"
    with pytest.raises(ValueError, match=r"`state` holds a 'not-lora' adapter"):
        Adapter(model).load_state_dict(state)
    with pytest.raises(ValueError, match=r"`state` must be an adapter state dict"):
        Adapter(model).load_state_dict({"A": torch.zeros(2)})


def test_load_a_file_of_another_method_is_an_error(tmp_path):
    _, adapter, path = _saved(tmp_path)
    model = Net()

    class Other(type(next(iter(adapter.methods().values())))):
        pass

    from lowrank.nn import register_method
    from lowrank.nn.adapters._method import _REGISTRY

    register_method("_test_other_lora", Other)
    try:
        adapt(model, "_test_other_lora", rank=2)
        with pytest.raises(ValueError, match=r"holds a 'lora' adapter; adapter 'default' is '_test_other_lora'"):
            load_adapter(model, path)
    finally:
        del _REGISTRY["_test_other_lora"]


def test_corrupt_or_truncated_file_is_a_value_error_naming_the_path(tmp_path):
    _, _, path = _saved(tmp_path)
    data = path.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated.npz") as info:
        load_adapter(Net(), truncated)
    assert isinstance(info.value, CorruptFileError)
    flipped = tmp_path / "flipped.npz"
    raw = bytearray(data)
    raw[len(raw) // 3] ^= 0xFF
    flipped.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="flipped.npz"):
        load_adapter(Net(), flipped)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not an adapter")
    with pytest.raises(ValueError, match="garbage.npz"):
        load_adapter(Net(), garbage)


def test_a_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    model, adapter, path = _saved(tmp_path)
    good = path.read_bytes()
    import numpy as np

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        adapter.save(path)
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter.npz"]


def test_load_while_merged_is_an_error(tmp_path):
    model, adapter, path = _saved(tmp_path)
    adapter.merge()
    with pytest.raises(ValueError, match="is merged; unmerge"):
        load_adapter(model, path)


def test_a_module_used_twice_is_an_error():
    model = nn.Module()
    shared = nn.Linear(4, 4)
    model.a, model.b = shared, shared
    with pytest.raises(ValueError, match=r"layer 'a' is the same module as 'b'"):
        adapt(model, targets="a", rank=2)


def test_merging_a_tied_weight_is_an_error_and_unmerged_stays_exact():
    torch.manual_seed(0)
    model = nn.Module()
    model.emb = nn.Embedding(10, 4)
    model.out = nn.Linear(4, 10, bias=False)
    model.out.weight = model.emb.weight  # tied, as in language models
    adapter = adapt(model, targets="emb", rank=2, rng=0, init="gaussian")
    with torch.no_grad():
        adapter.methods()["emb"].A.normal_()
    idx = torch.tensor([1, 2, 3])
    m = adapter.methods()["emb"]
    expected = model.out(model.emb.base_layer(idx) + m.A[idx] @ m.B.T * m.scaling)
    assert torch.allclose(model.out(model.emb(idx)), expected, atol=1e-6)
    with pytest.raises(ValueError, match=r"layer 'emb' shares its weight with 'out' \(tied weights\)"):
        adapter.merge()
    assert not adapter.merged and torch.allclose(model.out(model.emb(idx)), expected, atol=1e-6)
