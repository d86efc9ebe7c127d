"""The training loop behind ``tinypix train``: data, model, loss, metrics, checkpoints.

Everything a run needs to rebuild its model (task, model name, channels, classes) is kept in
``config`` and stored in the checkpoint, so ``tinypix eval`` and ``tinypix predict`` need only
the checkpoint file.
"""
import json
import os

import numpy as np

from . import distributed as dist
from . import functional as F
from .autograd import no_grad
from .data import DataLoader, DepthNormalsFolder, SegmentationFolder, SyntheticScenes
from .data.transforms import RandomHorizontalFlip, RandomResizedCrop, Resize
from .metrics import ConfusionMatrix, depth_metrics, normal_metrics
from .models import FCN, SegNet, UNet, default_out_channels
from .serialization import load, save
from .utils.data import DistributedSampler, Subset

MAIN_METRIC = {"segmentation": "miou", "depth": "delta1", "normals": "within_22.5"}


def build_model(config):
    """The model a config names; ``config`` keys: model, task, num_classes, base_channels, depth."""
    out = default_out_channels(config["task"], config["num_classes"])
    name, task, base = config["model"], config["task"], config["base_channels"]
    if name == "unet":
        return UNet(3, out, base_channels=base, depth=config["depth"], task=task)
    if name == "fcn8s":
        return FCN(3, out, variant="8s", width=base, task=task)
    if name == "segnet":
        return SegNet(3, out, base_channels=base, depth=config["depth"], task=task)
    raise ValueError(f"unknown model {name!r}: choose unet, fcn8s or segnet")


def datasets(config):
    """(train, held-out) datasets: the built-in scenes, or a folder split 90/10 by a fixed seed.

    Folder pictures come in many sizes, so they are resized (held-out) or randomly
    resized-and-cropped (training) to ``config['size']`` to be batched.
    """
    if config["data"] is None:
        n_train, n_val, size = config["train_scenes"], config["val_scenes"], config["size"]
        return (SyntheticScenes(n_train, size=size, seed=config["seed"]),
                SyntheticScenes(n_val, size=size, seed=config["seed"] + 1))
    cls = SegmentationFolder if config["task"] == "segmentation" else DepthNormalsFolder
    full = cls(config["data"])
    order = np.random.default_rng(config["seed"]).permutation(len(full))
    n_val = max(1, len(full) // 10)
    return (_Subset(full, order[n_val:], RandomResizedCrop(config["size"])),
            _Subset(full, order[:n_val], Resize(config["size"])))


class _Subset:
    """Some samples of a dataset, each passed through ``transform``."""

    def __init__(self, dataset, indices, transform):
        self.dataset, self.indices, self.transform = dataset, list(indices), transform

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        return self.transform(self.dataset[self.indices[i]])


def compute_loss(task, output, batch):
    """Per-pixel loss of one batch. output: the model's (N, out, H, W) prediction."""
    if task == "segmentation":
        return F.cross_entropy(output, batch["mask"], ignore_index=255)
    valid = batch["depth_valid"] if "depth_valid" in batch else None
    if task == "depth":  # L1 on log-depth: a 10% error costs the same near and far
        target = batch["depth"].unsqueeze(1).clamp(1e-3, None).log()
        return F.l1_loss(output.log(), target, mask=None if valid is None else valid.unsqueeze(1))
    known = batch["normals"].abs().sum(1) > 0  # folders store unknown normals as zero vectors
    return F.cosine_normal_loss(output, batch["normals"], mask=known)


class Scorer:
    """Accumulates a task's held-out metrics over batches."""

    def __init__(self, task, num_classes):
        self.task = task
        self.confusion = ConfusionMatrix(num_classes, ignore_index=255) if task == "segmentation" else None
        self.preds, self.targets, self.masks = [], [], []

    def update(self, output, batch):
        if self.task == "segmentation":
            self.confusion.update(output.argmax(1), batch["mask"])
            return
        key = "depth" if self.task == "depth" else "normals"
        pred = output.numpy()[:, 0] if self.task == "depth" else output.numpy()
        self.preds.append(pred)
        self.targets.append(batch[key].numpy())
        if "depth_valid" in batch:
            self.masks.append(batch["depth_valid"].numpy())

    @staticmethod
    def combined(scorers):
        """One Scorer holding what all of ``scorers`` have seen (the ranks' shares)."""
        whole = Scorer(scorers[0].task, scorers[0].confusion.num_classes if scorers[0].confusion else 0)
        for s in scorers:
            if whole.confusion is not None:
                whole.confusion.matrix += s.confusion.matrix
            whole.preds += s.preds
            whole.targets += s.targets
            whole.masks += s.masks
        return whole

    def result(self):
        if self.task == "segmentation":
            return {"miou": self.confusion.miou(), "pixel_accuracy": self.confusion.pixel_accuracy()}
        pred, target = np.concatenate(self.preds), np.concatenate(self.targets)
        mask = np.concatenate(self.masks) if self.masks else None
        fn = depth_metrics if self.task == "depth" else normal_metrics
        return {k: float(v) for k, v in fn(pred, target, mask).items()}


def to_device(batch, device):
    return {k: v.to(device) for k, v in batch.items()}


def evaluate(model, loader, config):
    """Mean loss and metrics on a loader, in eval mode and without a graph. In a process group of
    several ranks, each scores its own share and the results are combined over all of them."""
    model.eval()
    scorer, losses = Scorer(config["task"], config["num_classes"]), []
    with no_grad():
        for batch in loader:
            batch = to_device(batch, config["device"])
            output = model(batch["image"])
            losses.append(compute_loss(config["task"], output, batch).item())
            scorer.update(output.cpu(), {k: v.cpu() for k, v in batch.items()})
    model.train()
    if dist.is_initialized() and dist.get_world_size() > 1:
        shares = [None] * dist.get_world_size()
        dist.all_gather_object(shares, (losses, scorer))
        losses = [loss for share, _ in shares for loss in share]
        scorer = Scorer.combined([s for _, s in shares])
    return float(np.mean(losses)), scorer.result()


def predictions_for_pictures(task, output):
    """A model's output as the maps the pictures show: labels (N, H, W), depth (N, H, W) or normals."""
    if task == "segmentation":
        return output.argmax(1).numpy()
    return output.numpy()[:, 0] if task == "depth" else output.numpy()


def checkpoint_state(model, optimizer, scheduler, epoch, history, config, **extra):
    """What a run needs to continue: weights, optimizer and schedule, the finished ``epoch``s and
    their ``history``, the ``config``, and ``extra`` (where in an epoch it stopped, and so on)."""
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "epoch": epoch, "history": history, "config": config, **extra}


def write_metrics(out_dir, history, config, seconds):
    payload = {"config": config, "history": history, "final": history[-1] if history else None,
               "train_seconds": round(seconds, 1)}
    tmp = os.path.join(out_dir, "metrics.json.tmp")
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2)
    os.replace(tmp, os.path.join(out_dir, "metrics.json"))


def load_checkpoint(path):
    state = load(path)
    if not isinstance(state, dict) or "config" not in state or "model" not in state:
        raise ValueError(f"{path}: not a tinypix training checkpoint (no 'model' and 'config' entries)")
    return state


def make_loaders(config, rank=0, world_size=1):
    """(training, held-out) loaders. With ``world_size`` ranks, rank ``rank`` gets its share: an
    equal part of each epoch's shuffled order in batches of ``batch_size / world_size`` (one global
    batch per step across the ranks), and every ``world_size``-th held-out sample, unpadded, so
    that the reduced metrics are those of the whole held-out set."""
    train_set, val_set = datasets(config)
    flip = RandomHorizontalFlip() if config["augment"] else None  # drawn from the loader's seeded rng
    batch = config["batch_size"] // world_size
    if world_size == 1:
        train = DataLoader(train_set, batch_size=batch, shuffle=True, drop_last=True, seed=config["seed"],
                           transform=flip)
    else:
        share = DistributedSampler(train_set, world_size, rank, shuffle=True, seed=config["seed"], drop_last=True)
        train = DataLoader(train_set, batch_size=batch, drop_last=True, seed=config["seed"] + 1000003 * rank,
                           transform=flip, sampler=share)
        val_set = Subset(val_set, range(rank, len(val_set), world_size))
    val = DataLoader(val_set, batch_size=batch, shuffle=False)
    return train, val


def save_checkpoint(path, model, optimizer, scheduler, epoch, history, config, **extra):
    save(checkpoint_state(model, optimizer, scheduler, epoch, history, config, **extra), path)
