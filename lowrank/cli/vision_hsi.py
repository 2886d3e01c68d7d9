"""``lowrank hsi-restore`` (HIR-Diff on a cube file) and ``lowrank train-prior`` (train its U-Net prior)."""

import sys
import time

from lowrank.cli import DemoRow, timed


def register(subparsers):
    p = subparsers.add_parser(
        "hsi-restore",
        help="restore a hyperspectral cube (.npy/.npz/.mat/ENVI .hdr) with HIR-Diff",
        description=(
            "Denoise, super-resolve or inpaint a hyperspectral cube with HIR-Diff (three RRQR-selected bands "
            "sampled by a guided diffusion prior, rebuilt through the cube's spectral subspace). Writes the "
            "restored (height, width, bands) cube as .npy; with --reference, prints PSNR/SSIM/SAM."
        ),
    )
    p.add_argument("path", help="the degraded cube: .npy, .npz, .mat or an ENVI .hdr (bands last or first)")
    p.add_argument("--task", choices=("denoise", "sr", "inpaint"), default="denoise", help="default: denoise")
    p.add_argument("--key", help="variable name inside a .npz/.mat file holding several cubes")
    p.add_argument("--mask", help="inpainting mask .npy (True/1 where observed; (H, W) or (H, W, B))")
    p.add_argument("--scale", type=int, default=4, help="super-resolution factor (default 4)")
    p.add_argument("--blur", type=float, help="super-resolution blur std in high-res pixels (default scale/2)")
    p.add_argument("--prior", default="auto",
                   help="'auto' (shipped U-Net if installed, else TV), 'unet', 'tv', or a weights .npz path")
    p.add_argument("--steps", type=int, default=20, help="DDIM steps (default 20)")
    p.add_argument("--eta-fidelity", type=float, help="data-term weight, a step relative to 1/L of the data term (default: per task)")
    p.add_argument("--eta-tv", type=float, help="TV weight (default: per task)")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--reference", help="clean cube file to score against (PSNR, SSIM, SAM)")
    p.add_argument("--output", "-o", help="output .npy (default: <input stem>_restored.npy)")
    p.set_defaults(func=_run_restore)

    t = subparsers.add_parser(
        "train-prior",
        help="train HIR-Diff's small diffusion U-Net on photographs bundled with scikit-image/scikit-learn",
        description=(
            "Train the SmallUNet denoiser (EDM loss) on random crops of the photographs that ship inside "
            "scikit-image and scikit-learn (the astronaut, used by the synthetic test cube, is left out) or of "
            "the images in --images (.npz of uint8 (H, W, 3) arrays). Saves the EMA weights as .npz."
        ),
    )
    t.add_argument("--out", required=True, help="where to write the weights (.npz)")
    t.add_argument("--images", help=".npz of uint8 (H, W, 3) training images (default: bundled photographs)")
    t.add_argument("--steps", type=int, default=20000, help="optimizer steps (default 20000)")
    t.add_argument("--time-limit", type=float, help="stop after this many seconds")
    t.add_argument("--batch-size", type=int, default=128, help="default 128")
    t.add_argument("--crop", type=int, default=64, help="crop size (default 64)")
    t.add_argument("--lr", type=float, default=4e-4, help="Adam learning rate (default 4e-4)")
    t.add_argument("--channels", type=int, default=32, help="U-Net width (default 32)")
    t.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(func=_run_train)


def _run_restore(args):
    from pathlib import Path

    import numpy as np

    from lowrank.datasets import load_hyperspectral
    from lowrank.vision import HIRDiff
    from lowrank.vision.metrics_hsi import quality_report

    try:
        cube, _ = load_hyperspectral(args.path, key=args.key)
        mask = np.load(args.mask) if args.mask else None
        model = HIRDiff(prior=args.prior, n_steps=args.steps, eta_fidelity=args.eta_fidelity,
                        eta_tv=args.eta_tv, device=args.device, random_state=args.seed)
        start = time.perf_counter()
        restored = model.restore(cube, args.task, mask=mask, scale=args.scale, blur=args.blur)
        seconds = time.perf_counter() - start
    except (OSError, ValueError, TypeError, KeyError) as exc:
        print(f"lowrank hsi-restore: error: {exc}", file=sys.stderr)
        return 2
    output = args.output or str(Path(args.path).with_suffix("")) + "_restored.npy"
    np.save(output, restored)
    print(f"input {cube.shape} -> restored {restored.shape}  task: {args.task}  bands: {model.bands_.tolist()}  "
          f"time: {seconds:.2f} s")
    if args.reference:
        reference, _ = load_hyperspectral(args.reference)
        q = quality_report(restored, reference)
        print(f"PSNR {q['psnr']:.2f} dB  SSIM {q['ssim']:.4f}  SAM {q['sam']:.2f} deg")
    print(f"written to {output}")
    return 0


def _run_train(args):
    import numpy as np

    from lowrank.vision.prior import train_prior

    images = None
    if args.images:
        with np.load(args.images) as f:
            images = [f[k] for k in f.files]
    try:
        net, seconds = timed(train_prior, images, crop=args.crop, batch_size=args.batch_size, n_iter=args.steps,
                             lr=args.lr, channels=args.channels, time_limit=args.time_limit, device=args.device,
                             out=args.out, rng=args.seed, verbose=False)
    except (OSError, ValueError, ImportError) as exc:
        print(f"lowrank train-prior: error: {exc}", file=sys.stderr)
        return 2
    print(f"trained {net.train_steps_} steps in {seconds:.0f} s, final loss {net.train_loss_:.4f}; "
          f"weights written to {args.out}")
    return 0


def demo():
    """HIR-Diff (shipped U-Net prior and TV fallback) on a 32x32x31 synthetic cube, 10 steps, vs baselines."""

    from lowrank.datasets import synthetic_hyperspectral
    from lowrank.vision import Denoise, HIRDiff, SuperResolve
    from lowrank.vision._hsi_baselines import interpolation_baseline, lowrank_tv_restore
    from lowrank.vision.metrics_hsi import psnr

    clean = synthetic_hyperspectral("astronaut", 32, n_segments=30, rng=0).cube
    data = "synthetic 32x32x31 (astronaut x colour-science spectra)"
    rows = []
    noisy = Denoise().degrade(clean, 50 / 255, rng=0)
    ref = f"noisy {psnr(noisy, clean):.2f} dB; lowrank+TV {psnr(lowrank_tv_restore(noisy, Denoise()), clean):.2f} dB"
    for prior in ("auto", "tv"):
        out, seconds = timed(HIRDiff(prior=prior, n_steps=10, random_state=0).restore, noisy, "denoise")
        name = "U-Net" if prior == "auto" else "TV fallback"
        rows.append(DemoRow(f"HIRDiff denoise ({name})", data + ", sigma=50/255", f"PSNR {psnr(out, clean):.2f} dB",
                            ref, seconds))
    op = SuperResolve(2)
    low = op.degrade(clean, 0.01, rng=0)
    out, seconds = timed(HIRDiff(prior="tv", n_steps=10, random_state=0).restore, low, "sr", scale=2)
    rows.append(DemoRow("HIRDiff SR x2 (TV fallback)", data, f"PSNR {psnr(out, clean):.2f} dB",
                        f"bicubic {psnr(interpolation_baseline(low, op), clean):.2f} dB", seconds))
    return rows
