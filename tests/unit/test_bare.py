"""The bare loop's command line: help, usage errors, its figures and --compare against a saved run."""

import json
import os
import re

import pytest
import torch

from cnnbench.bare.training import main

TINY = ["--model", "googlenet_cifar_small", "--batch", "2", "--steps", "1", "--rounds", "1", "--warmup", "0"]
OURS = re.compile(r"^googlenet_cifar_small batch 2, 1 thread\(s\), .*: ([\d.]+) img/s \(median\), ([\d.]+) ms/step$")


@pytest.fixture(autouse=True)
def restore_process():
    """main pins this process and sets torch's threads, as a command may; the next test gets them back."""
    cores, threads = os.sched_getaffinity(0), torch.get_num_threads()
    yield
    os.sched_setaffinity(0, cores)
    torch.set_num_threads(threads)


def result(model: str, wrapper: str, batch: int = 2, steps: int = 1, images_per_second: float = 43.9) -> dict:
    """A saved benchmark as pytest-benchmark writes it, with the cnnbench keys --compare reads."""
    info = {
        "model": model,
        "wrapper": wrapper,
        "device_set": "cpu:0" if wrapper == "single" else "cpu:0,1",
        "images_per_second": images_per_second,
        "global_batch": batch,
        "steps_per_round": steps,
        "threads_per_rank": 1,
    }
    return {"name": f"test_train[{model}-{wrapper}]", "stats": {}, "extra_info": info}


def saved(tmp_path, *benchmarks: dict):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"machine_info": {}, "benchmarks": list(benchmarks)}))
    return path


def usage_error(capsys, argv: list[str]) -> str:
    """The one error line of a usage error (exit 2), after checking that it is one line."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: python -m cnnbench.bare") and "Traceback" not in err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and err.endswith(errors[0] + "\n")
    return errors[0]


def test_help_names_the_command_and_shows_every_default(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # help wraps at the terminal width
    assert out.startswith("usage: python -m cnnbench.bare ")
    for option, default in [("--batch", 32), ("--threads", 1), ("--steps", 3), ("--rounds", 6), ("--warmup", 2)]:
        assert re.search(rf"{option} \w+ [^-]*\(default: {default}\)", out), option
    assert "(default: googlenet_cifar_small)" in out and "--compare PATH" in out
    assert '--benchmark-json=run.json python -m cnnbench.bare --threads "$(nproc)" --compare run.json' in out


def test_an_unknown_model_is_one_line_that_lists_the_models(capsys):
    error = usage_error(capsys, ["--model", "googlenet"])
    assert error.startswith("python -m cnnbench.bare: error: argument --model: unknown model 'googlenet'")
    assert "googlenet_cifar, googlenet_cifar_small" in error


@pytest.mark.parametrize(
    ("option", "value"),
    [("--steps", "0"), ("--rounds", "-1"), ("--batch", "0"), ("--threads", "0"), ("--warmup", "-1"), ("--batch", "x")],
)
def test_a_bad_number_is_one_line_naming_the_option(capsys, option, value):
    assert f"argument {option}: " in usage_error(capsys, [*TINY, option, value])


def test_more_threads_than_usable_cores_is_a_usage_error(capsys):
    cores = len(os.sched_getaffinity(0))
    error = usage_error(capsys, [*TINY, "--threads", str(cores + 1)])
    assert f"argument --threads: {cores + 1} threads, but this process may use only {cores} core(s)" in error


def test_it_prints_images_per_second_and_ms_per_step(capsys):
    main(TINY)
    out, err = capsys.readouterr()
    [line] = out.splitlines()
    images_per_second, ms_per_step = map(float, OURS.match(line).groups())
    assert images_per_second > 0 and ms_per_step > 0 and err == ""


def test_compare_prints_the_suite_figure_and_the_ratio(tmp_path, capsys):
    path = saved(
        tmp_path,
        result("googlenet_cifar_small", "single"),
        result("googlenet_cifar_small", "ddp", images_per_second=80.0),
        result("resnet18_cifar", "single", images_per_second=12.0),
    )
    main([*TINY, "--compare", str(path)])
    out, err = capsys.readouterr()
    ours_line, suite_line = out.splitlines()  # one single result for this model: ddp and resnet18 are left out
    ours = float(OURS.match(ours_line)[1])
    ratio = float(re.fullmatch(r"suite single cpu:0: 43\.9 img/s = ([\d.]+)x of this loop", suite_line)[1])
    assert ratio == pytest.approx(43.9 / ours, rel=0.01, abs=0.01)  # ours is printed rounded
    assert err == ""  # the same batch, steps and threads: no warning


def test_compare_warns_when_the_suite_ran_other_sizes(tmp_path, capsys):
    main([*TINY, "--compare", str(saved(tmp_path, result("googlenet_cifar_small", "single", batch=32, steps=4)))])
    out, err = capsys.readouterr()
    assert out.splitlines()[1].startswith("suite single cpu:0: 43.9 img/s = ")
    assert err == (
        "warning: suite single cpu:0 ran other sizes (batch 32 there, 2 here; steps 4 there, 1 here): "
        "not a like-for-like comparison\n"
    )


def test_compare_with_a_missing_file_names_it(tmp_path, capsys):
    path = tmp_path / "absent.json"
    error = usage_error(capsys, [*TINY, "--compare", str(path)])
    assert error.endswith(f"error: --compare {path}: cannot read it (No such file or directory)")


def test_compare_with_a_file_that_is_not_json_says_so(tmp_path, capsys):
    path = tmp_path / "run.json"
    path.write_text("not json")
    assert f"error: --compare {path}: not a JSON file (" in usage_error(capsys, [*TINY, "--compare", str(path)])


def test_compare_without_a_matching_result_lists_what_the_file_has(tmp_path, capsys):
    path = saved(tmp_path, result("googlenet_cifar_small", "ddp"), result("resnet18_cifar", "single"))
    error = usage_error(capsys, [*TINY, "--compare", str(path)])
    assert error.endswith(
        f"error: --compare {path}: no single result for model 'googlenet_cifar_small'; "
        "it has: googlenet_cifar_small (ddp); resnet18_cifar (single)"
    )


def test_compare_with_a_json_file_that_is_no_benchmark_run_says_what_was_expected(tmp_path, capsys):
    path = tmp_path / "other.json"
    path.write_text("[1, 2]")
    assert usage_error(capsys, [*TINY, "--compare", str(path)]).endswith(
        f"error: --compare {path}: no 'benchmarks' list; expected a pytest-benchmark JSON file"
    )
