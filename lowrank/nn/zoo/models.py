"""Small reusable models of the zoo, and seeded construction that never touches the global RNG.

Every model is an ordinary ``torch.nn.Module`` (constructing one directly uses torch's default,
global-RNG initialization); :func:`~lowrank.nn.zoo.seeded` builds one on the meta device and initializes every
parameter from a ``torch.Generator`` with the same distributions torch uses by default, so a zoo
task is reproducible from its seed whatever else the process does with the global RNG.

Layer names are part of the contract (later methods target them): an :class:`~lowrank.nn.zoo.MLP` has ``fc1``,
``fc2``, ... and ``head``; attention modules have ``q``, ``k``, ``v``, ``o``; a :class:`~lowrank.nn.zoo.MoEMLP` has
``experts`` (a ModuleList of MLPs) and ``router``; a :class:`~lowrank.nn.zoo.ResidualMLP` has ``blocks``.
"""

import math

from lowrank._utils.optional import import_optional

torch = import_optional("torch", purpose="lowrank.nn.zoo")
nn = torch.nn
F = nn.functional

__all__ = [
    "seeded", "init_parameters", "MLP", "FeedForward", "SelfAttention", "TransformerBlock", "TinyTransformer",
    "PatchViT", "ConvNet", "MoEMLP", "MoEClassifier", "ResidualBlock", "ResidualMLP",
]


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
        Initialized in place.
    generator : torch.Generator
        The only source of randomness.

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
        The only source of randomness.

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


def _activation(name):
    return nn.GELU() if name == "gelu" else nn.ReLU()


class FeedForward(nn.Module):
    """Two-layer perceptron ``fc2(act(fc1(x)))``: the MLP pair of a block, or one expert.

    Parameters
    ----------
    d_in : int
        Input width.
    d_hidden : int
        Width of ``fc1``'s output.
    d_out : int, optional
        Output width (default ``d_in``).
    activation : {"relu", "gelu"}, default="relu"

    Examples
    --------
    >>> from lowrank.nn.zoo.models import FeedForward
    >>> FeedForward(8, 32)(torch.zeros(2, 8)).shape
    torch.Size([2, 8])
    """

    def __init__(self, d_in, d_hidden, d_out=None, *, activation="relu"):
        super().__init__()
        self.fc1 = nn.Linear(d_in, d_hidden)
        self.act = _activation(activation)
        self.fc2 = nn.Linear(d_hidden, d_in if d_out is None else d_out)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class SelfAttention(nn.Module):
    """Multi-head self-attention with separate ``q``, ``k``, ``v`` and ``o`` Linear layers.

    ``o(concat_h softmax(q_h k_h^T / sqrt(d_head)) v_h)``, written out (no fused kernel) so that
    methods acting on the query-key or value-output pairs of each head see every matrix.

    Parameters
    ----------
    d_model : int
        Model width (a multiple of ``n_heads``).
    n_heads : int
        Number of heads.

    Examples
    --------
    >>> from lowrank.nn.zoo.models import SelfAttention
    >>> SelfAttention(16, 4)(torch.zeros(2, 5, 16)).shape
    torch.Size([2, 5, 16])
    """

    def __init__(self, d_model, n_heads):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"`d_model` ({d_model}) must be a multiple of `n_heads` ({n_heads})")
        self.n_heads = n_heads
        self.d_head = d_model // n_heads
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, d_model)
        self.v = nn.Linear(d_model, d_model)
        self.o = nn.Linear(d_model, d_model)

    def _heads(self, x):
        batch, length, _ = x.shape
        return x.view(batch, length, self.n_heads, self.d_head).transpose(1, 2)

    def attention_weights(self, x):
        """Softmax attention of every head: shape ``(batch, n_heads, length, length)``."""
        q, k = self._heads(self.q(x)), self._heads(self.k(x))
        return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(self.d_head), dim=-1)

    def forward(self, x):
        batch, length, d_model = x.shape
        heads = self.attention_weights(x) @ self._heads(self.v(x))
        return self.o(heads.transpose(1, 2).reshape(batch, length, d_model))


class TransformerBlock(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``.

    Parameters
    ----------
    d_model, n_heads, d_ff : int
        Width, heads, and the hidden width of ``mlp`` (a :class:`~lowrank.nn.zoo.FeedForward`, GELU).
    attention : {"separate", "torch"}, default="separate"
        :class:`~lowrank.nn.zoo.SelfAttention` (``q``/``k``/``v``/``o`` Linears) or ``nn.MultiheadAttention``
        (one packed ``in_proj_weight`` and ``out_proj``).

    Notes
    -----
    ``attn`` may be swapped for another module after construction (e.g. a low-rank attention): the
    block calls ``attn(q, k, v, need_weights=False)[0]`` on an ``nn.MultiheadAttention`` and
    ``attn(x)`` (``(batch, length, d_model)`` in and out) on anything else.

    Examples
    --------
    >>> from lowrank.nn.zoo.models import TransformerBlock
    >>> TransformerBlock(16, 4, 32, attention="torch")(torch.zeros(2, 5, 16)).shape
    torch.Size([2, 5, 16])
    """

    def __init__(self, d_model, n_heads, d_ff, *, attention="separate"):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        if attention == "torch":
            self.attn = nn.MultiheadAttention(d_model, n_heads, batch_first=True)
        else:
            self.attn = SelfAttention(d_model, n_heads)
        self.norm2 = nn.LayerNorm(d_model)
        self.mlp = FeedForward(d_model, d_ff, activation="gelu")

    def forward(self, x):
        h = self.norm1(x)
        if isinstance(self.attn, nn.MultiheadAttention):
            h = self.attn(h, h, h, need_weights=False)[0]
        else:
            h = self.attn(h)
        x = x + h
        return x + self.mlp(self.norm2(x))


class TinyTransformer(nn.Module):
    """Encoder-only transformer over token ids: ``embed + pos -> blocks -> norm -> head`` per position.

    Parameters
    ----------
    vocab_size : int
        Number of input tokens.
    max_len : int
        Longest sequence (rows of the learned position table ``pos``).
    n_outputs : int
        Width of ``head`` (logits per position).
    d_model : int, default=64
        Width of the residual stream.
    n_heads : int, default=4
        Attention heads (dividing ``d_model``).
    n_layers : int, default=2
        Number of blocks in ``blocks``.
    d_ff : int, default=256
        Hidden width of each block's ``mlp``.
    attention : {"separate", "torch"}, default="separate"
        See :class:`~lowrank.nn.zoo.TransformerBlock`.

    Examples
    --------
    >>> from lowrank.nn.zoo.models import TinyTransformer
    >>> TinyTransformer(10, 8, 10)(torch.zeros(2, 8, dtype=torch.long)).shape
    torch.Size([2, 8, 10])
    """

    def __init__(self, vocab_size, max_len, n_outputs, *, d_model=64, n_heads=4, n_layers=2, d_ff=256,
                 attention="separate"):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Parameter(torch.zeros(max_len, d_model))
        self.blocks = nn.ModuleList(TransformerBlock(d_model, n_heads, d_ff, attention=attention)
                                    for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, n_outputs)

    def init_own_parameters(self, generator):
        with torch.no_grad():
            self.pos.normal_(0.0, 1.0, generator=generator)

    def forward(self, tokens):
        x = self.embed(tokens) + self.pos[: tokens.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


class PatchViT(nn.Module):
    """Vision transformer on non-overlapping patches: ``patch`` embedding, a class token, ``blocks``.

    Parameters
    ----------
    image_size : int
        Side of the (square) input image.
    patch_size : int
        Side of a patch (divides ``image_size``).
    n_classes : int
        Width of ``head`` (applied to the final class token).
    in_channels : int, default=1
        Image channels.
    d_model : int, default=64
        Width of the token stream.
    n_heads : int, default=4
        Attention heads (dividing ``d_model``).
    n_layers : int, default=2
        Number of blocks in ``blocks``.
    d_ff : int, default=128
        Hidden width of each block's ``mlp``.
    attention : {"separate", "torch"}, default="separate"
        See :class:`~lowrank.nn.zoo.TransformerBlock`.

    Examples
    --------
    >>> from lowrank.nn.zoo.models import PatchViT
    >>> PatchViT(8, 2, 10)(torch.zeros(3, 1, 8, 8)).shape
    torch.Size([3, 10])
    """

    def __init__(self, image_size, patch_size, n_classes, *, in_channels=1, d_model=64, n_heads=4, n_layers=2,
                 d_ff=128, attention="separate"):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"`patch_size` ({patch_size}) must divide `image_size` ({image_size})")
        self.patch_size = patch_size
        n_patches = (image_size // patch_size) ** 2
        self.patch = nn.Linear(in_channels * patch_size**2, d_model)
        self.cls = nn.Parameter(torch.zeros(1, 1, d_model))
        self.pos = nn.Parameter(torch.zeros(n_patches + 1, d_model))
        self.blocks = nn.ModuleList(TransformerBlock(d_model, n_heads, d_ff, attention=attention)
                                    for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, n_classes)

    def init_own_parameters(self, generator):
        with torch.no_grad():
            self.cls.normal_(0.0, 0.02, generator=generator)
            self.pos.normal_(0.0, 0.02, generator=generator)

    def patches(self, images):
        """``(batch, channels, H, W) -> (batch, n_patches, channels * patch_size**2)``, row-major."""
        p = self.patch_size
        b, c, h, w = images.shape
        x = images.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
        return x.reshape(b, (h // p) * (w // p), c * p * p)

    def forward(self, images):
        x = self.patch(self.patches(images))
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x[:, 0]))


class ConvNet(nn.Module):
    """Small ConvNet: ``conv1 -> conv2 (stride 2) -> conv3 (stride 2) -> fc -> head``, ReLU.

    Parameters
    ----------
    image_size : int
        Side of the square input (a multiple of 4).
    n_classes : int
        Width of ``head``.
    in_channels : int, default=3
        Image channels.
    channels : tuple of 3 int, default=(16, 32, 32)
        Output channels of ``conv1``, ``conv2``, ``conv3`` (3x3 kernels, padding 1).
    hidden : int, default=64
        Width of ``fc``.

    Examples
    --------
    >>> from lowrank.nn.zoo.models import ConvNet
    >>> ConvNet(16, 4)(torch.zeros(2, 3, 16, 16)).shape
    torch.Size([2, 4])
    """

    def __init__(self, image_size, n_classes, *, in_channels=3, channels=(16, 32, 32), hidden=64):
        super().__init__()
        c1, c2, c3 = channels
        self.conv1 = nn.Conv2d(in_channels, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(c2, c3, 3, stride=2, padding=1)
        self.act = nn.ReLU()
        self.fc = nn.Linear(c3 * (image_size // 4) ** 2, hidden)
        self.head = nn.Linear(hidden, n_classes)

    def features(self, images):
        """The head's input: ``act(fc(flatten(conv3(...))))``."""
        x = self.act(self.conv1(images))
        x = self.act(self.conv2(x))
        x = self.act(self.conv3(x))
        return self.act(self.fc(x.flatten(1)))

    def forward(self, images):
        return self.head(self.features(images))


class MoEMLP(nn.Module):
    """Mixture of expert MLPs with top-k routing, ``d_model -> d_model``.

    ``y = sum_{e in topk(router(x))} g_e(x) experts[e](x)`` with ``g`` the softmax of the top-k
    router logits. Every expert is evaluated on every row (exact and simple at zoo sizes; a
    dispatching implementation would give the same output). After each forward,
    ``balance_loss`` holds the Switch-Transformer load-balancing term
    ``n_experts * sum_e f_e P_e`` (``f_e``: fraction of routed slots, ``P_e``: mean router probability).

    Parameters
    ----------
    d_model : int
        Input and output width.
    d_hidden : int
        Hidden width of every expert (a :class:`~lowrank.nn.zoo.FeedForward`, ReLU).
    n_experts : int, default=8
        Number of experts (and router outputs).
    top_k : int, default=2
        Experts mixed per input.

    Examples
    --------
    >>> from lowrank.nn.zoo.models import MoEMLP
    >>> moe = MoEMLP(16, 32)
    >>> moe(torch.zeros(5, 16)).shape, len(moe.experts), moe.router.out_features
    (torch.Size([5, 16]), 8, 8)
    """

    def __init__(self, d_model, d_hidden, *, n_experts=8, top_k=2):
        super().__init__()
        if not 1 <= top_k <= n_experts:
            raise ValueError(f"`top_k` must satisfy 1 <= top_k <= n_experts = {n_experts}, got {top_k}")
        self.top_k = top_k
        self.router = nn.Linear(d_model, n_experts)
        self.experts = nn.ModuleList(FeedForward(d_model, d_hidden) for _ in range(n_experts))
        self.balance_loss = None

    def route(self, x):
        """``(gates, indices, logits)``: top-k softmax weights ``(n, k)``, expert ids ``(n, k)``, logits."""
        logits = self.router(x)
        top, indices = logits.topk(self.top_k, dim=-1)
        return torch.softmax(top, dim=-1), indices, logits

    def forward(self, x):
        gates, indices, logits = self.route(x)
        outputs = torch.stack([expert(x) for expert in self.experts], dim=-2)  # (..., n_experts, d)
        chosen = outputs.gather(-2, indices.unsqueeze(-1).expand(*indices.shape, outputs.shape[-1]))
        n_experts = len(self.experts)
        routed = F.one_hot(indices, n_experts).float().sum(-2).reshape(-1, n_experts).mean(0) / self.top_k
        probs = torch.softmax(logits, dim=-1).reshape(-1, n_experts).mean(0)
        self.balance_loss = n_experts * (routed * probs).sum()
        return (gates.unsqueeze(-1) * chosen).sum(-2)


class MoEClassifier(nn.Module):
    """``embed -> relu -> h + moe(h) -> head``: a classifier around one :class:`~lowrank.nn.zoo.MoEMLP` layer ``moe``.

    Parameters
    ----------
    in_features, n_classes : int
        Input width and width of ``head``.
    d_model : int, default=64
        Width of ``embed`` and of the MoE layer.
    d_hidden : int, default=128
        Hidden width of every expert.
    n_experts : int, default=8
        Number of experts (and router outputs).
    top_k : int, default=2
        Experts mixed per input.

    Examples
    --------
    >>> from lowrank.nn.zoo.models import MoEClassifier
    >>> MoEClassifier(64, 10)(torch.zeros(2, 64)).shape
    torch.Size([2, 10])
    """

    def __init__(self, in_features, n_classes, *, d_model=64, d_hidden=128, n_experts=8, top_k=2):
        super().__init__()
        self.embed = nn.Linear(in_features, d_model)
        self.act = nn.ReLU()
        self.moe = MoEMLP(d_model, d_hidden, n_experts=n_experts, top_k=top_k)
        self.head = nn.Linear(d_model, n_classes)

    def forward(self, x):
        h = self.act(self.embed(x))
        return self.head(h + self.moe(h))


class ResidualBlock(nn.Module):
    """``x + fc2(act(fc1(norm(x))))``: the unit of :class:`~lowrank.nn.zoo.ResidualMLP` (all blocks alike).

    Parameters
    ----------
    d_model : int
        Input and output width (``norm``, ``fc1`` input, ``fc2`` output).
    d_hidden : int
        Width of ``fc1``'s output.

    Examples
    --------
    >>> from lowrank.nn.zoo import ResidualBlock
    >>> block = ResidualBlock(8, 16)
    >>> with torch.no_grad():
    ...     _ = block.fc2.weight.zero_(), block.fc2.bias.zero_()
    >>> bool(torch.equal(block(torch.ones(2, 8)), torch.ones(2, 8)))
    True
    """

    def __init__(self, d_model, d_hidden):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.fc1 = nn.Linear(d_model, d_hidden)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(d_hidden, d_model)

    def forward(self, x):
        return x + self.fc2(self.act(self.fc1(self.norm(x))))


class ResidualMLP(nn.Module):
    """``embed -> blocks[0] -> ... -> blocks[n-1] -> norm -> head`` with identical residual blocks.

    Parameters
    ----------
    in_features, n_classes : int
        Input width and width of ``head``.
    d_model : int, default=64
        Width of the residual stream.
    d_hidden : int, default=128
        Hidden width of every block.
    n_blocks : int, default=6
        Number of blocks in ``blocks``.

    Examples
    --------
    >>> from lowrank.nn.zoo.models import ResidualMLP
    >>> model = ResidualMLP(64, 10)
    >>> model(torch.zeros(2, 64)).shape, len(model.blocks)
    (torch.Size([2, 10]), 6)
    """

    def __init__(self, in_features, n_classes, *, d_model=64, d_hidden=128, n_blocks=6):
        super().__init__()
        self.embed = nn.Linear(in_features, d_model)
        self.blocks = nn.ModuleList(ResidualBlock(d_model, d_hidden) for _ in range(n_blocks))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, n_classes)

    def forward(self, x):
        x = self.embed(x)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))
