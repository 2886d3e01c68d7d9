"""Data with a known ground truth (seeded generators) and loaders for local files.

Nothing here downloads: loaders read a path the user gives or data that ships
inside an installed package.
"""

from lowrank._utils.lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "planted_low_rank": "matrices",
        "load_ratings": "matrices",
        "split_ratings": "matrices",
        "planted_partition": "graphs",
        "load_blogcatalog": "graphs",
        "synthetic_hyperspectral": "hyperspectral",
        "load_hyperspectral": "hyperspectral",
        "continuous_tensor": "tensors",
        "load_temperatures": "tensors",
        "load_continuous_tensor": "tensors",
        "planted_gap_stream": "streams",
        "docstring_corpus": "text",
        "synthetic_ctr": "ctr",
        "load_criteo": "ctr",
        "load_avazu": "ctr",
        "procedural_shapes": "shapes",
    },
)
