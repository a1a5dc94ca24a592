"""``gan-sample`` figures: style mixing swaps exactly the chosen styles, interpolation strips
start and end at the seeds' own images, slerp stays on the latent shell, and the command
writes the PNGs or refuses models without a mapping network in one line."""

from __future__ import annotations

import math
import sys

import pytest
import torch
from PIL import Image
from run_files import write_run_checkpoint

from gan_runner.cli.sample import main
from gan_runner.core.errors import UserError
from gan_runner.core.spec import DataSpec
from gan_runner.models.base import MODELS
from gan_runner.models.dcgan import DCGANConfig
from gan_runner.models.latents import (
    interpolation,
    latents_for_seeds,
    slerp,
    style_layers,
    style_mixing,
)
from gan_runner.models.stylegan2 import StyleGAN2Config, build_stylegan2
from gan_runner.models.stylegan2.layers import NoiseInjection

from conftest import TINY_FMNIST, TINY_TOY, needs_fmnist

PSI, CUTOFF = 0.6, 3
TINY_STYLEGAN = [*(o for o in TINY_FMNIST if not o.startswith("model.")),
                 "model=stylegan2", "model.z_dim=8", "model.w_dim=8", "model.mapping_layers=2",
                 "model.channel_base=64", "model.channel_max=8"]


@pytest.fixture
def stylegan() -> torch.nn.Module:
    """A 16 px generator (6 styles) whose noise inputs and w_avg matter, so that random noise
    or a missing truncation would change the images."""
    torch.manual_seed(0)
    cfg = StyleGAN2Config(z_dim=8, w_dim=8, mapping_layers=2, channel_base=64, channel_max=8)
    G = build_stylegan2(cfg, DataSpec((1, 16, 16))).G.eval().requires_grad_(False)
    for module in G.modules():
        if isinstance(module, NoiseInjection):
            module.strength.fill_(0.5)
    G.mapping.w_avg.normal_()
    return G


def own_image(G: torch.nn.Module, seed: int) -> torch.Tensor:
    """The seed drawn on its own, with the noise fixed."""
    z = latents_for_seeds([seed], G.z_dim)
    return G(z, psi=PSI, cutoff=CUTOFF, noise_mode="const")[0]


def assert_same_image(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Equal up to float round-off: batch size may change the order of sums."""
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


# --- style mixing --------------------------------------------------------------------------------


def test_mixing_cell_takes_exactly_the_chosen_styles_from_the_column_seed(stylegan):
    layers = [1, 4]
    figure = style_mixing(stylegan, [3, 7], [11, 12, 13], layers, PSI, CUTOFF)
    assert figure.cells.shape == (2, 3, 1, 16, 16)
    for i, row_seed in enumerate([3, 7]):
        row_ws = stylegan.mapping(latents_for_seeds([row_seed], 8), psi=PSI, cutoff=CUTOFF)
        for j, col_seed in enumerate([11, 12, 13]):
            col_ws = stylegan.mapping(latents_for_seeds([col_seed], 8), psi=PSI, cutoff=CUTOFF)
            mixed = row_ws.clone()
            mixed[:, layers] = col_ws[:, layers]
            expected = stylegan.synthesis(mixed, noise_mode="const")[0]
            assert_same_image(figure.cells[i, j], expected)
            assert not torch.allclose(figure.cells[i, j], figure.rows[i], atol=1e-3)
            assert not torch.allclose(figure.cells[i, j], figure.cols[j], atol=1e-3)


def test_mixing_headers_are_the_seeds_own_images(stylegan):
    figure = style_mixing(stylegan, [3, 7], [11, 12, 13], [0, 1], PSI, CUTOFF)
    for image, seed in zip([*figure.rows, *figure.cols], [3, 7, 11, 12, 13], strict=True):
        assert_same_image(image, own_image(stylegan, seed))


def test_mixing_every_style_gives_the_column_image(stylegan):
    figure = style_mixing(stylegan, [3, 7], [11], list(range(6)), PSI, CUTOFF)
    for cell in figure.cells[:, 0]:
        assert_same_image(cell, figure.cols[0])


def test_tiles_put_columns_on_top_and_rows_on_the_left(stylegan):
    figure = style_mixing(stylegan, [3, 7], [11, 12, 13], [0], PSI, CUTOFF)
    tiles = figure.tiles().unflatten(0, (3, 4))
    assert (tiles[0, 0] == -1).all()
    assert torch.equal(tiles[0, 1:], figure.cols)
    assert torch.equal(tiles[1:, 0], figure.rows)
    assert torch.equal(tiles[1:, 1:], figure.cells)


@pytest.mark.parametrize("num_ws,tokens,layers", [
    (18, ["coarse"], [0, 1, 2, 3]),  # 1024 px: the ranges of the StyleGAN paper
    (18, ["middle"], [4, 5, 6, 7]),
    (18, ["fine"], list(range(8, 18))),
    (8, ["middle"], [4, 5]),  # 32 px: the last resolution counts as fine
    (8, ["fine"], [6, 7]),
    (8, ["coarse", 6, 2], [0, 1, 2, 3, 6]),
    (8, [5, 1, 5], [1, 5]),
])
def test_styles_name_layers_by_resolution(num_ws, tokens, layers):
    assert style_layers(tokens, num_ws) == layers


@pytest.mark.parametrize("num_ws,tokens,fragment", [
    (8, [8], "has 8 styles"),
    (6, ["middle"], "styles=middle names no layer of this 16x16 generator"),
])
def test_styles_outside_the_generator_are_refused(num_ws, tokens, fragment):
    with pytest.raises(UserError, match=fragment):
        style_layers(tokens, num_ws)


# --- interpolation -------------------------------------------------------------------------------


@pytest.mark.parametrize("space", ["z", "w"])
def test_interpolation_passes_through_each_seeds_own_image(stylegan, space):
    strip = interpolation(stylegan, [3, 7, 11], steps=4, space=space, psi=PSI, cutoff=CUTOFF)
    assert len(strip) == 2 * 3 + 1
    for index, seed in [(0, 3), (3, 7), (6, 11)]:
        assert_same_image(strip[index], own_image(stylegan, seed))
    assert not torch.allclose(strip[1], strip[0], atol=1e-3)


def test_w_interpolation_is_a_straight_line_in_w(stylegan):
    ws = stylegan.mapping(latents_for_seeds([3, 7], 8), psi=PSI, cutoff=CUTOFF)
    midpoint = stylegan.synthesis((ws[:1] + ws[1:]) / 2, noise_mode="const")[0]
    strip = interpolation(stylegan, [3, 7], steps=3, space="w", psi=PSI, cutoff=CUTOFF)
    assert_same_image(strip[1], midpoint)


def test_models_without_a_mapping_network_interpolate_in_z():
    torch.manual_seed(0)
    G = MODELS.get("dcgan")(DCGANConfig(z_dim=8, channels=4), DataSpec((1, 16, 16))).G.eval()
    with torch.no_grad():
        strip = interpolation(G, [3, 7], steps=5)
        ends = G(latents_for_seeds([3, 7], 8))
    assert_same_image(strip[[0, -1]], ends)


def test_slerp_keeps_the_norm_of_equal_length_latents():
    a, b = torch.randn(2, 512, generator=torch.Generator().manual_seed(0))
    b = b * a.norm() / b.norm()
    path = slerp(a, b, torch.linspace(0, 1, 9))
    torch.testing.assert_close(path.norm(dim=1), a.norm().expand(9))
    assert torch.equal(path[0], a)
    torch.testing.assert_close(path[-1], b)


def test_slerp_turns_evenly_and_lerps_the_length():
    a, b = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 4.0])
    path = slerp(a, b, torch.tensor([0.0, 1 / 3, 0.5, 1.0]))
    angles = torch.atan2(path[:, 1], path[:, 0])
    torch.testing.assert_close(angles, torch.tensor([0.0, math.pi / 6, math.pi / 4, math.pi / 2]))
    torch.testing.assert_close(path.norm(dim=1), torch.tensor([2.0, 8 / 3, 3.0, 4.0]))


def test_slerp_between_parallel_latents_is_finite():
    a = torch.tensor([1.0, 2.0])
    path = slerp(a, 3 * a, torch.linspace(0, 1, 5))
    torch.testing.assert_close(path, torch.outer(torch.linspace(1, 3, 5), a))


# --- the command ---------------------------------------------------------------------------------


def gan_sample(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run the ``gan-sample`` entry point in this process: exit status, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["gan-sample", *args])
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    try:
        main()
        status = 0
    except SystemExit as exit_:
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


@needs_fmnist
def test_gan_sample_writes_the_mixing_figure_and_the_strip(tmp_path, monkeypatch,
                                                           capsys):
    ckpt = write_run_checkpoint(TINY_STYLEGAN, tmp_path / "ckpt.pt")
    status, _, err = gan_sample(monkeypatch, capsys, f"ckpt={ckpt}", "mode=mixing", "rows=0-2",
                                "cols=5-8", "styles=coarse", "psi=0.7",
                                f"out={tmp_path / 'mix.png'}")
    assert status == 0, err
    assert Image.open(tmp_path / "mix.png").size == (5 * 33 + 1, 4 * 33 + 1)  # 32 px + padding
    status, _, err = gan_sample(monkeypatch, capsys, f"ckpt={ckpt}", "mode=interp",
                                "seeds=1,2,3", "steps=4", "space=w",
                                f"out={tmp_path / 'strip.png'}")
    assert status == 0, err
    assert Image.open(tmp_path / "strip.png").size == (7 * 33 + 1, 33 + 1)


@needs_fmnist
def test_gan_sample_writes_one_png_per_seed_with_individual(tmp_path, monkeypatch,
                                                            capsys):
    ckpt = write_run_checkpoint(TINY_FMNIST, tmp_path / "ckpt.pt")
    status, _, err = gan_sample(monkeypatch, capsys, f"ckpt={ckpt}", "seeds=3,7",
                                f"individual={tmp_path / 'pngs'}", f"out={tmp_path / 'grid.png'}")
    assert status == 0, err
    assert sorted(p.name for p in (tmp_path / "pngs").iterdir()) == ["seed0003.png",
                                                                     "seed0007.png"]
    grid = Image.open(tmp_path / "grid.png")
    for index, name in enumerate(["seed0003.png", "seed0007.png"]):  # the grid's own tiles
        tile = grid.crop((1 + 33 * index, 1, 33 + 33 * index, 33))
        assert list(Image.open(tmp_path / "pngs" / name).convert(tile.mode).getdata()) == \
            list(tile.getdata())


def test_individual_pngs_of_a_points_checkpoint_are_refused(tmp_path,
                                                            monkeypatch, capsys):
    ckpt = write_run_checkpoint(TINY_TOY, tmp_path / "ckpt.pt")
    status, _, err = gan_sample(monkeypatch, capsys, f"ckpt={ckpt}",
                                f"individual={tmp_path / 'pngs'}", f"out={tmp_path / 'a.png'}")
    assert status == 2 and err.count("\n") == 1
    assert "individual= writes one PNG per image, and this checkpoint makes 2-D points" in err
    assert not (tmp_path / "pngs").exists() and not (tmp_path / "a.png").exists()


@needs_fmnist
def test_mixing_a_dcgan_checkpoint_fails_in_one_line(tmp_path, monkeypatch,
                                                     capsys):
    ckpt = write_run_checkpoint(TINY_FMNIST, tmp_path / "ckpt.pt")
    status, out, err = gan_sample(monkeypatch, capsys, f"ckpt={ckpt}", "mode=mixing",
                                  "rows=0-2", "cols=5-8", f"out={tmp_path / 'mix.png'}")
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("error: mode=mixing needs a generator with "
                                                   "a mapping network")
    assert "model=dcgan" in err and "model=stylegan2" in err and "Traceback" not in out + err
    assert not (tmp_path / "mix.png").exists()


@pytest.mark.parametrize("args,fragment", [
    (["mode=interp"], "mode=interp needs seeds="),
    (["mode=interp", "seeds=4"], "at least two seeds"),
    (["rows=0-3"], "rows= does not apply to mode=grid (it is for mode=mixing)"),
    (["mode=mixing", "rows=0-3", "cols=1", "styles=legs"], "styles=legs is not valid"),
    (["mode=interp", "seeds=1,2", "steps=1"], "steps=1 is not valid"),
])
def test_mode_arguments_are_checked_before_the_checkpoint_is_read(args, fragment, tmp_path,
                                                                  monkeypatch, capsys):
    status, _, err = gan_sample(monkeypatch, capsys, f"ckpt={tmp_path / 'none.pt'}", *args)
    assert status == 2
    assert err.count("\n") == 1 and fragment in err
