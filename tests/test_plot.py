"""alexnet-train plot draws the curves of runs trained by the CLI in both frameworks, into one PNG."""

import json


from alexnet_cli import train


def test_plot_draws_a_torch_run_and_a_keras_run_in_one_png(trained_run, tmp_path, capsys):
    from PIL import Image

    runs = [str(trained_run("torch")), str(trained_run("keras"))]
    out = tmp_path / "curves.png"
    assert train.main(["plot", *runs, "--out", str(out), "--title", "digits", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == {"ok": True, "figure": str(out), "runs": runs}
    with Image.open(out) as image:
        assert image.format == "PNG" and image.width > 400 and image.height > 200

    # never overwritten without --force; a folder that is not a run is refused before drawing
    before = out.read_bytes()
    assert train.main(["plot", *runs, "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err and out.read_bytes() == before
    assert train.main(["plot", str(tmp_path), "--out", str(tmp_path / "other.png")]) == 2
    assert not (tmp_path / "other.png").exists()
