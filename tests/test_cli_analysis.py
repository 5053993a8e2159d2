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
    ly = out["lyapunov"]
    # Local maps, within their stated uncertainty (two standard errors) or 5 %; the divergence curve beside it.
    assert ly["method"] == "local maps" and ly["reliable"]
    assert abs(ly["lyapunov"] - 0.906) <= max(0.05 * 0.906, 2 * ly["local_maps"]["stderr"])
    assert ly["rosenstein"]["lyapunov"] == pytest.approx(0.906, rel=0.05) and ly["fit"]["r2"] > 0.99
    assert out["attractor"]["type"] == "strange"
    # the whole spectrum beside it (published 0.9056, 0, -14.5723; Kaplan-Yorke dimension 2.062); its largest
    # exponent, in the smallest embedding, reads up to about 10 % low on a flow (this series: 0.815)
    spec = out["spectrum"]
    assert spec["dim"] == 3 and spec["reliable"] and abs(spec["exponents"][1]) < 0.1
    assert spec["exponents"][0] == pytest.approx(0.9056, rel=0.15) and spec["exponents"][2] == pytest.approx(-14.57, rel=0.1)
    assert spec["kaplan_yorke"] == pytest.approx(2.062, rel=0.03)
    text = run("analyze", path, "--dt", "0.01").stdout
    assert "spectrum" in text and "Kaplan-Yorke dimension 2.0" in text


def _genesio_tesi(n, dt=0.18, a=0.44, b=1.1, c=1.0, sub=20, skip=500):
    """x of Genesio & Tesi's jerk flow (chaotic, exponent about 0.1), RK4 in ``sub`` steps per sample."""
    s, h = np.array([0.1, 0.1, 0.1]), dt / sub

    def f(v):
        return np.array([v[1], v[2], -c * v[0] - b * v[1] - a * v[2] + v[0] ** 2])
    out = np.empty(n)
    for i in range(skip + n):
        for _ in range(sub):
            k1 = f(s)
            k2 = f(s + h / 2 * k1)
            k3 = f(s + h / 2 * k2)
            s = s + h / 6 * (k1 + 2 * k2 + 2 * k3 + f(s + h * k3))
        if i >= skip:
            out[i - skip] = s[0]
    return out


def test_analyze_says_when_the_whole_series_exponent_contradicts_the_class_of_its_last_values(tmp_path):
    # An independent review: 3,000 values of a chaotic flow read "limit cycle (confidence 0.85)" — the class is of
    # the last 1,000 — beside a reliable exponent of +0.11 for all of them, with nothing said of the contradiction.
    path = tmp_path / "genesio.txt"
    np.savetxt(path, _genesio_tesi(3000))
    out = json.loads(run("analyze", path, "--dt", "0.18", "--json").stdout)
    assert out["lyapunov"]["reliable"] and out["lyapunov"]["lyapunov"] > 0.05
    att = out["attractor"]
    assert att["type"] == "strange" or "says chaos" in att["conflict"], att
    if att["type"] != "strange":
        text = run("analyze", path, "--dt", "0.18").stdout
        assert "but the exponent of all 3000 values" in text and "last 1000 values alone" in text


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
    noise = tmp_path / "noise.txt"
    np.savetxt(noise, np.random.default_rng(1).normal(size=300))
    text = run("analyze", noise, "--lag", "299").stdout  # (a lag that leaves no room for a dimension)
    assert "lag 299, dimension not chosen" in text and "None" not in text, text


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


# ---------------------------------------------------------------- bad options, columns, tokens, bad files (issue 11)


def one_line_error(proc, *words):
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-300:], proc.stderr[-300:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("midstream: error: "), proc.stderr[-500:]
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def logistic_npy(tmp_path_factory):
    path = tmp_path_factory.mktemp("series") / "logistic.npy"
    np.save(path, logistic(1500))
    return path


@pytest.mark.parametrize("option, value", [
    ("--lag", "-3"), ("--lag", "0"), ("--lag", "2.5"), ("--dim", "0"), ("--dim", "-1"), ("--dim", "1000000"),
    ("--motif-length", "0"), ("--motif-length", "-8"), ("--dt", "0"), ("--dt", "-1"), ("--dt", "nan"),
])
def test_analyze_options_out_of_range_are_one_line_errors(logistic_npy, option, value):
    # --lag -3 used to index out of bounds in a numba kernel: SIGSEGV, exit 139, no output
    proc = run("analyze", logistic_npy, option, value)
    one_line_error(proc, option)
    assert proc.stdout == ""


def test_analyze_lag_and_dim_too_large_for_the_series(logistic_npy):
    one_line_error(run("analyze", logistic_npy, "--lag", "5000"), "--lag 5000", "1500")
    one_line_error(run("analyze", logistic_npy, "--dim", "20", "--lag", "100"), "--dim 20 --lag 100")


@pytest.mark.parametrize("option, value", [("--eps", "-1"), ("--eps", "inf"), ("--window", "-2")])
def test_compare_options_out_of_range_are_one_line_errors(tmp_path, option, value):
    a = tmp_path / "a.txt"
    a.write_text("1 2 3 4 5")
    one_line_error(run("compare", a, a, "--algorithm", "lcs" if option == "--eps" else "dtw", option, value), option)


def test_compare_options_that_do_not_apply_are_said_not_ignored(tmp_path):
    a, n = tmp_path / "a.txt", tmp_path / "n.npy"
    a.write_text("1 2 3 4 5")
    np.save(n, np.arange(5.0))
    one_line_error(run("compare", a, a, "--algorithm", "lcs", "--window", "2"), "--window applies to dtw")
    one_line_error(run("compare", a, a, "--algorithm", "dtw", "--eps", "0.5"), "--eps applies to lcs and edit")
    one_line_error(run("compare", n, a, "--tokens", "--algorithm", "edit"), "n.npy", "a NumPy array, not text")


def test_analyze_estimates_the_exponents_on_the_newest_values_and_says_so(tmp_path):
    # A long series (a minute of audio is 10^6 values) ran for many minutes in compiled code Ctrl-C cannot stop:
    # the embedding and exponents are of the newest --max-points values (the default in the help), and it says so
    x = np.concatenate([np.sin(np.arange(20_000) * 0.1), logistic(3000)])  # the newest 3,000: the logistic map
    path = tmp_path / "long.npy"
    np.save(path, x)
    out = json.loads(run("analyze", path, "--max-points", "3000", "--json").stdout)
    assert out["points"] == 23_000 and out["lyapunov_points"] == 3000
    assert out["lyapunov"]["reliable"] and abs(out["lyapunov"]["lyapunov"] - math.log(2)) < 0.07
    assert out["attractor"]["evidence"]["points"] <= 23_000
    text = run("analyze", path, "--max-points", "3000").stdout
    assert "of the last 3,000 values (--max-points)" in text
    whole = json.loads(run("analyze", tmp_path / "long.npy", "--max-points", "23000", "--json").stdout)
    assert "lyapunov_points" not in whole
    assert "default 100,000" in " ".join(run("analyze", "--help").stdout.split())
    one_line_error(run("analyze", path, "--max-points", "99"), "--max-points")


def test_whole_numbers_past_two_to_the_53_in_files_are_read_exactly(tmp_path):
    # float64 merges most whole numbers past 2^53 (nanosecond clocks, counters): 2^60 + a period-7 sequence was
    # "constant", and two such files 0 apart; in every format they are read as they are written
    k = np.arange(700) % 7
    a, b = 2 ** 60 + k, 2 ** 60 + (k + 1) % 7
    files = {"a.npy": None, "a.txt": " ".join(map(str, a)), "a.csv": "t,v\n" + "".join(f"{i},{v}\n" for i, v in
                                                                                       enumerate(a)),
             "a.jsonl": "".join(json.dumps({"v": int(v)}) + "\n" for v in a),
             "n.jsonl": "".join(f"{v}\n" for v in a)}
    np.save(tmp_path / "a.npy", a.astype(np.int64))
    np.save(tmp_path / "b.npy", b.astype(np.uint64))
    for name, text in files.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        proc = run("compare", tmp_path / name, tmp_path / "b.npy", "--algorithm", "edit", "--json")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["value"] == 2, name  # (a rotation: one out, one in)
        same = json.loads(run("compare", tmp_path / name, tmp_path / "a.npy", "--json").stdout)
        assert same["value"] == 0.0, name
        out = json.loads(run("analyze", tmp_path / name, "--json").stdout)
        assert out["attractor"]["type"] == "limit cycle", (name, out["attractor"])
    # written as floats, they are floats (rounded as written): 2^60 and 2^60 + 1 are one value then
    (tmp_path / "f.txt").write_text(" ".join(["1.152921504606846976e18", "1152921504606846977"] * 50))
    flat = json.loads(run("compare", tmp_path / "f.txt", tmp_path / "f.txt", "--json").stdout)
    assert flat["value"] == 0.0


def test_a_comparison_too_big_to_finish_is_refused_before_it_starts(tmp_path):
    # 10^6 x 10^6 values is an hour of LCS in a kernel Ctrl-C cannot stop: refused at once, with the way out
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    np.save(a, np.zeros(1_000_000))
    np.save(b, np.ones(1_000_000))
    for algorithm in ("dtw", "lcs", "edit"):
        proc = run("compare", a, b, "--algorithm", algorithm)
        one_line_error(proc, f"{algorithm} of 1,000,000 x 1,000,000 values fills 1,000,000,000,000 cells",
                       "--max-cells")
        assert ("--window" in proc.stderr) == (algorithm == "dtw")
    # a band within the limit, and the limit raised, are computed
    proc = run("compare", a, b, "--window", "100", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["value"] == 1000.0
    small = tmp_path / "s.txt"
    small.write_text(" ".join(map(str, range(200))))
    assert run("compare", small, small, "--algorithm", "lcs", "--max-cells", "40000").returncode == 0
    one_line_error(run("compare", small, small, "--algorithm", "lcs", "--max-cells", "39999"), "40,000 cells")
    one_line_error(run("compare", small, small, "--max-cells", "0"), "--max-cells")


def test_no_analysis_wrapper_lets_bad_parameters_reach_a_kernel():
    # In a child process: a wrapper that passed these on would crash it (or return nonsense)
    script = r"""
import numpy as np
from midstream_tui.analysis import dynamics as d, temporal as t, patterns as p, stats as s
x = np.sin(np.arange(800) * 0.3) + 0.01 * np.random.default_rng(1).normal(size=800)
calls = {
    "lyapunov lag -3": lambda: d.largest_lyapunov(x, lag=-3, dim=2),
    "lyapunov dim 0": lambda: d.largest_lyapunov(x, lag=2, dim=0),
    "lyapunov theiler -5": lambda: d.largest_lyapunov(x, lag=2, dim=2, theiler=-5),
    "lyapunov horizon -1": lambda: d.largest_lyapunov(x, lag=2, dim=2, horizon=-1),
    "lyapunov fit past the curve": lambda: d.largest_lyapunov(x, lag=2, dim=2, horizon=50, fit=(0, 10**6)),
    "lyapunov fit reversed": lambda: d.largest_lyapunov(x, lag=2, dim=2, horizon=50, fit=(-20, 3)),
    "fnn lag -2": lambda: d.select_dimension(x, -2),
    "fnn theiler -1": lambda: d.select_dimension(x, 2, theiler=-1),
    "ami bins 0": lambda: d.select_lag(x, bins=0),
    "ami max_lag -4": lambda: d.select_lag(x, max_lag=-4),
    "ami max_lag past the end": lambda: d.select_lag(x, max_lag=10**6),
    "embed lag 0": lambda: d.delay_embed(x, 2, 0),
    "classify max_points -5": lambda: d.classify_attractor(x, max_points=-5),
    "motifs exclusion -3": lambda: t.find_motifs(x, 20, exclusion=-3),
    "motifs length 2.5": lambda: t.find_motifs(x, 2.5),
    "dtw window -2": lambda: t.dtw(x[:50], x[:60], window=-2),
    "dtw window nan": lambda: t.dtw(x[:50], x[:60], window=float("nan")),
    "lcs eps -1": lambda: t.lcs(x[:50], x[:60], eps=-1),
    "edit eps nan": lambda: t.edit_distance(x[:50], x[:60], eps=float("nan")),
    "similar max_matches -1": lambda: t.find_similar(x, x[:20], 1.0, max_matches=-1),
    "rate short weights": lambda: s.rate(np.arange(10.0), np.ones(3), 9.0, 5.0),
    "loop max_period 0": lambda: p.trailing_loop(np.arange(40), max_period=0),
    "seq-rep n 0": lambda: p.seq_rep_n(np.arange(40), 0),
    "novelty n -2": lambda: p.ngram_novelty(np.arange(40), -2),
}
for name, call in calls.items():
    try:
        call()
    except ValueError as exc:
        assert "\n" not in str(exc), name
        print("refused", name)
    else:
        print("ACCEPTED", name)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-800:])
    accepted = [line for line in proc.stdout.splitlines() if not line.startswith("refused")]
    assert not accepted and proc.stdout.count("refused") == 24, proc.stdout


def test_analyze_skips_an_index_column_and_names_the_column(tmp_path):
    x = logistic(1500)
    path = tmp_path / "data.csv"
    path.write_text("i,value\n" + "\n".join(f"{i},{v}" for i, v in enumerate(x)))
    out = json.loads(run("analyze", path, "--json").stdout)
    assert out["column"] == "value"
    assert out["lyapunov"]["lyapunov"] == pytest.approx(math.log(2), rel=0.05)  # not the index's 0
    text = run("analyze", path).stdout
    assert text.splitlines()[0].startswith(f"{path}, column value: 1500 points")
    # the column by number, counted from 0, is the same column
    assert json.loads(run("analyze", path, "--column", "1", "--json").stdout)["column"] == "value"
    # jsonl objects: a time key is set aside the same way
    jsonl = tmp_path / "data.jsonl"
    jsonl.write_text("\n".join(json.dumps({"time": 0.5 * i, "v": v}) for i, v in enumerate(x)))
    out = json.loads(run("analyze", jsonl, "--json").stdout)
    assert out["column"] == "v" and out["lyapunov"]["lyapunov"] == pytest.approx(math.log(2), rel=0.05)
    # no header: a 0, 1, 2, ... first column is an index too
    bare = tmp_path / "bare.csv"
    bare.write_text("\n".join(f"{i},{v}" for i, v in enumerate(x)))
    assert json.loads(run("analyze", bare, "--json").stdout)["column"] == 1


def test_analyze_refuses_an_ambiguous_table_and_a_missing_column(tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "two.csv"
    path.write_text("time,left,right\n" + "\n".join(f"{i * 0.1},{a},{b}" for i, (a, b)
                                                     in enumerate(rng.normal(size=(400, 2)))))
    one_line_error(run("analyze", path), "left", "right", "--column")
    out = json.loads(run("analyze", path, "--column", "right", "--json").stdout)
    assert out["column"] == "right"
    one_line_error(run("analyze", path, "--column", "5"), "no such column: 5", "time, left, right")
    one_line_error(run("analyze", path, "--column", "speed"), "no such column: speed", "time, left, right")
    # the only numeric column is the index: refused, not analysed
    text = tmp_path / "words.csv"
    text.write_text("i,word\n0,a\n1,b\n2,c\n")
    one_line_error(run("analyze", text), "index")


def test_compare_tokens_by_identity_not_magnitude(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("the model repeats the same phrase")
    b.write_text("the model repeats a different phrase")
    dtw = json.loads(run("compare", a, b, "--algorithm", "dtw", "--tokens", "--json").stdout)
    assert dtw["value"] == 2  # two unequal aligned pairs (the/a, same/different), not a distance of hash values
    assert json.loads(run("compare", a, a, "--algorithm", "dtw", "--tokens", "--json").stdout)["value"] == 0
    assert run("compare", a, b, "--algorithm", "dtw", "--tokens").stdout.startswith("dtw: 2 ")
    lcs = json.loads(run("compare", a, b, "--algorithm", "lcs", "--tokens", "--json").stdout)
    assert lcs["value"] == 4
    one_line_error(run("compare", a, b, "--algorithm", "euclidean", "--tokens"), "euclidean")
    one_line_error(run("compare", a, b, "--algorithm", "lcs", "--tokens", "--eps", "0.5"), "eps")


def test_deeply_nested_json_and_lying_npy_headers_are_one_line_errors(tmp_path):
    deep = tmp_path / "deep.jsonl"
    deep.write_text("1\n2\n" + "[" * 100_000 + "]" * 100_000 + "\n")
    one_line_error(run("analyze", deep), "line 3", "nested")
    from numpy.lib import format as npformat

    huge = tmp_path / "huge.npy"  # the header claims 10^11 float64 (745 GiB); the file holds 80 bytes
    with huge.open("wb") as f:
        npformat.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (10**11,)})
        f.write(b"\0" * 80)
    one_line_error(run("analyze", huge), "header claims")
    sparse = tmp_path / "sparse.npy"  # a file as large as its header claims (sparse): still refused, by the limit
    with sparse.open("wb") as f:
        npformat.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (10**9,)})
        f.truncate(8 * 10**9 + 128)
    one_line_error(run("analyze", sparse), "too large")


@pytest.mark.parametrize("ext", [".txt", ".csv", ".jsonl"])
def test_a_huge_text_series_is_refused_before_it_is_parsed(tmp_path, ext):
    # 300 MB of text would become tens of millions of Python objects: refused in one line, at once
    big = tmp_path / f"big{ext}"
    with big.open("wb") as f:  # sparse: no disk used
        f.seek(300 * 2**20)
        f.write(b"1\n")
    proc = run("analyze", str(big))
    assert proc.returncode == 2 and "too large for a text series" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_analyze_says_why_local_maps_were_not_measured(tmp_path):
    # a dimension past what 20 neighbours can fit, and a period-2 series (two distinct values): each says why in
    # words, never a half-empty line ("dimension not settled (by dimension )") nor "too short" for 2,000 points
    series = tmp_path / "logistic.txt"
    series.write_text("\n".join(map(str, logistic(3000).tolist())))
    text = run("analyze", series, "--dim", "19").stdout
    assert "local maps    not measured: local maps: dim must be between 1 and 18, got 19" in text
    assert "by dimension )" not in text
    alternating = tmp_path / "alt.txt"
    alternating.write_text("0\n1\n" * 1000)
    text = run("analyze", alternating).stdout
    assert "periodic orbit (2 distinct values repeating every 2)" in text and "too short (2000 values)" not in text
    one_line_error(run("analyze", series, "--dt", "1e-320"), "--dt 1e-320")
    one_line_error(run("analyze", series, "--dt", "1e-305"), "--dt 1e-305: expected a number >= 1e-300")  # (inf rates)


def test_exponents_at_any_sampling_interval_read_as_numbers(tmp_path):
    # (--dt 1e-300 printed a 300-digit decimal, --dt 1e300 printed +0.0000 beside "diverging")
    series = tmp_path / "logistic.txt"
    series.write_text("\n".join(map(str, logistic(3000).tolist())))
    for dt, power in (("1e-300", "e+299"), ("1e300", "e-301")):
        text = run("analyze", series, "--dt", dt).stdout
        line = next(x for x in text.splitlines() if x.strip().startswith("lyapunov"))
        assert "+6.9" in line and power in line and len(line) < 200, line
    out = json.loads(run("analyze", series, "--dt", "1e300", "--json").stdout)
    assert 6.8e-301 < out["lyapunov"]["lyapunov"] < 7.0e-301
