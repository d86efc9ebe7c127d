"""The names that computer-vision homework commonly uses, all present under PyTorch's spelling.

The list: what the homework programs of a deep-learning-for-vision course reach for, from
tensor creation to the training loop (collected for issue 19; its tests check each name's
behaviour against PyTorch). ``torch`` is tinypix, ``Tensor`` its tensor class, ``nn``, ``F``,
``optim`` and ``data`` its nn, nn.functional, optim and utils.data.
"""
import pytest

import tinypix

NAMES = """
torch.tensor torch.zeros torch.ones torch.full torch.arange torch.linspace torch.eye
torch.rand torch.randn torch.randint torch.zeros_like torch.randn_like
torch.from_numpy torch.cat torch.stack torch.where torch.manual_seed torch.no_grad torch.save
torch.load torch.float32 torch.float torch.long torch.bool torch.device torch.maximum
torch.minimum torch.max torch.argmax torch.mean torch.clamp torch.isnan torch.allclose
torch.einsum torch.meshgrid torch.matmul torch.from_dlpack torch.cuda.is_available
Tensor.shape Tensor.size Tensor.item Tensor.numpy Tensor.detach Tensor.clone Tensor.to
Tensor.float Tensor.long Tensor.backward
Tensor.requires_grad_ Tensor.view Tensor.reshape Tensor.permute Tensor.transpose Tensor.T
Tensor.flatten Tensor.squeeze Tensor.unsqueeze Tensor.repeat Tensor.std Tensor.masked_fill
Tensor.gather Tensor.scatter Tensor.topk Tensor.norm Tensor.add_ Tensor.mul_
nn.Module nn.Sequential nn.ModuleList nn.Conv2d nn.ConvTranspose2d nn.Linear nn.BatchNorm2d
nn.BatchNorm1d nn.GroupNorm nn.LayerNorm nn.ReLU nn.GELU nn.Dropout nn.MaxPool2d
nn.AdaptiveAvgPool2d nn.Upsample nn.CrossEntropyLoss nn.BCELoss nn.utils.clip_grad_norm_
nn.Module.register_forward_hook nn.Module.requires_grad_
F.relu F.softmax F.interpolate F.pad F.one_hot F.cosine_similarity
optim.SGD optim.Adam optim.lr_scheduler.OneCycleLR optim.lr_scheduler.MultiStepLR
optim.lr_scheduler.LambdaLR optim.lr_scheduler.ReduceLROnPlateau
data.DataLoader data.TensorDataset data.random_split data.Subset
""".split()
ROOTS = {"torch": tinypix, "Tensor": tinypix.Tensor, "nn": tinypix.nn, "F": tinypix.nn.functional,
         "optim": tinypix.optim, "data": tinypix.utils.data}


def _find(name):
    root, *path = name.split(".")
    obj = ROOTS[root]
    for part in path:
        obj = getattr(obj, part)
    return obj


def test_the_list_has_103_names():
    assert len(NAMES) == len(set(NAMES)) == 103


@pytest.mark.parametrize("name", NAMES)
def test_present(name):
    _find(name)
