"""Command-line face of :func:`lowrank.nn.compress`: ``lowrank compress MODEL.pt [CALIB] --method ...``.

The general form of ``ctr-compress`` (which stays as it is): any registered compressor
(:func:`lowrank.nn.list_compressors`) on any model saved whole with ``torch.save(model)``.
"""

import ast
import os
import pickle

from lowrank.cli import UserError

# keyword arguments of compress() itself: an --option may not shadow them
_RESERVED = {"model", "method", "calibration", "rank", "energy", "budget", "budget_metric", "targets", "batch_size",
             "max_batches", "inplace", "verbose"}


def register(subparsers):
    p = subparsers.add_parser(
        "compress",
        help="compress a saved torch model with a registered low-rank compressor (svd, afm, fwsvd, ...)",
        description="Compress the layers of a model saved whole with torch.save(model) by lowrank.nn.compress, "
        "save the compressed model and print the per-layer report. Loading a pickled model runs its code: only "
        "load model files you trust (calibration .pt files are read with weights_only=True). CALIB is a .pt "
        "file holding a tensor or a tuple of tensors (for fwsvd: (inputs, targets)), or a .npy array, or an "
        ".npz whose arrays are passed to the model positionally in the order they were saved (for fwsvd the "
        "last array holds the targets). Floating calibration data is cast to the model's dtype. Methods that "
        "compress the weights alone (svd) take no CALIB.",
    )
    p.add_argument("model", metavar="MODEL", help="model file written by torch.save(model) (trusted files only)")
    p.add_argument("calibration", metavar="CALIB", nargs="?", default=None,
                   help="calibration inputs: .pt (tensor or tuple of tensors), .npy or .npz")
    p.add_argument("--method", required=True,
                   help="a registered compressor: svd, afm, fwsvd, welore, cospadi, ... (lowrank.nn.list_compressors)")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--rank", type=int, help="the same rank for every target layer")
    group.add_argument("--energy", type=float, help="per layer, the fraction of the spectrum's energy to keep")
    group.add_argument("--budget", type=float, help="fraction of the target layers' parameters (or flops) to keep")
    p.add_argument("--budget-metric", choices=["params", "flops"], default="params",
                   help="what --budget counts (default: params)")
    p.add_argument("--targets", nargs="+", metavar="PATTERN",
                   help="fnmatch patterns of layer names (default: every supported layer)")
    p.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                   help="a compressor option (a Python literal, else a string), e.g. --option floor=1e-2; repeatable")
    p.add_argument("--batch-size", type=int, default=4096, help="calibration rows per batch (default: 4096)")
    p.add_argument("-o", "--out", default=None, help="where to save the compressed model (default: MODEL.METHOD.pt)")
    p.add_argument("--report", default=None, metavar="REPORT.json", help="also write the report as JSON")
    p.set_defaults(func=_compress)


def _compress(args):
    import torch

    from lowrank._utils.io import atomic_write_bytes
    from lowrank.nn import compress, list_compressors
    from lowrank.nn.compression import get_compressor

    methods = list_compressors()
    if args.method not in methods:
        raise UserError(f"argument --method: unknown method {args.method!r} (choose from {', '.join(methods)})")
    options = _parse_options(args.option)
    out = args.out or _default_out(args.model, args.method)
    if os.path.exists(args.model) and os.path.abspath(out) == os.path.abspath(args.model):
        raise UserError(f"argument -o/--out: {out!r} is the input model; choose another file")
    model = _load_model(args.model)
    uses_data = get_compressor(args.method).statistics is not None
    if uses_data and args.calibration is None:
        raise UserError(f"argument CALIB: method {args.method!r} needs calibration data (a .pt, .npy or .npz file)")
    if not uses_data and args.calibration is not None:
        raise UserError(f"argument CALIB: method {args.method!r} compresses the weights alone and uses no "
                        "calibration data; leave CALIB out")
    calibration = _load_calibration(args.calibration, _dtype_of(model)) if uses_data else None
    try:
        small, report = compress(model, args.method, calibration, rank=args.rank, energy=args.energy,
                                 budget=args.budget, budget_metric=args.budget_metric, targets=args.targets,
                                 batch_size=args.batch_size, verbose=not args.quiet, **options)
    except ValueError as err:
        text = " ".join(str(err).split())
        if text.startswith("`calibration`") and args.calibration is not None:  # name the file that did not fit
            raise UserError(f"argument CALIB: {args.calibration!r}: {text}") from err
        raise
    atomic_write_bytes(out, lambda f: torch.save(small, f))
    print(report)
    print(f"saved {out}")
    if args.report is not None:
        import json

        text = json.dumps(_report_to_dict(report), indent=2, default=_plain)
        atomic_write_bytes(args.report, lambda f: f.write(text.encode() + b"\n"))
        print(f"report written to {args.report}")
    return 0


def _report_to_dict(report):
    """A :class:`~lowrank.nn.CompressionReport` as plain JSON-ready data (its fields plus the ratio)."""
    from dataclasses import asdict

    data = asdict(report)
    data["compression_ratio"] = report.compression_ratio
    return data


def _plain(value):
    # numpy scalars (ranks and energies may come from numpy): their Python value
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _default_out(model_path, method):
    root, ext = os.path.splitext(model_path)
    return f"{root}.{method}{ext or '.pt'}"


def _parse_options(items):
    options = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name.isidentifier():
            raise UserError(f"argument --option: expected NAME=VALUE, got {item!r}")
        if name in _RESERVED:
            raise UserError(f"argument --option: {name!r} is a command-line argument of its own, not an option")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text  # a bare word such as sides=both
        options[name] = value
    return options


def _load_model(path):
    import torch

    if not os.path.isfile(path):
        raise UserError(f"argument MODEL: no such file: {path!r}")
    try:
        # a whole pickled model can only be loaded with weights_only=False, which runs the file's code
        model = torch.load(path, weights_only=False, map_location="cpu")
    except OSError:
        raise
    except (RuntimeError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError,
            TypeError, KeyError) as err:
        reason = " ".join(str(err).split())[:300] or type(err).__name__
        hint = "; the model's classes must be importable here" if isinstance(err, (AttributeError, ImportError)) else ""
        raise UserError(f"argument MODEL: cannot load {path!r} as a torch model ({type(err).__name__}: {reason})"
                        f"{hint}") from err
    if not isinstance(model, torch.nn.Module):
        raise UserError(f"argument MODEL: {path!r} holds a {type(model).__name__}, not a torch.nn.Module "
                        "(save the whole model with torch.save(model), not its state_dict)")
    return model


def _dtype_of(model):
    import torch

    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.get_default_dtype()


def _load_calibration(path, dtype):
    import numpy as np
    import torch

    if not os.path.isfile(path):
        raise UserError(f"argument CALIB: no such file: {path!r}")
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".pt":
            data = torch.load(path, weights_only=True, map_location="cpu")  # tensors only: no code runs
        elif ext == ".npz":
            with np.load(path, allow_pickle=False) as npz:
                if not npz.files:
                    raise UserError(f"argument CALIB: {path!r} holds no arrays")
                data = tuple(torch.as_tensor(npz[k]) for k in npz.files)
        elif ext == ".npy":
            data = torch.as_tensor(np.load(path, allow_pickle=False))
        else:
            raise UserError(f"argument CALIB: {path!r} is not a .pt, .npy or .npz file")
    except (UserError, OSError):
        raise
    except Exception as err:  # a truncated or foreign file: any reader error is the file's fault
        reason = " ".join(str(err).split())[:300] or type(err).__name__
        raise UserError(f"argument CALIB: cannot read {path!r} ({type(err).__name__}: {reason})") from err
    if isinstance(data, list):
        data = tuple(data)
    tensors = (data,) if torch.is_tensor(data) else data
    if not (isinstance(tensors, tuple) and tensors and all(torch.is_tensor(t) for t in tensors)):
        raise UserError(f"argument CALIB: {path!r} holds a {type(data).__name__}; expected a tensor or a tuple of "
                        "tensors")
    tensors = tuple(t.to(dtype) if t.is_floating_point() else t for t in tensors)
    return tensors[0] if torch.is_tensor(data) else tensors
