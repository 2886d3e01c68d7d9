"""An offline model zoo: small tasks whose base models train in seconds on a CPU from a seed.

Each task builds its data from an installed package (scikit-learn's digits,
:func:`lowrank.datasets.procedural_shapes`, seeded generators, ASE's EMT calculator) and returns a
:class:`~lowrank.nn.zoo.ZooTask` that unpacks like ``(model, train, test, metric)``. Same seed, same options ->
bit-identical weights and data; the trained base is memoized in memory per (task, seed, options)
and every call returns a deep copy, so callers may modify what they get.
"""

from lowrank._utils.lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "ZooTask": "_task",
        "clear_cache": "_task",
        "fit": "_train",
        "fit_classifier": "_train",
        "fit_regressor": "_train",
        "evaluate": "_train",
        "accuracy": "_train",
        "mse": "_train",
        "torch_generator": "_train",
        "digits_transfer": "digits",
        "digits_classifier": "digits",
        "shapes_transfer": "shapes",
        "sequence_task": "sequence",
        "patch_vit_digits": "vit",
        "moe_mlp": "moe",
        "teacher_regression": "teacher",
        "residual_mlp_digits": "residual",
        "emt_molecules": "molecules",
        "MoleculeData": "molecules",
        "force_mae": "molecules",
        "list_tasks": "_task",
        "energy_force_errors": "molecules",
        "sequence_data": "sequence",
        "seeded": "models",
        "init_parameters": "models",
        "MLP": "models",
        "FeedForward": "models",
        "SelfAttention": "models",
        "TransformerBlock": "models",
        "TinyTransformer": "models",
        "PatchViT": "models",
        "ConvNet": "models",
        "MoEMLP": "models",
        "MoEClassifier": "models",
        "ResidualBlock": "models",
        "ResidualMLP": "models",
    },
)
