"""Command-line face of the Householder projector: ``householder-demo --out DIR`` and ``lowrank demo`` rows."""

import json
import re
import struct
import zlib
from pathlib import Path

import numpy as np

from lowrank.cli import DemoRow, UserError, timed


def register(subparsers):
    p = subparsers.add_parser(
        "householder-demo",
        help="train a small style-based generator on procedural shapes, compare SeFa with the Householder projector (MIG, DCI), save traversal PNGs",
        description=(
            "Trains a small generator on procedurally generated dSprites-like shapes, reads latent directions "
            "off its style layer in closed form (SeFa), replaces the layer by a Householder projector and "
            "fine-tunes, then scores every set of directions with MIG and DCI against the known factors. "
            "--model style (default): mapping network z -> w, affine w -> styles (the projector's place, as in "
            "the paper), modulated convolutions; directions scored by traversal in w with a fixed factor "
            "classifier. --model vae: the earlier MLP VAE, codes D mu(x). Writes one traversal grid PNG per "
            "method (rows: directions, columns: steps) and metrics.md / metrics.json."
        ),
    )
    p.add_argument("--out", required=True, type=Path, help="output folder (created if missing)")
    p.add_argument("--model", choices=("style", "vae"), default="style",
                   help="style: style-based generator, projector in the affine w -> styles layer (default); vae: MLP VAE")
    p.add_argument("--size", choices=("tiny", "medium", "full"), default="tiny",
                   help="tiny: seconds to minutes on a CPU; medium (style model only): the reported figures; full: larger (use a GPU)")
    p.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    p.add_argument("--pretrain-steps", type=int, default=None, help="override the pre-training steps")
    p.add_argument("--finetune-steps", type=int, default=None, help="override the fine-tuning steps")
    p.add_argument("--feature-steps", type=int, default=None, help="override the feature extractor's training steps")
    p.add_argument("--n-train", type=int, default=None, help="override the number of training images")
    p.add_argument("--seed", type=int, default=0, help="seed of data, initialization and mini-batches")
    p.set_defaults(func=_run_householder_demo)


def _run_householder_demo(args):
    import torch

    if args.model == "vae" and args.size == "medium":
        raise UserError("argument --size: medium exists for --model style only (use tiny or full)")
    if args.model == "style":
        from lowrank.vision._shapes_style import config_dict, run_style_demo as run_demo, style_config_from as config_from
    else:
        from lowrank.vision._shapes_vae import config_dict, config_from, run_demo

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    overrides = {"device": device, "seed": args.seed}
    for name in ("pretrain_steps", "finetune_steps", "feature_steps", "n_train"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    rows, grids, config = run_demo(config_from(args.size, **overrides))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, grid in grids.items():
        write_png(out / f"traversal_{_slug(name)}.png", grid_image(grid))
    table = metrics_table(rows)
    (out / "metrics.md").write_text(table + "\n")
    (out / "metrics.json").write_text(json.dumps({"config": config_dict(config), "rows": rows}, indent=2) + "\n")
    print(table)
    print(f"\nwrote {len(grids)} traversal grids and metrics.md / metrics.json to {out}")
    return 0


def metrics_table(rows):
    """Markdown table of the demo's metric rows."""
    cols = [("method", "method", "{}"), ("MIG", "mig", "{:.3f}"), ("DCI-D", "dci_disentanglement", "{:.3f}"),
            ("DCI-C", "dci_completeness", "{:.3f}"), ("DCI-I", "dci_informativeness", "{:.3f}"),
            ("attr-D", "attr_disentanglement", "{:.3f}"), ("attr-C", "attr_completeness", "{:.3f}"),
            ("recon MSE", "recon_mse", "{:.4f}"), ("Frechet (features)", "frechet", "{:.2f}"),
            ("time (s)", "seconds", "{:.1f}")]
    cols = [c for c in cols if any(c[1] in r for r in rows)]
    lines = ["| " + " | ".join(c[0] for c in cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(fmt.format(r[key]) for _, key, fmt in cols) + " |")
    return "\n".join(lines)


def _slug(name):
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def grid_image(grid, *, pad=1, zoom=2):
    """Tile ``(rows, cols, 3, H, W)`` images in ``[0, 1]`` into one ``(H', W', 3)`` uint8 picture."""
    grid = np.clip(np.asarray(grid, dtype=np.float64), 0.0, 1.0)
    rows, cols, _, h, w = grid.shape
    canvas = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 0.5)
    for i in range(rows):
        for j in range(cols):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            canvas[y : y + h, x : x + w] = grid[i, j].transpose(1, 2, 0)
    canvas = canvas.repeat(zoom, axis=0).repeat(zoom, axis=1)
    return np.round(canvas * 255).astype(np.uint8)


def write_png(path, image):
    """Write an ``(H, W, 3)`` or ``(H, W)`` uint8 array as a PNG (zlib only; atomic replace)."""
    from lowrank._utils.io import atomic_write_bytes

    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"`image` must be uint8 of shape (H, W) or (H, W, 3), got {image.dtype} {image.shape}")
    colour_type = 2 if image.ndim == 3 else 0
    h, w = image.shape[:2]
    raw = b"".join(b"\x00" + image[i].tobytes() for i in range(h))  # filter type 0 per scanline

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    payload = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0))
               + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    atomic_write_bytes(path, lambda f: f.write(payload))


def demo():
    import torch

    from lowrank.linalg._householder import householder_product
    from lowrank.vision import HouseholderProjector

    gen = torch.Generator().manual_seed(0)
    A = torch.randn(256, 64, dtype=torch.float64, generator=gen)
    # tau_i = 2 / ||v_i||^2 (v_i with its implicit unit diagonal): every factor is a reflection.
    tau = 2.0 / (1.0 + torch.tril(A, -1).pow(2).sum(0))
    Q, t = timed(householder_product, A, tau)
    err = float((Q - torch.linalg.householder_product(A, tau)).abs().max())
    rows = [DemoRow("householder_product (compact WY)", "256x64 reflections, float64",
                    f"max |Q - Q_ref| = {err:.1e}", "torch.linalg.householder_product", t)]
    torch.manual_seed(0)
    lin = torch.nn.Linear(64, 48).double()
    proj, t = timed(HouseholderProjector.from_linear, lin, 8)
    U, _, Vh = torch.linalg.svd(lin.weight.detach())
    err = float((proj.weight.detach() - U[:, :8] @ Vh[:8]).abs().max())
    sv = torch.linalg.svdvals(proj.weight.detach())
    rows.append(DemoRow("HouseholderProjector.from_linear", "nn.Linear(64, 48), rank 8",
                        f"|W - U_k V_k^T| = {err:.1e}, sv[7], sv[8] = {sv[7]:.3f}, {sv[8]:.0e}",
                        "polar factor of the truncated SVD", t))
    return rows
