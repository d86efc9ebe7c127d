"""tinypix.optim: SGD (coupled or decoupled weight decay), Adam, AdamW, and ``lr_scheduler``.

    opt = tinypix.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4,
                            decoupled_weight_decay=True)
    for x, y in loader:
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
"""
from . import lr_scheduler
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .sgd import SGD
