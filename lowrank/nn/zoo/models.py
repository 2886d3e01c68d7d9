"""Small reusable models of the zoo, and seeded construction that never touches the global RNG.

Every model is an ordinary ``torch.nn.Module`` (constructing one directly uses torch's default,
global-RNG initialization); :func:`seeded` builds one on the meta device and initializes every
parameter from a ``torch.Generator`` with the same distributions torch uses by default, so a zoo
task is reproducible from its seed whatever else the process does with the global RNG.

Layer names are part of the contract (later methods target them): an :class:`MLP` has ``fc1``,
``fc2``, ... and ``head``; attention modules have ``q``, ``k``, ``v``, ``o``; a :class:`MoEMLP` has
``experts`` (a ModuleList of MLPs) and ``router``; a :class:`ResidualMLP` has ``blocks``.
"""

import math

from lowrank._utils.optional import import_optional

torch = import_optional("torch", purpose="lowrank.nn.zoo")
nn = torch.nn
F = nn.functional

__all__ = ["seeded", "init_parameters", "MLP"]


def _uniform_(tensor, bound, generator):
    with torch.no_grad():
        tensor.uniform_(-bound, bound, generator=generator)


def init_parameters(model, generator):
    """Initialize every parameter of ``model`` in place from ``generator``.

    Linear and Conv layers get torch's default (``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` for weight
    and bias), ``nn.MultiheadAttention`` its default (Xavier-uniform input projection, zero biases),
    Embedding ``N(0, 1)``, LayerNorm ones and zeros; a module with its own parameters defines
    ``init_own_parameters(generator)``.

    Parameters
    ----------
    model : torch.nn.Module
    generator : torch.Generator

    Returns
    -------
    torch.nn.Module
        ``model``.

    Raises
    ------
    TypeError
        If a parameter belongs to a module of a kind this function cannot initialize (so nothing is
        left at whatever the meta device or global RNG gave it).

    Examples
    --------
    >>> from lowrank.nn.zoo.models import init_parameters
    >>> a = init_parameters(torch.nn.Linear(3, 2), torch.Generator().manual_seed(0))
    >>> b = init_parameters(torch.nn.Linear(3, 2), torch.Generator().manual_seed(0))
    >>> bool(torch.equal(a.weight, b.weight))
    True
    """
    done = set()
    # torch zeroes the bias of nn.MultiheadAttention's out_proj after the default Linear init
    mha_out = {id(m.out_proj) for m in model.modules() if isinstance(m, nn.MultiheadAttention)}
    for module in model.modules():
        own = dict(module.named_parameters(recurse=False))
        if not own:
            continue
        if hasattr(module, "init_own_parameters"):
            module.init_own_parameters(generator)
        elif isinstance(module, nn.MultiheadAttention):
            _init_mha(module, generator)
        elif isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            fan_in = module.weight[0].numel()
            _uniform_(module.weight, 1 / math.sqrt(fan_in), generator)
            if module.bias is not None:
                _uniform_(module.bias, 1 / math.sqrt(fan_in), generator)
                if id(module) in mha_out:
                    with torch.no_grad():
                        module.bias.zero_()
        elif isinstance(module, nn.Embedding):
            with torch.no_grad():
                module.weight.normal_(0.0, 1.0, generator=generator)
        elif isinstance(module, nn.LayerNorm):
            with torch.no_grad():
                module.weight.fill_(1.0)
                if module.bias is not None:
                    module.bias.zero_()
        else:
            raise TypeError(f"cannot initialize the parameters of a {type(module).__name__} "
                            f"({', '.join(own)}); give it an `init_own_parameters(generator)` method")
        done.update(id(p) for p in own.values())
    for name, p in model.named_parameters():
        if id(p) not in done:
            raise TypeError(f"parameter {name!r} was not initialized")
    return model


def _init_mha(module, generator):
    own = dict(module.named_parameters(recurse=False))
    with torch.no_grad():
        for name in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight"):
            if name in own:
                w = own[name]
                bound = math.sqrt(6.0 / (w.shape[0] + w.shape[1]))
                _uniform_(w, bound, generator)
        for name in ("in_proj_bias", "bias_k", "bias_v"):
            if name in own:
                own[name].zero_()


def seeded(factory, generator):
    """Build ``factory()`` on the meta device and initialize it from ``generator`` on the CPU.

    No parameter is ever drawn from the global RNG, so the result depends on ``generator`` only.

    Parameters
    ----------
    factory : callable
        ``factory() -> torch.nn.Module``.
    generator : torch.Generator

    Returns
    -------
    torch.nn.Module
        On the CPU, float32, in eval mode.

    Examples
    --------
    >>> from lowrank.nn.zoo.models import seeded, MLP
    >>> a = seeded(lambda: MLP(4, [8], 2), torch.Generator().manual_seed(1))
    >>> b = seeded(lambda: MLP(4, [8], 2), torch.Generator().manual_seed(1))
    >>> bool(torch.equal(a.fc1.weight, b.fc1.weight))
    True
    """
    with torch.device("meta"):
        model = factory()
    model = model.to_empty(device="cpu")
    # the meta device has no buffer values either; every zoo model keeps none
    for name, _ in model.named_buffers():
        raise TypeError(f"seeded() cannot rebuild buffer {name!r}")
    init_parameters(model, generator)
    return model.eval()


class MLP(nn.Module):
    """Fully connected ReLU network: ``fc1 -> relu -> fc2 -> relu -> ... -> head``.

    Parameters
    ----------
    in_features : int
        Input width.
    hidden : sequence of int
        Widths of the hidden layers ``fc1``, ``fc2``, ...
    out_features : int
        Width of the output layer ``head``.

    Examples
    --------
    >>> from lowrank.nn.zoo.models import MLP
    >>> MLP(64, [256, 256], 10)(torch.zeros(5, 64)).shape
    torch.Size([5, 10])
    """

    def __init__(self, in_features, hidden, out_features):
        super().__init__()
        sizes = [in_features, *hidden]
        self.n_hidden = len(hidden)
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
            setattr(self, f"fc{i}", nn.Linear(a, b))
        self.act = nn.ReLU()
        self.head = nn.Linear(sizes[-1], out_features)

    def features(self, x):
        """The last hidden layer's activations (the head's input)."""
        for i in range(1, self.n_hidden + 1):
            x = self.act(getattr(self, f"fc{i}")(x))
        return x

    def forward(self, x):
        return self.head(self.features(x))
