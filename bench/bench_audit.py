"""Secret finding of `midstream audit` against detect-secrets alone, on a planted-secrets corpus.

The corpus (tests/data/audit/secret_corpus.py, generated per seed: 53 fake secrets of ~50 formats
and 24 clean look-alikes, one per file) is laid out three ways in a fresh git repository:

  worktree  files on disk, never added (untracked)
  index     staged with `git add`, then deleted from disk (only the index has them)
  history   committed, then removed in a later commit (only the history has them)

Per file: recall = planted secrets found / planted secrets; precision = flagged files that hold a
planted secret / flagged files. Two rows for detect-secrets (1.5, default plugins and filters):
"scan" reads what its `detect-secrets scan --all-files` reads (files on disk), "same content" runs
its engine on exactly the content MidStream reads (files, index blobs, every blob a commit added),
materialized as files.

    python bench/bench_audit.py [--seeds 5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "data" / "audit"))

import secret_corpus  # noqa: E402

from midstream_tui.audit import audit  # noqa: E402

GIT_ENV = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.invalid", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@example.invalid", "PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}


def git(root: Path, *args: str, data: bool = False):
    out = subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, env=GIT_ENV)
    return out.stdout if data else out.stdout.decode()


def layout(base: Path, where: str, items) -> Path:
    return secret_corpus.repository(base, where, items)


def materialize(root: Path, where: str, out: Path) -> Path:
    """The content MidStream reads for this layout, as plain files (for detect-secrets, which reads files)."""
    if where == "worktree":
        return root
    if where == "index":
        for entry in git(root, "ls-files", "--stage").splitlines():
            meta, path = entry.split("\t", 1)
            target = out / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(git(root, "cat-file", "blob", meta.split()[1], data=True))
        return out
    for commit in git(root, "rev-list", "--all").split():
        for path in git(root, "diff-tree", "-r", "--root", "--no-commit-id", "--name-only", "--diff-filter=AM",
                        commit).splitlines():
            target = out / commit[:12] / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(git(root, "show", f"{commit}:{path}", data=True))
    return out


def detect_secrets_files(folder: Path, strip_commit: bool) -> set[str]:
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    names = [str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and ".git" not in p.parts]
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        with default_settings():
            found = SecretsCollection()
            for name in names:
                found.scan_file(name)
    finally:
        os.chdir(cwd)
    files = {name for name in found.files if found[name]}
    return {f.split("/", 1)[1] if strip_commit else f for f in files}


def score(flagged: set[str], items) -> tuple[int, int, int]:
    planted = {i.path for i in items if i.secret}
    return len(flagged & planted), len(flagged), len(planted)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()
    totals: dict[tuple[str, str], list[int]] = {}
    seconds: dict[str, float] = {}
    for seed in range(args.seeds):
        items = secret_corpus.corpus(seed)
        for where in ("worktree", "index", "history"):
            with tempfile.TemporaryDirectory() as tmp:
                base = Path(tmp)
                root = layout(base, where, items)
                t0 = time.perf_counter()
                findings, _ignored = audit(root, ["secrets", "git-history"])
                seconds[where] = seconds.get(where, 0.0) + time.perf_counter() - t0
                rows = {"midstream audit": {f.file for f in findings if f.severity == "high"}}
                on_disk = {p for p in (str(q.relative_to(root)) for q in root.rglob("*") if q.is_file())
                           if not p.startswith(".git/")}
                rows["detect-secrets scan"] = detect_secrets_files(root, False) & on_disk if where == "worktree" \
                    else set()
                same = materialize(root, where, base / "content")
                rows["detect-secrets same content"] = detect_secrets_files(same, where == "history")
                for name, flagged in rows.items():
                    tp, n_flagged, n_planted = score(flagged, items)
                    acc = totals.setdefault((name, where), [0, 0, 0])
                    acc[0] += tp
                    acc[1] += n_flagged
                    acc[2] += n_planted
    n_items = len(secret_corpus.corpus(0))
    n_planted = sum(i.secret for i in secret_corpus.corpus(0))
    print(f"planted-secrets corpus: {args.seeds} seeds x {n_planted} secrets + {n_items - n_planted} clean look-alikes, "
          "one per file")
    print(f"{'scanner':<30} {'where':<9} {'recall':>7} {'precision':>10} {'found':>7} {'flagged':>8}")
    for (name, where), (tp, flagged, planted) in totals.items():
        precision = f"{tp / flagged:.1%}" if flagged else "-"
        print(f"{name:<30} {where:<9} {tp / planted:>7.1%} {precision:>10} {tp:>7} {flagged:>8}")
    print("midstream audit seconds per layout (secrets + git-history checks): "
          + ", ".join(f"{w} {s / args.seeds:.2f}" for w, s in seconds.items()))


if __name__ == "__main__":
    main()
