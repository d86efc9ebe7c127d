"""The ``tinypix`` command: train, evaluate and run pixel-labeling models.

    tinypix train                          # U-Net, segmentation, built-in scenes, CPU
    tinypix train --task depth --epochs 8
    tinypix eval --checkpoint runs/segmentation-unet/checkpoint.npz
    tinypix predict photo.png --checkpoint runs/segmentation-unet/checkpoint.npz

A mistake gets one line, ``tinypix CMD: what is wrong, and how to fix it``, and exit status 2 when
the command line asks for something impossible (a range, a choice, a path that is not there), 1
when what it names cannot be used (a file that is not a checkpoint, a device without its driver).
``--debug`` shows the traceback instead. Nothing is written before every argument has been checked.
"""
import argparse
import contextlib
import os
import signal
import sys
import threading
import time

from . import __version__

EXAMPLES = """examples:
  tinypix train                                  U-Net segmentation of the built-in scenes
  tinypix train -t depth -e 5 -o runs/depth      depth, 5 epochs, into runs/depth
  tinypix train -d cuda                          the same run on the GPU (needs CuPy)
  tinypix train --data VOC2012 --num-classes 21  a dataset folder in Pascal VOC's layout
  tinypix train -o runs/depth --resume           continue an interrupted run

Ctrl-C or SIGTERM stops after the current batch and saves a checkpoint; --resume continues it,
with the weights a run that never stopped would have."""

DEFAULTS = {"epochs": 9, "batch_size": 16, "lr": 2e-3, "weight_decay": 1e-4, "train_scenes": 800,
            "val_scenes": 160, "size": 64, "base_channels": 16, "depth": 3}


class CommandError(Exception):
    """A mistake to report in one line; ``status`` 2 for usage, 1 for a failure at run time."""

    def __init__(self, message, status=1):
        super().__init__(message)
        self.status = status


def usage(message):
    return CommandError(message, status=2)


# -- argument types: each checks its range and says what it wants -----------------------------
def at_least(minimum, kind=int):
    def check(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'a whole number' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if not value >= minimum:  # also refuses NaN
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {text}")
        return value
    return check


def positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number above 0, got {text}")
    return value


def device_name(text):
    if text in ("cpu", "cuda", "cuda:0"):
        return text
    hint = " (the GPU is called cuda)" if text.lower() in ("gpu", "nvidia", "cuda0") else ""
    raise argparse.ArgumentTypeError(f"unknown device {text!r}{hint}: use cpu or cuda")


class Parser(argparse.ArgumentParser):
    """argparse, with its errors in one line: ``tinypix train: argument --epochs/-e: ...``."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' layout and appends each option's default to its help."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        shown = not (default is None or default is False or default == argparse.SUPPRESS)
        if "%(default)" not in text and shown and action.option_strings:
            text += " (default: %(default)s)"
        return text


def parser():
    p = Parser(prog="tinypix", description="Train and run pixel-labeling networks.", formatter_class=Formatter,
               epilog="Each command has its own options: tinypix train --help. Exit status: 0 done, 1 failed, "
                      "2 a mistake in the command line, 128+N stopped by signal N (checkpoint saved).")
    p.add_argument("-V", "--version", action="version", version=f"tinypix {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="{train,eval,predict}")

    def add_common(command):
        command.add_argument("-d", "--device", type=device_name, default="cpu", help="cpu or cuda")
        command.add_argument("--debug", action="store_true", help="show the traceback of an error")

    t = sub.add_parser("train", formatter_class=Formatter, epilog=EXAMPLES,
                       help="train a model (default: U-Net segmentation of the built-in scenes)",
                       description="Train a model and write its run folder: metrics.json, curves.png, "
                                   "predictions.png and checkpoint.npz.")
    t.add_argument("-t", "--task", choices=["segmentation", "depth", "normals"], default="segmentation",
                   metavar="TASK", help="what to predict per pixel: segmentation, depth or normals")
    t.add_argument("-m", "--model", choices=["unet", "fcn8s", "segnet"], default="unet", metavar="MODEL",
                   help="the network: unet, fcn8s or segnet")
    t.add_argument("-e", "--epochs", type=at_least(1), default=DEFAULTS["epochs"], help="passes over the data")
    t.add_argument("-b", "--batch-size", type=at_least(1), default=DEFAULTS["batch_size"],
                   help="images per step")
    t.add_argument("--lr", type=positive_float, default=DEFAULTS["lr"], help="AdamW's learning rate")
    t.add_argument("--weight-decay", type=at_least(0.0, float), default=DEFAULTS["weight_decay"],
                   help="AdamW's decoupled weight decay, on conv weights only")
    t.add_argument("--data", metavar="FOLDER",
                   help="a dataset folder: Pascal VOC's layout for segmentation, or images/ with depth/ "
                        "and normals/ (default: the built-in scenes)")
    t.add_argument("--num-classes", type=at_least(2), default=21, help="classes of a --data segmentation folder")
    t.add_argument("-o", "--out", metavar="FOLDER", help="run folder (default: runs/TASK-MODEL)")
    t.add_argument("-r", "--resume", action="store_true",
                   help="continue the run in --out from its checkpoint, with its saved settings")
    t.add_argument("--seed", type=at_least(0), default=0, help="seeds the weights, the data and its order")
    t.add_argument("--train-scenes", type=at_least(1), default=DEFAULTS["train_scenes"],
                   help="built-in training scenes")
    t.add_argument("--val-scenes", type=at_least(1), default=DEFAULTS["val_scenes"], help="built-in held-out scenes")
    t.add_argument("--size", type=at_least(8), default=DEFAULTS["size"],
                   help="image side in pixels; folder images are resized to it")
    t.add_argument("--base-channels", type=at_least(1), default=DEFAULTS["base_channels"],
                   help="channels of the first stage (FCN: width)")
    t.add_argument("--depth", type=at_least(1), default=DEFAULTS["depth"], help="U-Net/SegNet downsamplings")
    t.add_argument("--no-augment", action="store_true", help="no random horizontal flips")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_common(t)
    t.set_defaults(run=train)

    e = sub.add_parser("eval", formatter_class=Formatter,
                       help="evaluate a checkpoint on its held-out split",
                       description="Print a checkpoint's held-out loss and metrics.")
    e.add_argument("-c", "--checkpoint", required=True, metavar="FILE", help="a run folder's checkpoint.npz")
    e.add_argument("--data", metavar="FOLDER", help="evaluate on this folder (default: the run's own data)")
    add_common(e)
    e.set_defaults(run=evaluate_command)

    q = sub.add_parser("predict", formatter_class=Formatter,
                       help="label image files with a checkpoint",
                       description="Write each image's prediction as a picture, NAME_TASK.png.")
    q.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    q.add_argument("-c", "--checkpoint", required=True, metavar="FILE", help="a run folder's checkpoint.npz")
    q.add_argument("-o", "--out", default="predictions", metavar="FOLDER", help="where the pictures go")
    add_common(q)
    q.set_defaults(run=predict_command)
    return p


# -- checks made before anything is written ----------------------------------------------------
def check_device(device):
    """The device works here: CuPy installed and a GPU present, for cuda."""
    from .creation import zeros
    try:
        zeros(1, device=device)
    except (RuntimeError, ImportError) as e:
        raise CommandError(f"--device {device}: {e}; or use --device cpu") from e


def check_folder_arg(flag, path):
    if path is not None and not os.path.isdir(path):
        what = "is a file" if os.path.exists(path) else "does not exist"
        raise usage(f"{flag} {path}: {what}; give a folder")


def check_out(path):
    if os.path.exists(path) and not os.path.isdir(path):
        raise usage(f"--out {path}: is a file; name a folder (new or existing)")


def read_checkpoint(path):
    from .training import load_checkpoint
    if not os.path.isfile(path):
        raise usage(f"--checkpoint {path}: no such file; give the checkpoint.npz of a run folder "
                    f"(tinypix train writes one)")
    try:
        return load_checkpoint(path)
    except (OSError, ValueError, KeyError) as e:
        raise CommandError(f"--checkpoint {path}: cannot be read ({first_line(e)}); give the "
                           f"checkpoint.npz of a run folder") from e


def first_line(error):
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def data_error(flag, path, error):
    return CommandError(f"{flag} {path}: {first_line(error)}")


# -- train ---------------------------------------------------------------------------------------
def parameter_groups(model, weight_decay):
    """Decay weights of convs and linears; leave biases and BatchNorm parameters undecayed."""
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim == 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class StopRequests:
    """Ctrl-C and SIGTERM (a scheduler's notice before preemption) ask the loop to stop after
    the current batch, so the checkpoint holds a step that finished. A second Ctrl-C stops at
    once. The handlers are the command's only while it trains; the previous ones come back."""

    def __init__(self):
        self.signal = None

    def _handle(self, signum, frame):
        if self.signal == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signum

    @contextlib.contextmanager
    def installed(self):
        if threading.current_thread() is not threading.main_thread():
            yield self  # signals reach only the main thread; nothing to catch here
            return
        previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


def join_job():
    """(rank, world size): under ``mpiexec -n N`` join the job of N processes (each keeping to its
    share of the cores), else (0, 1)."""
    from . import distributed as dist
    from .kernels import get_num_threads, set_num_threads
    if dist.launched_size() == 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("mpi")
    local = int(os.environ.get("MPI_LOCALNRANKS", dist.get_world_size()))
    share = max(1, get_num_threads() // local)
    set_num_threads(share)
    # NumPy's BLAS too: its idle threads spin, and would take the cores of the other ranks. (An
    # application's choice for its own process, as tune_process is.)
    from threadpoolctl import threadpool_limits
    threadpool_limits(limits=share, user_api="blas")
    return dist.get_rank(), dist.get_world_size()


def agreed_stop(stop, world):
    """The signal that stops the run, the same on every rank (the largest any rank received)."""
    if world == 1:
        return stop.signal
    from . import distributed as dist
    from .creation import tensor
    flag = tensor([stop.signal or 0])
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return int(flag.item()) or None


def train(args):
    import numpy as np
    from tqdm import tqdm
    from . import optim
    from .creation import generator, manual_seed
    from .nn import SyncBatchNorm
    from .nn.parallel import DistributedDataParallel
    from .training import (MAIN_METRIC, build_model, compute_loss, evaluate, make_loaders, save_checkpoint,
                           to_device, write_metrics)
    from .viz import plot_curves, save

    out = args.out or os.path.join("runs", f"{args.task}-{args.model}")
    check_out(out)
    ckpt = os.path.join(out, "checkpoint.npz")
    state = None
    if args.resume:
        if not os.path.isfile(ckpt):
            raise usage(f"--resume: no checkpoint at {ckpt}; start without --resume, or point --out at "
                        f"the run folder")
        state = read_checkpoint(ckpt)
        config = dict(state["config"], epochs=args.epochs, device=args.device)
    else:
        check_folder_arg("--data", args.data)
        config = {"task": args.task, "model": args.model, "epochs": args.epochs, "batch_size": args.batch_size,
                  "lr": args.lr, "weight_decay": args.weight_decay, "device": args.device, "data": args.data,
                  "seed": args.seed, "train_scenes": args.train_scenes, "val_scenes": args.val_scenes,
                  "size": args.size, "base_channels": args.base_channels, "depth": args.depth,
                  "augment": not args.no_augment,
                  "num_classes": args.num_classes if args.data is not None and args.task == "segmentation" else 4}
    check_device(args.device)
    rank, world = join_job()
    if config["batch_size"] % world:
        raise usage(f"--batch-size {config['batch_size']}: shared by {world} processes, it must be a multiple "
                    f"of {world}")
    try:
        train_loader, val_loader = make_loaders(config, rank, world)
    except (OSError, ValueError) as e:
        raise data_error("--data", config["data"], e) from e
    if len(train_loader) == 0:
        raise usage(f"--batch-size {config['batch_size']}: larger than the {len(train_loader.dataset)} "
                    f"training images, so an epoch has no full batch; use a smaller one")
    leader = rank == 0  # writes the run folder and prints; the other ranks only train

    manual_seed(config["seed"])
    model = build_model(config).to(args.device)
    net = model if world == 1 else DistributedDataParallel(SyncBatchNorm.convert_sync_batchnorm(model))
    optimizer = optim.AdamW(parameter_groups(model, config["weight_decay"]), lr=config["lr"])
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config["epochs"])
    history, epoch, done, losses = [], 0, 0, []
    if state is not None:
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
        except (KeyError, ValueError, RuntimeError) as e:
            raise CommandError(f"--resume: the checkpoint at {ckpt} does not fit its own settings "
                               f"({first_line(e)})") from e
        history, epoch = list(state["history"]), int(state["epoch"])
        done, losses = int(state.get("batches_done", 0)), list(state.get("epoch_losses", []))
        if "rng" in state:
            generator().bit_generator.state = state["rng"]
        if epoch >= config["epochs"]:
            raise usage(f"--resume: the run in {out} already has {epoch} epochs; ask for more with --epochs")
        if leader:
            print(f"resuming {out} at epoch {epoch + 1}, batch {done + 1}", flush=True)
    if leader:
        os.makedirs(out, exist_ok=True)

    def checkpoint(epoch, done, losses):
        if leader:
            save_checkpoint(ckpt, model, optimizer, scheduler, epoch, history, config, batches_done=done,
                            epoch_losses=losses, rng=generator().bit_generator.state, processes=world)

    metric = MAIN_METRIC[config["task"]]
    began = time.perf_counter() - (history[-1]["seconds"] if history else 0.0)
    with StopRequests().installed() as stop:
        for epoch in range(epoch, config["epochs"]):
            train_loader.set_epoch(epoch)
            bar = tqdm(total=len(train_loader), initial=done, desc=f"epoch {epoch + 1}/{config['epochs']}",
                       unit="batch", disable=args.quiet or not leader, leave=False)
            t0, seen = time.perf_counter(), 0
            for i, batch in enumerate(train_loader):
                if i < done:  # drawn as before, so the rest of the epoch is the same
                    continue
                signum = agreed_stop(stop, world)
                if signum is not None:
                    bar.close()
                    checkpoint(epoch, i, losses)
                    return interrupted(signum, epoch, i, len(train_loader), ckpt, leader)
                batch = to_device(batch, args.device)
                loss = compute_loss(config["task"], net(batch["image"]), batch)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
                seen += batch["image"].shape[0] * world
                bar.update()
                bar.set_postfix(loss=f"{losses[-1]:.3f}", img_per_s=f"{seen / (time.perf_counter() - t0):.0f}")
            bar.close()
            scheduler.step()
            val_loss, metrics = evaluate(model, val_loader, config)
            history.append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "val_loss": val_loss,
                            **metrics, "seconds": round(time.perf_counter() - began, 1)})
            done, losses = 0, []
            checkpoint(epoch + 1, 0, [])
            if leader:
                write_metrics(out, history, config, time.perf_counter() - began)
                save(plot_curves(history, metric), os.path.join(out, "curves.png"))
                print(f"epoch {epoch + 1:2d}/{config['epochs']}  train loss {history[-1]['train_loss']:.4f}  "
                      f"held-out loss {val_loss:.4f}  " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()),
                      flush=True)
            signum = agreed_stop(stop, world)
            if signum is not None and epoch + 1 < config["epochs"]:
                return interrupted(signum, epoch + 1, 0, len(train_loader), ckpt, leader)
    if leader:
        save_prediction_grid(model, val_loader, config, os.path.join(out, "predictions.png"))
        print(f"done in {time.perf_counter() - began:.0f} s" + (f" on {world} processes" if world > 1 else "")
              + f"; wrote {out}/metrics.json, curves.png, predictions.png, checkpoint.npz")
    return 0


def interrupted(signum, epoch, batch, batches, ckpt, leader=True):
    """Report a stop after ``epoch`` finished epochs and ``batch`` batches of the next one."""
    name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
    where = f"in epoch {epoch + 1} after batch {batch} of {batches}" if batch else f"after epoch {epoch}"
    if leader:
        print(f"\n{name}: stopped {where}; checkpoint saved to {ckpt}; continue with --resume", flush=True)
    return 128 + signum  # the shell's status for a process ended by that signal


def save_prediction_grid(model, loader, config, path):
    from .autograd import no_grad
    from .training import predictions_for_pictures
    from .viz import plot_predictions, save
    batch = next(iter(loader))
    with no_grad():
        model.eval()
        output = model(batch["image"].to(config["device"])).cpu()
    key = {"segmentation": "mask", "depth": "depth", "normals": "normals"}[config["task"]]
    save(plot_predictions(config["task"], batch["image"].numpy(), batch[key].numpy(),
                          predictions_for_pictures(config["task"], output),
                          class_names=getattr(loader.dataset, "classes", None)), path)


# -- eval and predict ------------------------------------------------------------------------------
def load_model(args):
    """(model in eval mode, config) from --checkpoint, on --device."""
    from .training import build_model
    state = read_checkpoint(args.checkpoint)
    check_device(args.device)
    config = dict(state["config"], device=args.device)
    model = build_model(config).to(args.device)
    try:
        model.load_state_dict(state["model"])
    except (KeyError, ValueError, RuntimeError) as e:
        raise CommandError(f"--checkpoint {args.checkpoint}: its weights do not fit its model "
                           f"({first_line(e)})") from e
    return model.eval(), config


def evaluate_command(args):
    from .training import evaluate, make_loaders
    check_folder_arg("--data", args.data)
    model, config = load_model(args)
    if args.data is not None:
        config["data"] = args.data
    try:
        _, val_loader = make_loaders(config)
    except (OSError, ValueError) as e:
        raise data_error("--data", config["data"], e) from e
    loss, metrics = evaluate(model, val_loader, config)
    print(f"held-out loss {loss:.4f}  " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    return 0


def output_names(paths, suffix):
    """One output file name per input, STEM_SUFFIX.png, with the parent folders' names put in front
    where two inputs share a stem (a/photo.png, b/photo.jpg -> a_photo_SUFFIX.png, b_photo_SUFFIX.png)."""
    keys = [os.path.normpath(os.path.abspath(os.path.splitext(p)[0])).split(os.sep) for p in paths]
    names = []
    for key in keys:
        k = 1
        while k < len(key) and sum(other[-k:] == key[-k:] for other in keys) > 1:
            k += 1
        names.append("_".join(part for part in key[-k:] if part) + f"_{suffix}.png")
    return names


def predict_command(args):
    import numpy as np
    from PIL import Image
    from .autograd import no_grad
    from .creation import from_numpy
    from .training import predictions_for_pictures
    from .viz import save, to_picture

    missing = [p for p in args.images if not os.path.isfile(p)]
    if missing:
        raise usage(f"{missing[0]}: no such file" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    check_out(args.out)
    model, config = load_model(args)
    images = []
    for path in args.images:
        try:
            with Image.open(path) as im:
                images.append(np.asarray(im.convert("RGB"), dtype=np.float32) / 255)
        except (OSError, ValueError) as e:
            raise CommandError(f"{path}: cannot be read as an image ({first_line(e)})") from e
    os.makedirs(args.out, exist_ok=True)
    for path, image, name in zip(args.images, images, output_names(args.images, config["task"])):
        x = from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)[None]))
        with no_grad():
            out = model(x.to(args.device)).cpu()
        target = os.path.join(args.out, name)
        save(to_picture(config["task"], predictions_for_pictures(config["task"], out)[0]), target)
        print(f"{path} -> {target}")
    return 0


# -- the entry point -------------------------------------------------------------------------------
def main(argv=None):
    """The command; returns its exit status. Run from the command line (``argv`` None), it first
    opts its own process in to the tunings a library never makes (tinypix/tuning.py): where
    NumPy's OpenBLAS should run other kernels, it starts itself again with that setting in its
    environment, which OpenBLAS reads only at start-up; then it keeps malloc's freed memory."""
    try:
        args = parser().parse_args(argv)
    except SystemExit as e:  # --help, --version, or a usage error already printed
        return e.code if isinstance(e.code, int) else 2
    if argv is None:
        _opt_in()
    if args.debug:
        return finish_job(args.run(args))
    try:
        return finish_job(args.run(args))
    except CommandError as e:  # the same on every rank of a job: one of them says it
        if job_rank() in (None, 0):
            print(f"tinypix {args.command}: {e}", file=sys.stderr)
        return e.status
    except KeyboardInterrupt:
        print(f"tinypix {args.command}: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    except Exception as e:  # a failure no check foresaw: still one line, and the way to see more
        where = "" if job_rank() is None else f"rank {job_rank()}: "
        print(f"tinypix {args.command}: {where}{type(e).__name__}: {first_line(e)} (run again with --debug "
              f"for the traceback)", file=sys.stderr)
        from . import distributed as dist
        dist._abort("failed")  # in a job of several processes, end them all
        return 1


def job_rank():
    """This process's rank in a job of several, or None."""
    from . import distributed as dist
    return dist.get_rank() if dist.is_initialized() and dist.get_world_size() > 1 else None


def finish_job(status):
    """Leave the job (if any) with every rank, and return ``status``."""
    from . import distributed as dist
    if dist.is_initialized():
        dist.destroy_process_group()
    return status


def _opt_in():
    from .tuning import blas_coretype_advice, tune_process
    advice = blas_coretype_advice()
    if advice and sys.executable:  # the same command line, interpreter options included
        sys.stdout.flush()
        os.execve(sys.executable, sys.orig_argv, {**os.environ, **advice})
    tune_process()


if __name__ == "__main__":
    sys.exit(main())
