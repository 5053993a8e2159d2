"""The security audit: each check finds its planted problem and passes a clean tree; this project passes."""

import json
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CLEAN = {
    "pyproject.toml": '[project]\nname = "clean"\nversion = "1"\ndependencies = ["numpy"]\n',
    ".gitignore": ".env\n",
    "app/server.py": '''
        import hmac
        import os
        from aiohttp import web

        TOKEN_ENV = "APP_TOKEN"
        DEMO = "sim:text?requests=1&max_tokens=5&ttft=0&rate=200"  # an option named like a credential

        def _origin_ok(request):
            return request.headers.get("Origin") in (None, "http://127.0.0.1:8080")

        async def ws_handler(request):
            if not hmac.compare_digest(request.query.get("token", ""), os.environ[TOKEN_ENV]):
                raise web.HTTPUnauthorized()
            ws = web.WebSocketResponse(max_msg_size=65536)  # with a token bucket rate limit below
            await ws.prepare(request)
            return ws

        def app():
            application = web.Application(client_max_size=1 << 20)
            application.add_routes([web.get("/ws", ws_handler)])
            return application

        def serve(runner):
            return web.TCPSite(runner, "127.0.0.1", 8080)

        def load(path):
            try:
                with open(path) as f:
                    return f.read()
            except OSError as exc:
                raise RuntimeError(f"cannot read {path}") from exc
    ''',
    "README.md": "Set your key: OPENAI_API_KEY=your-api-key-here\n",
}

PLANTED = {
    "secrets": {"app/config.py": 'OPENAI_KEY = "sk-proj-Q2x7Lm9Vb4Nc8Ty3Pk6Wd1Rz5"\napi_token = "q8Zr2LmX9vTb4NcY7pKd"\n'},  # audit: ignore (planted fixture)
    "dotenv": {".env": "OPENAI_API_KEY=sk-proj-Q2x7Lm9Vb4Nc8Ty3Pk6Wd1Rz5\n", ".gitignore": "__pycache__/\n"},  # audit: ignore (planted fixture)
    "risky-code": {"app/risky.py": textwrap.dedent('''
        import subprocess, yaml, requests
        def run(cmd, text, url):
            subprocess.run(cmd, shell=True)
            eval(text)
            yaml.load(text)
            requests.get(url, verify=False)
    ''')},
    "input-limits": {"app/limits.py": textwrap.dedent('''
        from aiohttp import web
        def make():
            ws = web.WebSocketResponse()  # rate limit: done by the proxy; origin: _origin_ok upstream
            return web.Application(), ws
    ''')},
    "signaling-auth": {".env": "MIDSTREAM_SIGNALING_TOKEN=abc123\n",
                       "app/sig.py": 'from midstream_tui.servers.signaling import SignalingServer\n'
                                     'server = SignalingServer("127.0.0.1", 8765, token="hunter2hunter2")\n'},
    "tls": {"app/public.py": 'from aiohttp import web\ndef serve(runner):\n    return web.TCPSite(runner, "0.0.0.0", 8080)\n'},
    "rate-limit": {"app/flood.py": textwrap.dedent('''
        from aiohttp import web
        from midstream_tui.servers.signaling import SignalingServer
        async def handler(request):
            if request.headers.get("Origin"):
                raise web.HTTPForbidden()
            ws = web.WebSocketResponse(max_msg_size=1024)
            return ws
        open_server = SignalingServer("127.0.0.1", 1, rate=0)
    ''')},
    "error-handling": {"app/errors.py": textwrap.dedent('''
        import traceback
        from aiohttp import web
        def risky(f):
            try:
                f()
            except:
                return web.Response(text=traceback.format_exc(), status=500)
    ''')},
    "secret-logging": {"app/log.py": textwrap.dedent('''
        import logging
        def connect(api_key, user):
            logging.info("connecting with %s", api_key)
            print("user", user)
    ''')},
    "cors": {"app/cors.py": textwrap.dedent('''
        from aiohttp import web
        async def handler(request):
            resp = web.Response(text="ok")
            resp.headers["Access-Control-Allow-Origin"] = "*"
            ws = web.WebSocketResponse(max_msg_size=1024)  # rate limit: a token bucket
            return resp, ws
    ''')},
}


def write(root, files):
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def git(root, *args):
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@example.invalid", "PATH": "/usr/bin:/bin", "HOME": str(root)})


def project(tmp_path, extra=None):
    root = tmp_path / "proj"
    write(root, CLEAN)
    write(root, extra or {})
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


def audit(root, *args, env=None):
    import os

    out = subprocess.run([sys.executable, "-m", "midstream_tui", "audit", str(root), "--json", *args],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "MIDSTREAM_PYPI_URL": "http://127.0.0.1:9", **(env or {})})
    assert out.returncode in (0, 1), out.stderr
    report = json.loads(out.stdout)
    return out.returncode, [f for f in report["findings"] if f["severity"] != "info"], report


def test_a_clean_project_passes_every_check(tmp_path, monkeypatch):
    monkeypatch.delenv("MIDSTREAM_SIGNALING_TOKEN", raising=False)
    code, findings, report = audit(project(tmp_path))
    assert code == 0 and findings == [], findings
    infos = [f["message"] for f in report["findings"]]
    assert any("NOT checked" in m for m in infos)  # no index reachable: said, not assumed safe


@pytest.mark.parametrize("check", sorted(PLANTED))
def test_each_check_finds_its_planted_problem(tmp_path, check, monkeypatch):
    monkeypatch.delenv("MIDSTREAM_SIGNALING_TOKEN", raising=False)
    root = project(tmp_path, PLANTED[check])
    code, findings, _ = audit(root)
    mine = [f for f in findings if f["check"] == check]
    assert mine, findings
    others = {f["check"] for f in findings} - {check, "secrets", "git-history"}  # a planted key is also a secret
    assert not others, findings
    expected = {"secrets": 2, "risky-code": 4, "error-handling": 2, "signaling-auth": 2, "rate-limit": 1,
                "cors": 1, "input-limits": 2}.get(check, 1)
    assert len(mine) >= expected, mine
    assert code == (1 if any(f["severity"] == "high" for f in findings) else 0)


def test_git_history_finds_a_key_deleted_since(tmp_path):
    root = project(tmp_path, {"deploy.sh": "export AWS_ACCESS_KEY_ID=AKIAQ3XH7LM2VB9NC4TY\n"})  # audit: ignore (planted fixture)
    (root / "deploy.sh").unlink()
    git(root, "commit", "-q", "-am", "remove the key")
    code, findings, _ = audit(root)
    assert code == 1
    assert [f["check"] for f in findings] == ["git-history"] and "AWS Access Key" in findings[0]["message"]
    (root / ".audit-ignore").write_text("git-history deploy.sh  # rotated on 2026-11-24\n")
    code, findings, report = audit(root)
    assert code == 0 and findings == [] and report["ignored"] == 1


def test_dotenv_untracked_but_not_ignored_is_medium(tmp_path):
    root = project(tmp_path, {".gitignore": "build/\n"})
    (root / ".env").write_text("X=1\n")
    code, findings, _ = audit(root)
    assert code == 0 and [(f["check"], f["severity"]) for f in findings] == [("dotenv", "medium")]


class _Advisories(BaseHTTPRequestHandler):
    """A package index mirror answering PyPI's JSON API, with one advisory for numpy."""

    def do_GET(self):  # noqa: N802
        body = {"info": {}, "vulnerabilities": []}
        if self.path.startswith("/pypi/numpy/"):
            body["vulnerabilities"] = [{"id": "PYSEC-2099-1", "aliases": ["CVE-2099-0001"], "fixed_in": ["99.0"],
                                        "withdrawn": None, "details": "planted"}]
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_dependencies_checked_against_an_index_mirror(tmp_path):
    server = HTTPServer(("127.0.0.1", 0), _Advisories)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        root = project(tmp_path)
        code, findings, report = audit(root, env={"MIDSTREAM_PYPI_URL": f"http://127.0.0.1:{server.server_port}"})
    finally:
        server.shutdown()
    assert code == 1
    assert [(f["check"], f["severity"]) for f in findings] == [("dependencies", "high")]
    assert f"numpy {version('numpy')}" in findings[0]["message"] and "CVE-2099-0001" in findings[0]["message"]
    assert any("1 installed dependencies checked" in f["message"] for f in report["findings"])


def test_this_project_passes_its_own_audit():
    out = subprocess.run([sys.executable, "-m", "midstream_tui", "audit", str(ROOT)], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stdout
    assert " 0 high, 0 medium, 0 low" in out.stdout.splitlines()[0]
    assert "FAIL" not in out.stdout


def test_auditing_a_repository_runs_nothing_of_it(tmp_path):
    """An untrusted repository's .git/config and hooks name commands git would run while reading it."""
    ran = tmp_path / "ran"
    spy = tmp_path / "spy.sh"
    spy.write_text(f'#!/bin/sh\necho "$@" >> {ran}\n[ -f "$2" ] && cat "$2"\nexit 0\n')
    spy.chmod(0o755)
    root = project(tmp_path, {"notes.txt": "one\n", ".gitattributes": "* diff=planted\n"})
    (root / "notes.txt").write_text("two\n")
    git(root, "commit", "-q", "-am", "second")
    (root / "notes.txt").write_text("three\n")
    git(root, "add", "notes.txt")
    (root / "notes.txt").write_text("four\n")  # the index differs from the file on disk: the index is read
    for key, value in [("diff.planted.textconv", f"{spy} textconv"), ("diff.planted.command", f"{spy} diff-driver"),
                       ("diff.external", f"{spy} external-diff"), ("core.fsmonitor", str(spy)),
                       ("log.showSignature", "true"), ("gpg.program", str(spy)), ("core.pager", f"{spy} pager")]:
        git(root, "config", key, value)
    hook = root / ".git" / "hooks" / "post-index-change"
    hook.write_text(f"#!/bin/sh\necho post-index-change >> {ran}\n")
    hook.chmod(0o755)
    code, findings, report = audit(root)
    assert not ran.exists(), ran.read_text()
    assert code == 0 and findings == [], findings
    assert not any("history not checked" in f["message"] for f in report["findings"])


def _corpus():
    sys.path.insert(0, str(ROOT / "tests" / "data" / "audit"))
    try:
        import secret_corpus
    finally:
        sys.path.pop(0)
    return secret_corpus


def _layout(tmp_path, where, items):
    """The corpus in a repository's working tree (untracked), its index only, or its history only."""
    return _corpus().repository(tmp_path, where, items)


@pytest.mark.parametrize("where", ["worktree", "index", "history"])
def test_planted_secrets_are_found_and_look_alikes_are_not(tmp_path, where):
    items = _corpus().corpus(seed=7)
    root = _layout(tmp_path, where, items)
    out = subprocess.run([sys.executable, "-m", "midstream_tui", "audit", str(root), "--json", "--check", "secrets",
                          "--check", "git-history"], capture_output=True, text=True, timeout=300)
    table = subprocess.run([sys.executable, "-m", "midstream_tui", "audit", str(root), "--check", "secrets",
                            "--check", "git-history"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 1 and table.returncode == 1, out.stderr
    flagged = {f["file"] for f in json.loads(out.stdout)["findings"] if f["severity"] == "high"}
    secrets = {i.path for i in items if i.secret}
    found, false = flagged & secrets, flagged - secrets
    recall, precision = len(found) / len(secrets), len(found) / max(len(flagged), 1)
    assert recall >= 0.9 and precision >= 0.9, (sorted(secrets - flagged), sorted(false))
    assert all(f["check"] == ("git-history" if where == "history" else "secrets")
               for f in json.loads(out.stdout)["findings"] if f["severity"] == "high")
    # No secret is ever printed: not in the table, not in the JSON.
    import re

    values = {v for i in items if i.secret for v in re.findall(r"[A-Za-z0-9+/=_\-]{16,}", i.text)}
    for value in values:
        assert value not in out.stdout and value not in table.stdout


def test_what_the_secrets_check_cannot_read_in_full_is_said_and_long_lines_do_not_stall_it(tmp_path, monkeypatch):
    # A review (2026-12-06): a file over 1 MiB, one with a NUL byte, and the part of a line past 20,000 characters
    # were skipped without a word (detect-secrets reads them); and a line of 20,000 letters took 34 s to scan (the
    # name pattern tried every start against every end): six of them here took over three minutes.
    monkeypatch.delenv("MIDSTREAM_SIGNALING_TOKEN", raising=False)
    made_up = "AKIA" + "Q3XH7LM2VB9NC4TY"
    root = project(tmp_path, {"big.py": f"KEY = '{made_up}'\n" + "#" * (1 << 20), "nul.txt": f"\0{made_up}\n",
                              "min.js": "x" * 25_000 + f" {made_up}\n", "words.txt": ("a" * 20_000 + "\n") * 6})
    _code, _findings, report = audit(root, "--check", "secrets")
    said = " ".join(f["message"] for f in report["findings"] if f["severity"] == "info")
    assert "larger than 1 MiB: big.py" in said and "binary" in said and "nul.txt" in said
    assert "longer than 20,000 characters" in said and "min.js" in said


def test_an_author_and_a_sort_key_are_not_credentials(tmp_path, monkeypatch):
    # A review (2026-12-06): "auth" in author and authority, "_key" in sort_key, cache_key, partition_key and
    # primary_key made their values high findings (detect-secrets is silent on them). A key is still a key.
    monkeypatch.delenv("MIDSTREAM_SIGNALING_TOKEN", raising=False)
    names = ["author", "authority", "primary_key", "sort_key", "cache_key", "partition_key"]
    lines = "".join(f'{name} = "{value}"\n' for name, value in zip(names, [
        "Jx9qLm2Pz7Rt", "k8Vz2QwLp9Xy", "a7F3k9Lq2Zx8", "Zp3Lq8Vx2Km9", "v2Kp8Lm3Qz9X", "tenant42#2024-06"]))
    signing = "signing_key = " + '"' + "Qz8Kp3Lm9Vx2Wt7Rj4Hn6Bc1" + '"\n'
    root = project(tmp_path, {"cfg.py": lines + signing})
    _code, findings, _ = audit(root, "--check", "secrets")
    assert [f["line"] for f in findings if f["file"] == "cfg.py"] == [7], findings


def test_an_odd_tree_is_audited_without_a_crash_a_hang_or_a_word_to_the_terminal(tmp_path, monkeypatch):
    # An independent review: 5,000 nested additions in one .py ended the audit with a RecursionError (exit 1, as
    # "high findings"); a named pipe called x.py waited for ever; a file name's escape sequences reached the
    # terminal; a count of tokens, an author or a tokenizer printed was a "high" secret-logging finding
    import os

    monkeypatch.delenv("MIDSTREAM_SIGNALING_TOKEN", raising=False)
    root = project(tmp_path, {"deep.py": "x = 1" + " + 1" * 5000 + "\n",
                              # options after options: no credential given to --tokens (its own audit said so)
                              "cli.py": 'ARGS = ["compare", "--tokens", "--algorithm", "--api-key", "--verbose"]\n',
                              "report.py": """
        import logging
        log = logging.getLogger(__name__)

        def report(book, usage, tokenizer, api_key):
            print(book.author, book.authors, book.authority_level)
            print(f"prompt used {usage.prompt_tokens} tokens")
            log.info("total tokens: %d", usage.total_tokens)
            log.debug("max_tokens=%d", usage.max_tokens)
            print("vocabulary size", tokenizer.vocab_size)
            print(api_key)
        """})
    os.mkfifo(root / "pipe.py")
    (root / "\x1b]0;pwned\x07name.txt").write_text("aws_access_key_id = AKIAQ3EGRIPZ7NXWYZAB\n")  # audit: ignore
    # a name that is no UTF-8, untracked in the repository: its key went unread without a word
    with open(os.path.join(os.fsencode(root), b"new\xff.txt"), "w") as f:
        f.write("aws_access_key_id = AKIAQ3EGRIPZ7NXWYZAC\n")  # audit: ignore (test value)
    code, findings, report = audit(root)
    assert code == 1  # the key and the api_key printed, nothing else
    assert sorted((f["check"], f["file"]) for f in findings if f["check"] in ("secret-logging", "risky-code")) == [
        ("secret-logging", "report.py")]
    assert not [f for f in findings if f["file"] == "cli.py"]
    assert [f for f in findings if f["check"] == "secrets" and f["file"].startswith("new")], findings
    assert any(f["check"] == "risky-code" and f["file"] == "deep.py" and "nested too deeply" in f["message"]
               for f in report["findings"])
    text = subprocess.run([sys.executable, "-m", "midstream_tui", "audit", str(root)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "MIDSTREAM_PYPI_URL": "http://127.0.0.1:9"})
    assert text.returncode == 1 and "\x1b" not in text.stdout + text.stderr and "\\x1b]0;pwned" in text.stdout


def test_chosen_passwords_are_found_and_what_is_about_a_password_is_not(tmp_path, monkeypatch):
    # A review (2026-12-06): passwords people choose are not random, and the entropy test of other credentials let
    # these through (detect-secrets reports each). Beside them, values that name, describe or date a password.
    monkeypatch.delenv("MIDSTREAM_SIGNALING_TOKEN", raising=False)
    q = '"'
    chosen = [f"DB_PASSWORD = {q}Summer2024{q}", f"db_password = {q}hunter2hunter2{q}", f"PASSWORD = {q}P@ssw0rd!{q}",
              f"conn = {q}postgresql://admin:{'S3cr3tPass'}@db.internal:5432/app{q}",
              f"settings = {{{q}pwd{q}: {q}Tr0ub4dor{q}}}"]
    about = [f"password_label = {q}Password:{q}", f"password_hint = {q}At least 8 chars{q}",
             f"password_changed = {q}2024-01-01T10:00:00Z{q}", f"pwd_cmd = {q}pwd -P{q}",
             f"password_version = {q}v2.1.0{q}", f"password_hash_algorithm = {q}argon2id{q}",
             f"password_field = {q}user_password{q}", f"password = {q}changeme1{q}", f"password = {q}password{q}",
             f"docs = {q}postgres://user:password@localhost/db{q}", f"password = {q}{{{{ vault_db_password }}}}{q}",
             f"password = {q}abcdef123456{q}"]
    about += [f"ldap_filter = {q}(&(objectClass=person)(!(pwdReset=TRUE))){q}",
              f"const ldapPasswordComplexityCode = {q}0000052D.{q}", f"reset = {q}%VITE_RESET_PASSWORD_URL%{q}"]
    # a second review (on ten public code bases): translations of "password" and sentences about keys were
    # reported — 948 lines of one web app's locale files, before and after the change
    locale = {"Password": "Jelszó", "New Password": "Parolă nouă", "One-Time Password": "OTP驗證碼",
              "passwordTooWeak": "Heslo je příliš slabé. Musí být alespoň 6 znaků dlouhé.",
              "wayToGetApiKey": "Visit app.example > developer > api key > the green button"}
    root = project(tmp_path, {"cfg.py": "\n".join(chosen + about) + "\n",
                              "lang/hu.json": json.dumps(locale, ensure_ascii=False, indent=1) + "\n"})
    _code, findings, _ = audit(root, "--check", "secrets")
    assert sorted(f["line"] for f in findings if f["file"] == "cfg.py") == [1, 2, 3, 4, 5], findings
    assert not [f for f in findings if f["file"] == "lang/hu.json"], findings
