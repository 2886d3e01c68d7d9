"""The names of the zoo's tasks, in the order the docs list them."""

TASKS = (
    "digits_transfer",
    "digits_classifier",
    "shapes_transfer",
    "sequence_task",
    "patch_vit_digits",
    "moe_mlp",
    "teacher_regression",
    "residual_mlp_digits",
    "emt_molecules",
)
