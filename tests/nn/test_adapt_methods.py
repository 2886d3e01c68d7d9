"""Core invariants, checked once for every registered adapter method (later methods are covered as
soon as they register): no-op at init, activation path == weight path, merged == unmerged after
training, bit-exact unmerge, disabled() == base, gradients only on adapter tensors, bit-exact
adapter-only save/load, dtypes and device/dtype moves.

The references are independent of the adapter's own forward: the untouched base model (a deep copy
taken before adapting), and the layer's torch functional form evaluated with ``W + delta_weight()``.
"""

import copy
import dataclasses

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = nn.functional

from lowrank.nn import AdapterMethod, LoRA, adapt, list_methods, load_adapter, register_method  # noqa: E402
from lowrank.nn.adapters import AdaptedLayer  # noqa: E402


# A second, deliberately different method: weight-space only (no delta_output, so the core's weight
# path is exercised), initialised from the frozen weight, and with one parameter shared by every
# layer of the adapter (saved once). delta W = (s + g) * W, s per output feature, g shared.
@dataclasses.dataclass(frozen=True)
class _RowScaleConfig:
    init: float = 0.0


@register_method("_test_rowscale")
class _RowScale(AdapterMethod):
    config_class = _RowScaleConfig

    @classmethod
    def _iv(cls, init=0.0):
        return _RowScaleConfig(init=float(init))

    def __init__(self, base, spec, config, *, generator, shared):
        super().__init__(base, spec, config, generator=generator, shared=shared)
        w = base.weight
        self.register_buffer("w", w.detach().clone(), persistent=False)
        self.s = nn.Parameter(torch.full((spec.out_features,), config.init, dtype=w.dtype, device=w.device))
        self.shared = shared
        shared.setdefault("g", lambda: nn.Parameter(torch.zeros((), dtype=w.dtype, device=w.device)))

    def delta_weight(self):
        scale = self.s + self.shared.g
        shape = [1] * len(self.spec.weight_shape)
        shape[self.spec.out_axis] = -1
        return scale.reshape(shape) * self.w


# A LoRA whose rank grows during training (as IncreLoRA's does): saving and loading must follow the
# grown shapes, through AdapterMethod.prepare_state.
@register_method("_test_growing_lora")
class _GrowingLoRA(LoRA):
    def grow(self, extra, generator):
        """Add ``extra`` rank-1 terms with a zero B column: the output does not change."""
        out_axis = self.spec.out_axis
        with torch.no_grad():
            if out_axis == 1:
                new_a = torch.zeros(self.A.shape[0], extra, dtype=self.A.dtype)
                self.A = nn.Parameter(torch.cat([self.A, new_a], 1))
                self.B = nn.Parameter(torch.cat([self.B, torch.randn(self.B.shape[0], extra, generator=generator,
                                                                       dtype=self.B.dtype)], 1))
            else:
                self.A = nn.Parameter(torch.cat([self.A, torch.randn(extra, *self.A.shape[1:], generator=generator,
                                                                       dtype=self.A.dtype)], 0))
                self.B = nn.Parameter(torch.cat([self.B, torch.zeros(self.B.shape[0], extra, dtype=self.B.dtype)], 1))

    def prepare_state(self, tensors):
        for name in ("A", "B"):
            if tuple(tensors[name].shape) != tuple(getattr(self, name).shape):
                old = getattr(self, name)
                setattr(self, name, nn.Parameter(torch.zeros(tensors[name].shape, dtype=old.dtype, device=old.device)))


METHODS = list_methods()


class AllLayers(nn.Module):
    """Every supported layer kind, with non-default options (padding_idx, reflect padding, stride)."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(30, 8, padding_idx=0)
        self.bag = nn.EmbeddingBag(30, 8, mode="sum")
        self.bagmax = nn.EmbeddingBag(30, 8, mode="max")
        self.c1 = nn.Conv1d(3, 4, 3, padding=1)
        self.c2 = nn.Conv2d(3, 4, 3, stride=2, padding=1, padding_mode="reflect")
        self.c3 = nn.Conv3d(3, 2, 2)
        self.fc = nn.Linear(100, 5)

    def forward(self, idx, seq, img, vol):
        parts = [self.emb(idx).mean(1), self.bag(idx), self.bagmax(idx), self.c1(seq).flatten(1),
                 self.c2(img).flatten(1), self.c3(vol).flatten(1)]
        return self.fc(torch.cat(parts, 1))


def _inputs(n=6, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 30, (n, 4), generator=g), torch.randn(n, 3, 6, generator=g).to(dtype),
            torch.randn(n, 3, 6, 6, generator=g).to(dtype), torch.randn(n, 3, 3, 3, 3, generator=g).to(dtype))


def _model(dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    return AllLayers().to(dtype)


def _adapt(model, method, **kw):
    from lowrank.nn.adapters._method import get_method

    takes_rank = "rank" in {f.name for f in dataclasses.fields(get_method(method).config_class)}
    return adapt(model, method, rng=0, **({"rank": 2} if takes_rank else {}), **kw)


def _train(model, adapter, steps=5, lr=1e-2, dtype=torch.float32):
    opt = torch.optim.Adam(adapter.trainable_parameters(), lr=lr)
    for step in range(steps):
        x = _inputs(dtype=dtype, seed=100 + step)
        opt.zero_grad()
        (model(*x) ** 2).mean().backward()
        opt.step()


def _adapter_tensors(adapter):
    state = adapter.state_dict()
    return {(p, k): v for p, ts in state["tensors"].items() for k, v in ts.items()} | \
        {(None, k): v for k, v in state["shared"].items()}


@pytest.fixture(params=METHODS)
def method(request):
    return request.param


class TestEveryMethod:
    def test_noop_at_init(self, method):
        from lowrank.nn.adapters._method import get_method

        if not getattr(get_method(method), "exact_at_init", True):
            pytest.skip(f"{method} starts from an approximation of the base weight by design (exact_at_init=False)")
        model = _model()
        base = copy.deepcopy(model)
        _adapt(model, method)
        x = _inputs()
        assert (model(*x) - base(*x)).abs().max() <= 1e-6

    def test_delta_output_is_the_layer_with_delta_weight(self, method):
        model = _model(torch.float64)
        adapter = _adapt(model, method)
        g = torch.Generator().manual_seed(3)
        with torch.no_grad():  # move off the (often zero) init so both paths are non-trivial
            for p in adapter.trainable_parameters():
                p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))
        model.eval()
        idx, seq, img, vol = _inputs(dtype=torch.float64)
        inputs = {"emb": idx, "bag": idx, "c1": seq, "c2": img, "c3": vol, "fc": torch.randn(4, 100, dtype=torch.float64)}
        for path, m in adapter.methods().items():
            if path not in inputs:
                continue  # the max-bag: not linear in its weight, the core never calls delta_output there
            x = inputs[path]
            reference = m.spec.apply(x, m.delta_weight())
            assert torch.allclose(m.delta_output(x), reference, atol=1e-10, rtol=1e-10), path
            assert m.delta_weight().shape == model.get_submodule(path).base_layer.weight.shape

    @pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
    def test_merged_equals_unmerged_after_training(self, method, dtype, tol):
        model = _model(dtype)
        adapter = _adapt(model, method)
        _train(model, adapter, dtype=dtype)
        model.eval()
        x = _inputs(dtype=dtype, seed=7)
        with torch.no_grad():
            unmerged = model(*x)
            # independent of the adapter's forward: each layer's functional form with W + delta W
            reference = copy.deepcopy(model)
            for path, layer in [(p, m) for p, m in reference.named_modules() if isinstance(m, AdaptedLayer)]:
                base = layer.base_layer
                base.weight += layer.adapters["default"].delta_weight()
                parent, _, child = path.rpartition(".")
                setattr(reference.get_submodule(parent) if parent else reference, child, base)
            merged_reference = reference(*x)
            adapter.merge()
            merged = model(*x)
        assert adapter.merged
        assert (unmerged - merged).abs().max() <= tol
        assert (merged - merged_reference).abs().max() <= tol
        assert (unmerged - base_output(model, adapter, x)).abs().max() > 100 * tol  # training moved it

    def test_unmerge_restores_base_weights_bit_exactly(self, method):
        model = _model()
        before = {k: v.clone() for k, v in model.state_dict().items()}
        adapter = _adapt(model, method)
        _train(model, adapter)
        adapter.merge()
        adapter.unmerge()
        after = {k.replace("base_layer.", ""): v for k, v in model.state_dict().items() if ".adapters." not in k}
        assert after.keys() == before.keys()
        assert all(torch.equal(after[k], before[k]) for k in before)

    def test_disabled_gives_base_outputs(self, method):
        model = _model()
        base = copy.deepcopy(model)
        adapter = _adapt(model, method)
        _train(model, adapter)
        x = _inputs(seed=9)
        with torch.no_grad():
            adapted = model(*x)
            with adapter.disabled():
                assert torch.equal(model(*x), base(*x))
            adapter.merge()
            with adapter.disabled():  # merged too: the saved base weights are used
                assert torch.equal(model(*x), base(*x))
            assert (model(*x) - adapted).abs().max() <= 1e-5

    def test_only_adapter_parameters_get_gradients(self, method):
        model = _model()
        adapter = _adapt(model, method)
        _train(model, adapter, steps=1)
        model.zero_grad(set_to_none=True)
        (model(*_inputs()) ** 2).mean().backward()
        adapter_ids = {id(p) for p in adapter.trainable_parameters()}
        for name, p in model.named_parameters():
            if id(p) in adapter_ids:
                assert p.requires_grad and p.grad is not None and p.grad.abs().sum() > 0, name
            else:
                assert not p.requires_grad and p.grad is None, name
        assert adapter.num_trainable == sum(p.numel() for p in adapter.trainable_parameters())

    def test_save_load_roundtrip_bit_exact(self, method, tmp_path):
        model = _model()
        adapter = _adapt(model, method)
        _train(model, adapter)
        path = tmp_path / "adapter.npz"
        adapter.save(path)
        fresh = _model()  # same seed: same base weights, no adapter
        loaded = load_adapter(fresh, path)
        assert loaded.method == method and loaded.config == adapter.config and loaded.targets == adapter.targets
        mine, theirs = _adapter_tensors(adapter), _adapter_tensors(loaded)
        assert mine.keys() == theirs.keys()
        assert all(torch.equal(mine[k], theirs[k]) for k in mine)
        x = _inputs(seed=11)
        assert torch.equal(fresh(*x), model(*x))

    def test_state_dict_holds_adapter_tensors_only(self, method):
        model = _model()
        adapter = _adapt(model, method)
        state = adapter.state_dict()
        assert state["method"] == method
        base_ids = {id(model.get_submodule(p).base_layer.weight) for p in adapter.targets}
        stored = [v for v in _adapter_tensors(adapter).values()]
        assert not any(v.data_ptr() == model.get_submodule(p).base_layer.weight.data_ptr()
                       for v in stored for p in adapter.targets)
        assert sum(v.numel() for v in stored) >= adapter.num_trainable
        assert base_ids  # every target adapted
        # load_state_dict of one's own state is the identity; of a perturbed copy, that copy
        other = copy.deepcopy(state)
        for ts in other["tensors"].values():
            for v in ts.values():
                if v.is_floating_point():  # index buffers (a permutation) stay valid
                    v.add_(1.0)
        adapter.load_state_dict(other)
        now = _adapter_tensors(adapter)
        for (p, k), v in now.items():
            expected = other["tensors"][p][k] if p is not None else other["shared"][k]
            assert torch.equal(v, expected)

    def test_config_validation_is_idempotent(self, method):
        adapter = _adapt(_model(), method)
        cls = type(next(iter(adapter.methods().values())))
        assert cls._iv(**dataclasses.asdict(adapter.config)) == adapter.config

    def test_bfloat16(self, method):
        model = _model(torch.bfloat16)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        adapter = _adapt(model, method)
        assert all(p.dtype == torch.bfloat16 for p in adapter.trainable_parameters())
        _train(model, adapter, dtype=torch.bfloat16)
        model.eval()
        x = _inputs(dtype=torch.bfloat16, seed=5)
        with torch.no_grad():
            unmerged = model(*x).float()
            adapter.merge()
            merged = model(*x).float()
            adapter.unmerge()
        # bf16 keeps 8 bits: W + delta W rounds once more than the activation-space sum
        assert (unmerged - merged).abs().max() <= 5e-2 * max(1.0, unmerged.abs().max().item())
        after = {k.replace("base_layer.", ""): v for k, v in model.state_dict().items() if ".adapters." not in k}
        assert all(torch.equal(after[k], before[k]) for k in before)

    def test_to_dtype_moves_adapters_with_the_model(self, method):
        model = _model()
        adapter = _adapt(model, method)
        _train(model, adapter)
        x = _inputs(seed=4)
        with torch.no_grad():
            out32 = model(*x)
            model.to(torch.float64)
            assert all(p.dtype == torch.float64 for p in adapter.trainable_parameters())
            out64 = model(*[t if t.dtype == torch.int64 else t.double() for t in x])
        assert out64.dtype == torch.float64
        assert (out64 - out32.double()).abs().max() <= 1e-5


def base_output(model, adapter, x):
    with adapter.disabled():
        return model(*x)


class TestSeveralAdapters:
    def test_add_switch_delete(self, tmp_path):
        model = _model()
        base = copy.deepcopy(model)
        first = adapt(model, "lora", targets=["fc", "c2"], rank=2, rng=0, init="gaussian")
        second = first.add("other", "_test_rowscale", targets=["fc", "emb"], init=0.1)
        assert first.names == ["default", "other"] and first.active == "other"
        x = _inputs(seed=2)
        with torch.no_grad():
            for p in first.trainable_parameters():  # make "default" non-trivial
                p.add_(0.05)
            out_other = model(*x)
            first.set_active("default")
            out_default = model(*x)
            # only the active adapter trains
            assert all(p.requires_grad for p in first.trainable_parameters())
            assert not any(p.requires_grad for p in second.trainable_parameters())
            # each adapter alone on a copy of the base gives the same outputs
            alone = copy.deepcopy(base)
            a = adapt(alone, "lora", targets=["fc", "c2"], rank=2, rng=0, init="gaussian")
            a.load_state_dict(first.state_dict())
            assert torch.equal(alone(*x), out_default)
            first.set_active(None)
            assert torch.equal(model(*x), base(*x))
            first.set_active("other")
            assert torch.equal(model(*x), out_other)
            first.delete("other")
            assert first.names == ["default"] and isinstance(model.emb, nn.Embedding)
            first.set_active("default")
            assert torch.equal(model(*x), out_default)
            first.delete()
        assert first.names == [] and type(model.fc) is nn.Linear
        assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), base.state_dict().values()))

    def test_switching_while_merged_is_an_error(self):
        model = _model()
        a = adapt(model, "lora", targets="fc", rank=2, rng=0)
        a.add("b", "lora", targets="fc", rank=1, rng=1)
        a.merge()
        with pytest.raises(ValueError, match="merged"):
            a.set_active("b")
        with pytest.raises(ValueError, match="merged"):
            a.add("c", "lora", targets="fc", rank=1)
        a.delete()  # deleting a merged adapter unmerges it first
        assert a.names == ["b"]

    def test_merge_and_unload_gives_plain_layers(self):
        model = _model()
        a = adapt(model, "lora", rank=2, rng=0, init="gaussian")
        with torch.no_grad():
            for p in a.trainable_parameters():
                p.normal_(generator=torch.Generator().manual_seed(0))
        x = _inputs(seed=1)
        model.eval()
        with torch.no_grad():
            before = model(*x)
            plain = a.merge_and_unload()
            assert not any(isinstance(m, AdaptedLayer) for m in plain.modules())
            assert (plain(*x) - before).abs().max() <= 1e-4 * before.abs().max()


def test_a_grown_adapter_saves_and_loads_its_grown_shapes(tmp_path):
    model = _model()
    adapter = adapt(model, "_test_growing_lora", targets=["fc", "c2", "emb"], rank=1, rng=0)
    x = _inputs(seed=3)
    with torch.no_grad():
        before = model(*x)
        g = torch.Generator().manual_seed(0)
        for m in adapter.methods().values():
            m.grow(2, g)
        assert torch.equal(model(*x), before)  # growth adds zero terms
    _train(model, adapter)
    assert adapter.methods()["fc"].A.shape == (3, 100)
    adapter.save(tmp_path / "grown.npz")
    fresh = _model()
    loaded = load_adapter(fresh, tmp_path / "grown.npz")
    assert loaded.methods()["fc"].A.shape == (3, 100) and loaded.num_trainable == adapter.num_trainable
    assert torch.equal(fresh(*x), model(*x))
