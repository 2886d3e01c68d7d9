"""A small trainer for the reference CTR models: Adam, early stopping on validation AUC."""

import copy
import logging

import numpy as np

from lowrank._utils.optional import import_optional
from lowrank._utils.progress import progress
from lowrank._utils.validation import check_float, check_int

torch = import_optional("torch", purpose="lowrank.ctr")

logger = logging.getLogger("lowrank.ctr")


def _as_tensors(data, device, name="data"):
    """(dense, categorical, labels-or-None) tensors from a CTRData or a tuple, checked once per call.

    NaN/inf features and labels outside {0, 1} would train or score silently wrong, so they are
    errors here; an out-of-range category id is left to ``nn.Embedding``'s own error.
    """
    if hasattr(data, "dense"):
        dense, cat, y = data.dense, data.categorical, getattr(data, "labels", None)
    elif isinstance(data, (tuple, list)) and len(data) in (2, 3):
        dense, cat, *rest = data
        y = rest[0] if rest else None
    else:
        raise TypeError(f"`{name}` must be a CTRData or a (dense, categorical[, labels]) tuple, "
                        f"got {type(data).__name__}")
    dense = torch.as_tensor(np.asarray(dense, dtype=np.float32) if not torch.is_tensor(dense) else dense,
                            device=device, dtype=torch.float32)
    if torch.is_tensor(cat) and (cat.is_floating_point() or cat.is_complex()):
        raise TypeError(f"`{name}`: categorical ids must be integers, got {cat.dtype}")
    cat = np.asarray(cat) if not torch.is_tensor(cat) else cat
    if isinstance(cat, np.ndarray) and cat.dtype.kind not in "iu":
        raise TypeError(f"`{name}`: categorical ids must be integers, got {cat.dtype}")
    cat = torch.as_tensor(cat, device=device, dtype=torch.long)
    if dense.ndim != 2 or cat.ndim != 2:
        raise ValueError(f"`{name}`: dense and categorical must be 2-D (rows, columns), got shapes "
                         f"{tuple(dense.shape)} and {tuple(cat.shape)}")
    if dense.shape[0] != cat.shape[0]:
        raise ValueError(f"`{name}`: dense ({dense.shape[0]} rows) and categorical ({cat.shape[0]} rows) differ "
                         "in length")
    if not torch.isfinite(dense).all():
        raise ValueError(f"`{name}`: dense features contain NaN or infinite values")
    if y is not None:
        y = torch.as_tensor(np.asarray(y, dtype=np.float32) if not torch.is_tensor(y) else y, device=device,
                            dtype=torch.float32)
        if y.shape != (dense.shape[0],):
            raise ValueError(f"`{name}`: labels must have shape ({dense.shape[0]},), got {tuple(y.shape)}")
        if not ((y == 0) | (y == 1)).all():
            raise ValueError(f"`{name}`: labels must be 0 or 1 (clicks), got values outside {{0, 1}} or NaN")
    return dense, cat, y


def predict_proba(model, data, *, batch_size=65536, device=None):
    """Click probabilities of ``model`` on ``data``, in eval mode (the training mode is restored).

    Parameters
    ----------
    model : torch.nn.Module
        Takes ``(dense, categorical)`` and returns one logit per row.
    data : CTRData or tuple
        ``(dense, categorical[, labels])`` arrays or tensors; labels are ignored.
    batch_size : int, default=65536
    device : str or torch.device, optional
        Default: the model's device.

    Returns
    -------
    ndarray of shape (n,), float32

    Raises
    ------
    ValueError
        ``dense`` and ``categorical`` of different lengths.
    """
    device = device or next(model.parameters()).device
    dense, cat, _ = _as_tensors(data, device)
    was_training = model.training
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, dense.shape[0], batch_size):
            out.append(torch.sigmoid(model(dense[start:start + batch_size], cat[start:start + batch_size])))
    model.train(was_training)
    return torch.cat(out).float().cpu().numpy()


def evaluate_ctr(model, data, *, batch_size=65536):
    """``{"auc": ..., "logloss": ...}`` of ``model`` on labelled ``data``.

    Parameters
    ----------
    model : torch.nn.Module
        Takes ``(dense, categorical)`` and returns one logit per row.
    data : CTRData or tuple
        ``(dense, categorical, labels)``.
    batch_size : int, default=65536

    Returns
    -------
    dict
        ROC AUC and log-loss (probabilities clipped to ``[1e-7, 1 - 1e-7]``).

    Raises
    ------
    ValueError
        ``data`` without labels.

    Examples
    --------
    >>> from lowrank.datasets import synthetic_ctr
    >>> from lowrank.ctr import MLPCTR
    >>> data = synthetic_ctr(2000, n_categorical=4, rng=0)
    >>> model = MLPCTR(data.cardinalities, embedding_dim=4, hidden=(16,))
    >>> sorted(evaluate_ctr(model, data))
    ['auc', 'logloss']
    """
    from sklearn.metrics import log_loss, roc_auc_score

    _, _, y = _as_tensors(data, "cpu", "data")
    if y is None:
        raise ValueError("`data` has no labels to evaluate against")
    p = predict_proba(model, data, batch_size=batch_size)
    y = y.numpy()
    return {"auc": float(roc_auc_score(y, p)), "logloss": float(log_loss(y, np.clip(p, 1e-7, 1 - 1e-7)))}


class CTRTrainer:
    """Mini-batch Adam with early stopping on validation AUC (best weights restored).

    Parameters
    ----------
    lr : float, default=1e-3
    weight_decay : float, default=0.0
    batch_size : int, default=4096
    max_epochs : int, default=10
    patience : int, default=2
        Epochs without validation-AUC improvement before stopping.
    device : str or torch.device, optional
        Default: the model's device.
    random_state : int, default=0
        Seeds the shuffling.
    verbose : bool, default=False
        Progress bar per epoch.

    Attributes
    ----------
    history_ : list of dict
        Per epoch: training loss and validation AUC/log-loss.
    best_epoch_ : int
    """

    def __init__(self, *, lr=1e-3, weight_decay=0.0, batch_size=4096, max_epochs=10, patience=2, device=None,
                 random_state=0, verbose=False):
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, model, train, valid=None):
        """Train ``model`` in place on ``train``; early-stop on ``valid`` when given.

        Parameters
        ----------
        model : torch.nn.Module
            Takes ``(dense, categorical)`` and returns one logit per row; moved to ``device``.
        train : CTRData or tuple
            ``(dense, categorical, labels)``.
        valid : CTRData or tuple, optional
            Labelled data for early stopping on AUC; the best epoch's weights are restored.

        Returns
        -------
        model : torch.nn.Module

        Raises
        ------
        ValueError
            ``train`` without labels, out-of-range ``lr``, ``batch_size``, ``max_epochs`` or ``patience``.
        """
        lr = check_float(self.lr, "lr", low=0.0, low_inclusive=False)
        batch_size = check_int(self.batch_size, "batch_size", low=1)
        max_epochs = check_int(self.max_epochs, "max_epochs", low=1)
        patience = check_int(self.patience, "patience", low=0)
        device = self.device or next(model.parameters()).device
        model.to(device)
        dense, cat, y = _as_tensors(train, device, "train")
        if valid is not None:
            _as_tensors(valid, "cpu", "valid")  # a bad validation set fails before the first epoch, not after it
        if y is None:
            raise ValueError("`train` must hold labels")
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=self.weight_decay)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        gen = torch.Generator().manual_seed(int(self.random_state))
        self.history_, best_auc, best_state, self.best_epoch_, bad = [], -np.inf, None, 0, 0
        n = dense.shape[0]
        for epoch in range(max_epochs):
            model.train()
            order = torch.randperm(n, generator=gen).to(device)
            total = 0.0
            for start in progress(range(0, n, batch_size), desc=f"epoch {epoch + 1}", verbose=self.verbose,
                                  unit="batch"):
                idx = order[start:start + batch_size]
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(dense[idx], cat[idx]), y[idx])
                loss.backward()
                opt.step()
                total += float(loss.detach()) * idx.numel()
            record = {"epoch": epoch + 1, "train_logloss": total / n}
            if valid is not None:
                record.update({f"valid_{k}": v for k, v in evaluate_ctr(model, valid).items()})
            self.history_.append(record)
            logger.info("epoch %d: %s", epoch + 1, record)
            if valid is None:
                continue
            if record["valid_auc"] > best_auc:
                best_auc, best_state, self.best_epoch_, bad = record["valid_auc"], copy.deepcopy(model.state_dict()), epoch + 1, 0
            else:
                bad += 1
                if bad > patience:
                    break
        if best_state is not None:
            model.load_state_dict(best_state)
        return model
