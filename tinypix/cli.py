"""The ``tinypix`` command: train, evaluate and run pixel-labeling models.

    tinypix train                          # U-Net, segmentation, built-in scenes, CPU
    tinypix train --task depth --epochs 8
    tinypix eval --checkpoint runs/segmentation-unet/checkpoint.npz
    tinypix predict photo.png --checkpoint runs/segmentation-unet/checkpoint.npz
"""
import argparse
import os
import sys
import time

import numpy as np

from . import optim
from .autograd import no_grad
from .creation import from_numpy, manual_seed
from .plots import save_curves, save_picture, save_predictions, to_picture
from .tuning import blas_coretype_advice, tune_process
from .training import (MAIN_METRIC, build_model, compute_loss, evaluate, load_checkpoint,
                       make_loaders, predictions_for_pictures, save_checkpoint, to_device,
                       write_metrics)

DEFAULTS = {"epochs": 9, "batch_size": 16, "lr": 2e-3, "weight_decay": 1e-4, "train_scenes": 800,
            "val_scenes": 160, "size": 64, "base_channels": 16, "depth": 3}


def parameter_groups(model, weight_decay):
    """Decay weights of convs and linears; leave biases and BatchNorm parameters undecayed."""
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim == 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def train(args):
    from tqdm import tqdm
    config = {"task": args.task, "model": args.model, "epochs": args.epochs, "batch_size": args.batch_size,
              "lr": args.lr, "weight_decay": args.weight_decay, "device": args.device, "data": args.data,
              "seed": args.seed, "train_scenes": args.train_scenes, "val_scenes": args.val_scenes,
              "size": args.size, "base_channels": args.base_channels, "depth": args.depth,
              "augment": not args.no_augment, "num_classes": 4}
    if args.data is not None and args.task == "segmentation":
        config["num_classes"] = args.num_classes
    out = args.out or os.path.join("runs", f"{args.task}-{args.model}")
    os.makedirs(out, exist_ok=True)
    ckpt = os.path.join(out, "checkpoint.npz")
    manual_seed(args.seed)
    model = build_model(config).to(args.device)
    optimizer = optim.AdamW(parameter_groups(model, args.weight_decay), lr=args.lr)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    history, start = [], 0
    if args.resume:
        if not os.path.exists(ckpt):
            sys.exit(f"tinypix train --resume: no checkpoint at {ckpt}; start without --resume")
        state = load_checkpoint(ckpt)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history, start = list(state["history"]), int(state["epoch"])
        print(f"resuming from {ckpt} after epoch {start}")
    train_loader, val_loader = make_loaders(config)
    metric = MAIN_METRIC[args.task]
    began = time.perf_counter()
    epoch = start
    try:
        for epoch in range(start, args.epochs):
            bar = tqdm(train_loader, desc=f"epoch {epoch + 1}/{args.epochs}", unit="batch",
                       disable=args.quiet, leave=False)
            losses, seen, t0 = [], 0, time.perf_counter()
            for batch in bar:
                batch = to_device(batch, args.device)
                loss = compute_loss(args.task, model(batch["image"]), batch)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
                seen += batch["image"].shape[0]
                bar.set_postfix(loss=f"{losses[-1]:.3f}", img_per_s=f"{seen / (time.perf_counter() - t0):.0f}")
            scheduler.step()
            val_loss, metrics = evaluate(model, val_loader, config)
            history.append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "val_loss": val_loss,
                            **metrics, "seconds": round(time.perf_counter() - began, 1)})
            save_checkpoint(ckpt, model, optimizer, scheduler, epoch + 1, history, config)
            write_metrics(out, history, config, time.perf_counter() - began)
            save_curves(os.path.join(out, "curves.png"), history, metric)
            print(f"epoch {epoch + 1:2d}/{args.epochs}  train loss {history[-1]['train_loss']:.4f}  "
                  f"held-out loss {val_loss:.4f}  " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()),
                  flush=True)
    except KeyboardInterrupt:
        save_checkpoint(ckpt, model, optimizer, scheduler, len(history), history, config)
        print(f"\ninterrupted during epoch {epoch + 1}: checkpoint of the last finished epoch saved to "
              f"{ckpt}; continue with --resume")
        return 130
    batch = next(iter(val_loader))
    with no_grad():
        model.eval()
        output = model(batch["image"].to(args.device)).cpu()
    key = {"segmentation": "mask", "depth": "depth", "normals": "normals"}[args.task]
    save_predictions(os.path.join(out, "predictions.png"), args.task, batch["image"].numpy(),
                     batch[key].numpy(), predictions_for_pictures(args.task, output))
    print(f"done in {time.perf_counter() - began:.0f} s; wrote {out}/metrics.json, curves.png, "
          f"predictions.png, checkpoint.npz")
    return 0


def evaluate_command(args):
    state = load_checkpoint(args.checkpoint)
    config = dict(state["config"], device=args.device)
    if args.data is not None:
        config["data"] = args.data
    model = build_model(config).to(args.device)
    model.load_state_dict(state["model"])
    _, val_loader = make_loaders(config)
    loss, metrics = evaluate(model, val_loader, config)
    print(f"held-out loss {loss:.4f}  " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    return 0


def predict_command(args):
    from PIL import Image
    state = load_checkpoint(args.checkpoint)
    config = dict(state["config"], device=args.device)
    model = build_model(config).to(args.device)
    model.load_state_dict(state["model"])
    model.eval()
    os.makedirs(args.out, exist_ok=True)
    for path in args.images:
        try:
            image = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255
        except (OSError, ValueError) as e:
            sys.exit(f"tinypix predict: cannot read {path} as an image ({e})")
        x = from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)[None]))
        with no_grad():
            out = model(x.to(args.device)).cpu()
        pred = predictions_for_pictures(config["task"], out)[0]
        picture = to_picture(config["task"], pred)
        name = os.path.splitext(os.path.basename(path))[0]
        target = os.path.join(args.out, f"{name}_{config['task']}.png")
        save_picture(target, picture)
        print(f"{path} -> {target}")
    return 0


def parser():
    p = argparse.ArgumentParser(prog="tinypix", description="Train and run pixel-labeling networks.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a model (default: U-Net segmentation on built-in scenes)")
    t.add_argument("--task", choices=["segmentation", "depth", "normals"], default="segmentation")
    t.add_argument("--model", choices=["unet", "fcn8s", "segnet"], default="unet")
    t.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    t.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    t.add_argument("--lr", type=float, default=DEFAULTS["lr"])
    t.add_argument("--weight-decay", type=float, default=DEFAULTS["weight_decay"])
    t.add_argument("--device", default="cpu", help="cpu or cuda")
    t.add_argument("--data", default=None, help="a dataset folder (VOC layout, or images/depth/normals)")
    t.add_argument("--num-classes", type=int, default=21, help="classes of a --data segmentation folder")
    t.add_argument("--out", default=None, help="run folder (default runs/TASK-MODEL)")
    t.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--train-scenes", type=int, default=DEFAULTS["train_scenes"])
    t.add_argument("--val-scenes", type=int, default=DEFAULTS["val_scenes"])
    t.add_argument("--size", type=int, default=DEFAULTS["size"], help="built-in scene size in pixels")
    t.add_argument("--base-channels", type=int, default=DEFAULTS["base_channels"])
    t.add_argument("--depth", type=int, default=DEFAULTS["depth"], help="U-Net/SegNet downsamplings")
    t.add_argument("--no-augment", action="store_true", help="no random horizontal flips")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(run=train)
    e = sub.add_parser("eval", help="evaluate a checkpoint on its held-out split")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--data", default=None)
    e.add_argument("--device", default="cpu")
    e.set_defaults(run=evaluate_command)
    q = sub.add_parser("predict", help="label image files with a checkpoint")
    q.add_argument("images", nargs="+")
    q.add_argument("--checkpoint", required=True)
    q.add_argument("--out", default="predictions")
    q.add_argument("--device", default="cpu")
    q.set_defaults(run=predict_command)
    return p


def main(argv=None):
    """The command. Run from the command line (``argv`` None), it first opts its own process in
    to the tunings a library never makes (tinypix/tuning.py): where NumPy's OpenBLAS should run
    other kernels, it starts itself again with that setting in its environment, which OpenBLAS
    reads only at start-up; then it keeps malloc's freed memory for reuse."""
    args = parser().parse_args(argv)
    if argv is None:
        _opt_in()
    return args.run(args)


def _opt_in():
    advice = blas_coretype_advice()
    if advice and sys.executable:  # the same command line, interpreter options included
        sys.stdout.flush()
        os.execve(sys.executable, sys.orig_argv, {**os.environ, **advice})
    tune_process()
