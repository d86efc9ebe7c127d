"""Lesson test: a small, fast version of the lessons examples/edges_to_image.py prints.

The example's own ``run`` trains a U-Net from sketches to pictures, here on 24 x 24 scenes for 300
steps (the example: 32 x 32, 400 steps). Measured on these settings over seeds 0-2: with class
colours the network's L1 on object pixels is 0.119-0.126 against the median image's 0.182-0.191
(it removes 0.33-0.36 of the median image's L1); with random colours it removes -0.001 to 0.062.
Taking the mechanism away (random colours in both arms) leaves no gap to find.

examples/multitask.py has no lesson test: its gain needs hundreds of steps on two tasks, well
beyond the 20 s a lesson test may take.
"""
import types

from example_scripts import example


def test_l1_learns_the_colours_a_sketch_predicts_and_the_median_of_the_rest():
    edges_to_image = example("edges_to_image")
    cfg = types.SimpleNamespace(size=24, train_scenes=120, test_scenes=40, batch=16, steps=300, base=8, lr=3e-3)
    by_class = edges_to_image.run(cfg, 0, "by_class")
    random = edges_to_image.run(cfg, 0, "random")
    # Shape predicts colour: the network beats both pictures that ignore the sketch.
    assert by_class["network"] < by_class["median"] - 0.04, by_class
    assert by_class["network"] < by_class["mean"] - 0.04, by_class
    # Without class colours the sketch predicts little, and L1 stays near the median image.
    removed = {name: 1 - r["network"] / r["median"] for name, r in (("class", by_class), ("random", random))}
    assert removed["class"] > removed["random"] + 0.2, removed
