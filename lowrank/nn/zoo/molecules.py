"""Energies and forces of perturbed copper clusters from ASE's EMT calculator (the ``mlip`` extra)."""

import dataclasses

import numpy as np

from lowrank._utils.optional import import_optional
from lowrank._utils.validation import check_float, check_int
from lowrank.nn.zoo._task import ZooTask, cached_task

torch = import_optional("torch", purpose="lowrank.nn.zoo")

__all__ = ["MoleculeData", "emt_molecules", "force_mae", "energy_force_errors"]


@dataclasses.dataclass(frozen=True, eq=False)
class MoleculeData:
    """Atomic configurations with their energies and forces; unpacks like ``(positions, numbers, energy, forces)``.

    Parameters
    ----------
    positions : torch.Tensor, shape (n_configs, n_atoms, 3), float32
        Cartesian coordinates in Angstrom (no periodic cell).
    numbers : torch.Tensor, shape (n_configs, n_atoms), int64
        Atomic numbers (29 for copper).
    energy : torch.Tensor, shape (n_configs,), float32
        Potential energy in eV.
    forces : torch.Tensor, shape (n_configs, n_atoms, 3), float32
        Forces ``-dE/dpositions`` in eV/Angstrom.
    """

    positions: object
    numbers: object
    energy: object
    forces: object

    def __iter__(self):
        return iter((self.positions, self.numbers, self.energy, self.forces))

    def __len__(self):
        return 4

    def __getitem__(self, index):
        return (self.positions, self.numbers, self.energy, self.forces)[index]


def energy_force_errors(model, data):
    """Mean absolute energy and force errors of an interatomic potential on ``data``.

    Parameters
    ----------
    model : callable
        ``model(positions, numbers) -> energy`` of shape ``(n_configs,)``, differentiable in
        ``positions``; forces are ``-grad`` of the summed energy.
    data : MoleculeData
        Configurations with reference energies and forces.

    Returns
    -------
    dict
        ``{"energy_mae": eV, "force_mae": eV/Angstrom}``.

    Examples
    --------
    >>> from lowrank.nn.zoo.molecules import MoleculeData, energy_force_errors
    >>> pos = torch.zeros(2, 3, 3); z = torch.full((2, 3), 29)
    >>> data = MoleculeData(pos, z, torch.ones(2), torch.ones(2, 3, 3))
    >>> energy_force_errors(lambda p, n: (p ** 2).sum((1, 2)), data)
    {'energy_mae': 1.0, 'force_mae': 1.0}
    """
    positions = data.positions.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        energy = model(positions, data.numbers)
        (grad,) = torch.autograd.grad(energy.sum(), positions)
    return {"energy_mae": float((energy.detach() - data.energy).abs().mean()),
            "force_mae": float((-grad - data.forces).abs().mean())}


def force_mae(model, data):
    """Mean absolute force error (eV/Angstrom): ``energy_force_errors(model, data)["force_mae"]``.

    Parameters
    ----------
    model : callable
        ``model(positions, numbers) -> energy``, differentiable in ``positions``.
    data : MoleculeData
        Configurations with reference forces.

    Returns
    -------
    float

    Examples
    --------
    >>> from lowrank.nn.zoo.molecules import MoleculeData, force_mae
    >>> data = MoleculeData(torch.zeros(1, 2, 3), torch.full((1, 2), 29), torch.zeros(1), torch.zeros(1, 2, 3))
    >>> force_mae(lambda p, n: (p ** 2).sum((1, 2)), data)
    0.0
    """
    return energy_force_errors(model, data)["force_mae"]


@dataclasses.dataclass(frozen=True)
class _EMTOptions:
    seed: int
    n_shells: int
    rattle: float
    n_train: int
    n_test: int


def _rotation(gen):
    q, r = np.linalg.qr(gen.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def emt_configurations(atoms, n, rattle, gen):
    """``n`` copies of ``atoms`` (centred), each randomly rotated and rattled by ``N(0, rattle^2)`` per coordinate.

    Returned positions are float32 values (stored as float64) so that EMT sees exactly what the
    dataset holds.
    """
    base = atoms.get_positions() - atoms.get_center_of_mass()
    out = np.empty((n, len(atoms), 3))
    for i in range(n):
        out[i] = base @ _rotation(gen).T + rattle * gen.standard_normal(base.shape)
    return out.astype(np.float32).astype(np.float64)


def emt_molecules(seed=0, *, n_shells=2, rattle=0.1, n_train=800, n_test=200):
    """Copper-cluster configurations labelled with ASE's EMT energies and forces (a dataset, no model).

    Each configuration is ASE's icosahedral Cu cluster (``ase.cluster.Icosahedron("Cu", n_shells)``:
    13 atoms at 2 shells, 55 at 3), centred, rotated by a random rotation and rattled by Gaussian
    noise of standard deviation ``rattle`` Angstrom; its energy and forces come from
    ``ase.calculators.emt.EMT`` (effective-medium theory). Everything is drawn by
    ``numpy.random.default_rng(seed)``. Needs ASE: ``pip install "lowrank[mlip]"``.

    Parameters
    ----------
    seed : int, default=0
        Seeds the rotations and displacements.
    n_shells : int, default=2
        Icosahedron shells (1 to 4).
    rattle : float, default=0.1
        Displacement noise in Angstrom.
    n_train, n_test : int, default=800, 200
        Configurations in each split.

    Returns
    -------
    ZooTask
        ``model = None``; ``train`` and ``test`` are :class:`~lowrank.nn.zoo.MoleculeData`; ``metric =``
        :func:`~lowrank.nn.zoo.force_mae` (eV/Angstrom, lower is better) for a potential
        ``model(positions, numbers) -> energy``. ``info``: ``n_atoms``, ``species`` (``[29]``),
        ``energy_mean``/``energy_std`` and ``force_std`` of ``train``, ``base_metric`` (the force
        MAE of predicting zero force), ``calculator`` (``"EMT"``).

    Raises
    ------
    ImportError
        If ASE is not installed.
    TypeError, ValueError
        If an option is of the wrong type or out of range.

    References
    ----------
    .. [1] K. W. Jacobsen, P. Stoltze and J. K. Norskov, "A semi-empirical effective medium theory
       for metals and alloys", Surface Science 366 (1996) 394-402.

    Examples
    --------
    >>> from lowrank.nn.zoo import emt_molecules
    >>> task = emt_molecules(seed=0, n_train=4, n_test=2)
    >>> tuple(task.train.forces.shape), task.metric_name
    ((4, 13, 3), 'force_mae')
    """
    options = _EMTOptions(check_int(seed, "seed", low=0), check_int(n_shells, "n_shells", low=1, high=4),
                          check_float(rattle, "rattle", low=0), check_int(n_train, "n_train", low=1),
                          check_int(n_test, "n_test", low=1))
    import_optional("ase", extra="mlip", purpose="emt_molecules")
    return cached_task(("emt_molecules", options), lambda: _emt_molecules(options))


def _label(atoms, positions):
    from ase.calculators.emt import EMT

    atoms = atoms.copy()
    atoms.calc = EMT()
    energy = np.empty(len(positions))
    forces = np.empty_like(positions)
    for i, pos in enumerate(positions):
        atoms.set_positions(pos)
        energy[i] = atoms.get_potential_energy()
        forces[i] = atoms.get_forces()
    return energy, forces


def _data(atoms, positions, energy, forces):
    n = len(positions)
    numbers = np.broadcast_to(atoms.get_atomic_numbers(), (n, len(atoms)))
    return MoleculeData(torch.from_numpy(positions.astype(np.float32)), torch.from_numpy(numbers.astype(np.int64)),
                        torch.from_numpy(energy.astype(np.float32)), torch.from_numpy(forces.astype(np.float32)))


def _emt_molecules(o):
    from ase.cluster import Icosahedron

    atoms = Icosahedron("Cu", o.n_shells)
    gen = np.random.default_rng(o.seed)
    positions = emt_configurations(atoms, o.n_train + o.n_test, o.rattle, gen)
    energy, forces = _label(atoms, positions)
    split = o.n_train
    train = _data(atoms, positions[:split], energy[:split], forces[:split])
    test = _data(atoms, positions[split:], energy[split:], forces[split:])
    info = {
        "n_atoms": len(atoms),
        "species": [29],
        "energy_mean": float(train.energy.double().mean()),
        "energy_std": float(train.energy.double().std()),
        "force_std": float(train.forces.double().std()),
        "base_metric": float(test.forces.abs().mean()),
        "calculator": "EMT",
        "rattle": o.rattle,
    }
    return ZooTask(None, train, test, force_mae, "emt_molecules", "force_mae", False, info)
