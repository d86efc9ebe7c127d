"""Pictures: of a training run's predictions and curves, of what a network learned and computes,
and of the graph autograd built.

    from tinypix import viz
    viz.plot_predictions("segmentation", images, masks, model(images).argmax(1),
                         class_names=["background", "sphere", "box", "cylinder"])
    viz.plot_kernels(model.encoders[0][0])            # a Figure: Jupyter shows it when a cell returns it
    viz.save(viz.plot_feature_maps(model, x[0]), "out/maps.png")     # in a script, write it
    viz.save(viz.colorize_depth(depth), "out/depth.png")             # an (H, W, 3) picture too
    viz.graph(loss, "out/graph.png", params=dict(model.named_parameters()))

Two kinds of result:
  - ``colorize_labels``, ``colorize_depth``, ``colorize_normals`` and ``to_picture`` return (H, W, 3)
    arrays, for ``imshow`` or ``save``;
  - ``plot_predictions``, ``plot_curves``, ``plot_kernels`` and ``plot_feature_maps`` return a
    matplotlib Figure, made without pyplot: the library never picks matplotlib's backend, so
    pictures show inline in Jupyter and your own pyplot windows keep working.
``save(figure_or_picture, path)`` writes either kind, atomically. ``graph`` returns DOT text and
renders it when Graphviz's ``dot`` program is installed.

The modules: colors.py (maps as pictures), figures.py (training-run figures and ``save``),
network.py (filters and feature maps), dot.py (the autograd graph).
"""
from .colors import PALETTE, colorize_depth, colorize_labels, colorize_normals, to_picture
from .dot import graph
from .figures import Figure, plot_curves, plot_predictions, save
from .network import plot_feature_maps, plot_kernels

__all__ = ["Figure", "PALETTE", "colorize_depth", "colorize_labels", "colorize_normals", "graph",
           "plot_curves", "plot_feature_maps", "plot_kernels", "plot_predictions", "save", "to_picture"]
