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


def _run(folder, framework=None, variant="cifar", epochs=3):
    """A run folder as alexnet-train leaves it (run.json unless ``framework`` is None, metrics.csv),
    without training: the figure reads only these two files."""
    from alexnet_training import runs

    folder.mkdir(parents=True)
    if framework:
        config = runs.RunConfig(framework=framework, variant=variant, recipe="cifar", data="digits", epochs=epochs,
                                batch_size=16, seed=0, num_classes=10, options={}, lr=0.01)
        (folder / runs.RUN_FILE).write_text(config.to_json())
    runs.write_metrics(folder, [
        {"epoch": e, "train_loss": 2.0 / e, "train_top1": 0.2 * e, "val_loss": 2.2 / e, "val_top1": 0.18 * e,
         "val_top5": 0.5, "lr": 0.01, "seconds": 1.0} for e in range(1, epochs + 1)])
    return folder


def _legend(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_epochs_are_whole_numbers_on_the_axis(tmp_path):
    import matplotlib.pyplot as plt

    from alexnet_cli.plot import figure_runs

    for epochs in (1, 3, 7):
        fig = figure_runs([_run(tmp_path / f"e{epochs}" / "torch", "torch", epochs=epochs)])
        fig.canvas.draw()
        for ax in fig.axes:
            low, high = ax.get_xlim()
            ticks = [t for t in ax.get_xticks() if low <= t <= high]
            assert ticks and all(float(t).is_integer() for t in ticks), (epochs, ticks)
        plt.close(fig)


def test_the_legend_says_framework_variant_and_run_where_the_folder_adds_to_it(tmp_path):
    from alexnet_cli.plot import run_labels

    both = [_run(tmp_path / "demo" / "torch", "torch"), _run(tmp_path / "demo" / "keras", "keras")]
    assert [label for _, label in run_labels(both)] == ["torch cifar", "keras cifar"]
    named = _run(tmp_path / "lr-0.1", "torch", variant="paper")
    assert run_labels([named]) == [("torch", "torch paper (lr-0.1)")]
    twins = [_run(tmp_path / "a" / "run", "keras"), _run(tmp_path / "b" / "run", "keras")]
    assert [label for _, label in run_labels(twins)] == ["keras cifar (a/run)", "keras cifar (b/run)"]
    assert run_labels([_run(tmp_path / "bare")]) == [(None, "bare")]  # no run.json: the folder is all we know


def test_train_is_solid_validation_dashed_one_colour_per_run_in_its_frameworks_family(tmp_path):
    import matplotlib.pyplot as plt

    from alexnet_cli.plot import FAMILIES, figure_runs

    folders = [_run(tmp_path / "lr-0.01", "torch"), _run(tmp_path / "lr-0.1", "torch"),
               _run(tmp_path / "keras", "keras")]
    fig = figure_runs(folders)
    ax_loss, ax_acc = fig.axes
    assert _legend(ax_loss) == ["torch cifar (lr-0.01)", "torch cifar (lr-0.1)", "keras cifar"]
    assert _legend(ax_acc) == ["train", "validation"]
    for ax in (ax_loss, ax_acc):
        lines = ax.get_lines()
        assert [line.get_linestyle() for line in lines] == ["-", "--"] * 3
        colors = [line.get_color() for line in lines]
        assert colors[0::2] == colors[1::2]  # a run's train and validation curves share its colour
        assert colors[0] in FAMILIES["torch"] and colors[2] in FAMILIES["torch"] and colors[4] in FAMILIES["keras"]
        assert len(set(colors[0::2])) == 3
    # the dashed curve is the validation column, the solid one the training column
    from alexnet_training.runs import read_metrics

    rows = read_metrics(folders[0])
    assert list(ax_loss.get_lines()[1].get_ydata()) == [r["val_loss"] for r in rows]
    assert list(ax_acc.get_lines()[0].get_ydata()) == [100 * r["train_top1"] for r in rows]
    plt.close(fig)


def test_the_loss_axis_numbers_at_least_two_ticks_within_and_across_decades(tmp_path):
    """A loss from 2.2 down to 0.15 crosses one power of ten: labelled powers of ten alone would
    leave one number (1) on the axis."""
    import matplotlib.pyplot as plt

    from alexnet_cli.plot import figure_runs

    for epochs in (3, 14):  # 2.2 .. 0.67 within a decade; 2.2 .. 0.14 across one
        fig = figure_runs([_run(tmp_path / f"e{epochs}" / "torch", "torch", epochs=epochs)])
        fig.canvas.draw()
        ax = fig.axes[0]
        low, high = ax.get_ylim()
        labelled = [t for t in ax.yaxis.get_majorticklabels() + ax.yaxis.get_minorticklabels()
                    if t.get_text() and low <= t.get_position()[1] <= high]
        assert len(labelled) >= 2, (epochs, [t.get_text() for t in labelled])
        plt.close(fig)
