"""Streaming first and second moments of layer outputs, collected with forward hooks."""

from lowrank._utils.optional import import_optional

torch = import_optional("torch", purpose="lowrank.ctr")


class OutputStatistics:
    """Running mean and covariance of vectors fed in batches (never storing the vectors).

    Sums are kept in float64 on the vectors' device, so the result equals the dense
    ``torch.cov(Y.T, correction=0)`` of all rows up to float64 rounding.

    Parameters
    ----------
    dim : int
        Vector length.

    Examples
    --------
    >>> stats = OutputStatistics(3)
    >>> stats.update(torch.tensor([[1.0, 0, 0], [3.0, 0, 0]]))
    >>> stats.mean.tolist(), stats.covariance[0, 0].item()
    ([2.0, 0.0, 0.0], 1.0)
    """

    def __init__(self, dim):
        self.dim = int(dim)
        self.count = 0
        self.weight_total = 0.0  # total bag weight, for EmbeddingBag(mode="sum") outputs
        self._sum = None
        self._outer = None

    def update(self, Y, bag_weight=None):
        """Add the rows of ``Y`` (any leading shape, last dimension ``dim``)."""
        Y = Y.detach().reshape(-1, self.dim).to(torch.float64)
        if self._sum is None:
            self._sum = torch.zeros(self.dim, dtype=torch.float64, device=Y.device)
            self._outer = torch.zeros(self.dim, self.dim, dtype=torch.float64, device=Y.device)
        self._sum += Y.sum(dim=0)
        self._outer += Y.T @ Y
        self.count += Y.shape[0]
        self.weight_total += float(Y.shape[0] if bag_weight is None else bag_weight)

    @property
    def mean(self):
        self._check()
        return self._sum / self.count

    @property
    def covariance(self):
        """Population covariance (divides by the count)."""
        self._check()
        mu = self.mean
        cov = self._outer / self.count - torch.outer(mu, mu)
        return (cov + cov.T) / 2

    @property
    def second_moment(self):
        """``E[y y^T]``; its trace is the mean squared norm of the outputs."""
        self._check()
        return self._outer / self.count

    def principal_subspace(self):
        """Eigenvalues (descending, clipped at 0) and eigenvectors (columns) of the covariance."""
        w, V = torch.linalg.eigh(self.covariance)
        return torch.clamp(w.flip(0), min=0), V.flip(1)

    def _check(self):
        if self.count == 0:
            raise ValueError("no calibration outputs were collected (empty calibration data?)")
