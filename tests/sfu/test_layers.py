"""Simulcast layer choice (``parley.sfu.layers``): tile size, penalty, liveness."""

from __future__ import annotations

from parley.sfu import layers

SIZES = [(320, 180), (640, 360), (1280, 720)]
ALL_LIVE = [True, True, True]


def test_sizes_not_measured_yet_are_derived_from_a_neighbour() -> None:
    assert layers.layer_sizes([(0, 0), (640, 360), (0, 0)]) == SIZES
    assert layers.layer_sizes([(0, 0), (0, 0)]) is None


def test_lowest_layer_covering_the_tile() -> None:
    assert layers.wanted_layer((300, 170), SIZES, ALL_LIVE, 0) == 0
    assert layers.wanted_layer((640, 360), SIZES, ALL_LIVE, 0) == 1
    # 75 % of the tile's width is enough: 480 / 640 covers a 640 wide tile
    assert layers.wanted_layer((853, 480), SIZES, ALL_LIVE, 0) == 1
    assert layers.wanted_layer((1920, 1080), SIZES, ALL_LIVE, 0) == 2  # none covers: top
    assert layers.wanted_layer(None, SIZES, ALL_LIVE, 0) == 2  # size unknown: top
    assert layers.wanted_layer((0, 0), SIZES, ALL_LIVE, 0) == 0  # not shown: lowest
    assert layers.wanted_layer((320, 180), [(0, 0)] * 3, ALL_LIVE, 0) == 2  # none measured


def test_penalty_lowers_and_dead_layers_are_avoided() -> None:
    assert layers.wanted_layer((1280, 720), SIZES, ALL_LIVE, 1) == 1
    assert layers.wanted_layer((1280, 720), SIZES, ALL_LIVE, 5) == 0
    # the top layer stopped: the nearest live one below; nothing below: the lowest live
    assert layers.wanted_layer((1280, 720), SIZES, [True, True, False], 0) == 1
    assert layers.wanted_layer((300, 170), SIZES, [False, True, True], 0) == 1
    assert layers.wanted_layer((1280, 720), SIZES, [False, False, False], 0) == 2


def test_liveness() -> None:
    assert layers.is_live(9.6, 10.0)
    assert not layers.is_live(9.4, 10.0)
