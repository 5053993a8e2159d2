"""`midstream analyze` and `midstream compare` on real files, good and bad."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from test_dynamics import LORENZ, logistic

CMD = [sys.executable, "-m", "midstream_tui"]


def run(*args):
    return subprocess.run([*CMD, *map(str, args)], capture_output=True, text=True, timeout=120)


def test_analyze_lorenz_npy_reports_lyapunov_per_time_unit(tmp_path):
    path = tmp_path / "lorenz.npy"
    np.save(path, LORENZ)
    proc = run("analyze", path, "--dt", "0.01", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["points"] == 10_000 and out["dim"] == 3
    assert out["lyapunov"]["lyapunov"] == pytest.approx(0.906, rel=0.05)
    assert out["lyapunov"]["fit"]["r2"] > 0.99
    assert out["attractor"]["type"] == "strange"


def test_analyze_csv_column_and_jsonl_objects(tmp_path):
    x = logistic(2000)
    csv_path = tmp_path / "series.csv"
    csv_path.write_text("time,value\n" + "\n".join(f"{i},{v}" for i, v in enumerate(x)))
    jsonl_path = tmp_path / "series.jsonl"
    jsonl_path.write_text("\n".join(json.dumps({"t": i, "v": v}) for i, v in enumerate(x)))
    for path, column in ((csv_path, "value"), (jsonl_path, "v")):
        out = json.loads(run("analyze", path, "--column", column, "--json").stdout)
        assert out["lyapunov"]["lyapunov"] == pytest.approx(math.log(2), rel=0.05)
    text = run("analyze", csv_path, "--column", "value").stdout
    assert "lyapunov" in text and "per time unit" in text and "attractor" in text


def test_analyze_constant_and_short_series_give_defined_results(tmp_path):
    const = tmp_path / "const.txt"
    const.write_text(" ".join(["5"] * 300))
    out = json.loads(run("analyze", const, "--json").stdout)
    assert out["lyapunov"] is None and "constant" in out["reason"]
    assert out["attractor"]["type"] == "point"
    short = tmp_path / "short.txt"
    short.write_text("1 2 3 4 5")
    out = json.loads(run("analyze", short, "--json").stdout)
    assert out["lyapunov"] is None and "too short" in out["reason"]
    assert out["attractor"]["type"] == "unknown"


@pytest.mark.parametrize("name, content, message", [
    ("nan.txt", "1 2 nan 4", "NaN/inf"),
    ("empty.csv", "", "empty"),
    ("bad.jsonl", '{"v": 1}\n{"v": oops}\n', "line 2: malformed JSON"),
    ("text.csv", "a,b\nx,y\n", "no numeric column"),
    ("words.txt", "one two three", "could not convert"),
    ("series.xlsx", "whatever", "unknown format"),
])
def test_analyze_bad_files_fail_with_one_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    proc = run("analyze", path)
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_analyze_missing_file():
    proc = run("analyze", "/nonexistent/series.npy")
    assert proc.returncode == 2 and "no such file" in proc.stderr


def test_compare_algorithms(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("1 2 3 4 5")
    b.write_text("1 2 2 3 4 5")
    dtw = json.loads(run("compare", a, b, "--algorithm", "dtw", "--json").stdout)
    assert dtw["value"] == 0.0 and dtw["len_b"] == 6
    edit = json.loads(run("compare", a, b, "--algorithm", "edit", "--json").stdout)
    assert edit["value"] == 1
    lcs = json.loads(run("compare", a, b, "--algorithm", "lcs", "--json").stdout)
    assert lcs["value"] == 5
    proc = run("compare", a, b, "--algorithm", "euclidean")
    assert proc.returncode == 2 and "equal lengths" in proc.stderr


def test_compare_token_files(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("the model repeats the same phrase")
    b.write_text("the model repeats a different phrase")
    out = json.loads(run("compare", a, b, "--algorithm", "edit", "--tokens", "--json").stdout)
    assert out["value"] == 2 and out["len_a"] == 6


def test_analyze_finds_a_planted_motif(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.normal(size=2000)
    shape = np.sin(np.linspace(0, 2 * np.pi, 40)) * 4
    x[300:340] += shape
    x[1500:1540] += shape
    path = tmp_path / "motif.npy"
    np.save(path, x)
    out = json.loads(run("analyze", path, "--motif-length", "40", "--json").stdout)
    first, second = out["motifs"][0]["positions"]
    # the same alignment of the shape in both places, within a few samples of where it was planted
    assert second - first == 1200 and abs(first - 300) <= 8 and out["motifs"][0]["length"] == 40
    assert "motif" in run("analyze", path, "--motif-length", "40").stdout
    assert run("analyze", path, "--motif-length", "2").returncode == 2
