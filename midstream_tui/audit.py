"""``midstream audit [PATH]``: a security audit of a Python project and of MidStream's own configuration.

Eleven checks, each a function that reads the tree (and its git history, and the
environment for MidStream's own settings) and returns findings with a severity:

  secrets          keys, tokens and private keys in files (known shapes, and long high-entropy
                   strings assigned to secret-sounding names)
  git-history      the same in every line ever added to the git history
  dotenv           .env files tracked by git, or not ignored
  dependencies     known vulnerabilities of the installed distributions the project depends on
                   (PyPI's advisory data, or a mirror's at MIDSTREAM_PYPI_URL; when it cannot be
                   reached the finding says so: nothing is assumed safe)
  risky-code       eval/exec, shell=True, os.system, pickle/marshal loads, yaml.load without a
                   safe loader, tempfile.mktemp, TLS verification turned off, weak hashes
  input-limits     aiohttp applications without a request size limit, WebSocket responses
                   without a message size limit
  signaling-auth   MidStream's signaling token: missing, short or guessable
  tls              servers bound to a non-loopback address without TLS
  rate-limit       WebSocket handlers with no rate limiting in their module; MidStream's
                   signaling rate limit turned off
  error-handling   bare ``except:``, exceptions silenced with ``pass``, tracebacks sent to clients
  secret-logging   print/logging calls that pass secret-named values
  cors             ``Access-Control-Allow-Origin: *``, WebSocket handlers without an origin check

A line holding ``# audit: ignore`` (with the reason after it) is not reported; ``.audit-ignore``
at the root takes ``CHECK PATH-GLOB  # reason`` lines for what a comment cannot reach (history).
Severities: high, medium, low, info; the exit code is 1 when any finding is high.
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
import subprocess
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

SEVERITIES = ("high", "medium", "low", "info")
SKIP_DIRS = {".git", ".venv", "venv", "env", "node_modules", "__pycache__", ".pytest_cache", "build", "dist",
             ".mypy_cache", ".tox", "site-packages", ".hypothesis", "snapshots"}
TEXT_SUFFIXES = {".py", ".toml", ".cfg", ".ini", ".yaml", ".yml", ".json", ".env", ".txt", ".md", ".sh", ".js",
                 ".html", ".conf", ".properties", ".jsonl", ""}
MAX_FILE = 1 << 20
IGNORE = "audit: ignore"
SECRET_NAME = re.compile(r"(?i)(api[_-]?key|secret|token|passw(or)?d|private[_-]?key|access[_-]?key|auth)")
SECRET_SHAPES = [
    ("OpenAI API key", re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9_\-]{20,}")),
    ("AWS access key id", re.compile(r"\bAKIA[0-9A-Z]{16}\b")),
    ("GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b")),
    ("Slack token", re.compile(r"\bxox[baprs]-[A-Za-z0-9-]{10,}\b")),
    ("private key", re.compile(r"-----BEGIN (?:RSA |EC |OPENSSH |DSA )?PRIVATE KEY-----")),
    ("Google API key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b")),
]
ASSIGNED = re.compile(r"""(?i)\b([A-Za-z_]*(?:api[_-]?key|secret|token|passw(?:or)?d)[A-Za-z_]*)\s*[:=]\s*["']([^"'\s]{16,})["']""")
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]+$")  # TOKEN_ENV = "MY_APP_TOKEN" names a variable, holds no secret
PLACEHOLDER = re.compile(r"(?i)(x{4,}|your|example|changeme|dummy|placeholder|<|\$\{|\{\{|test|fake|sample)")


@dataclass(frozen=True)
class Finding:
    check: str
    severity: str
    file: str
    line: int
    message: str


def shannon_entropy(text: str) -> float:
    """Bits per character."""
    if not text:
        return 0.0
    counts = Counter(text)
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _files(root: Path, suffixes: set[str] | None = None) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info")]
        for name in filenames:
            path = Path(dirpath) / name
            if suffixes is not None and path.suffix not in suffixes and not name.startswith(".env"):
                continue
            try:
                if path.is_symlink() or path.stat().st_size > MAX_FILE:
                    continue
            except OSError:
                continue
            yield path


def _read(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:4096]:
        return None
    return data.decode("utf-8", "replace")


def _rel(root: Path, path: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _secret_in_line(line: str) -> str | None:
    """What secret a line seems to hold, or None."""
    if IGNORE in line:
        return None
    for label, shape in SECRET_SHAPES:
        m = shape.search(line)
        if m and not PLACEHOLDER.search(m.group(0)):
            return label
    m = ASSIGNED.search(line)
    if m and not PLACEHOLDER.search(m.group(2)) and not ENV_NAME.match(m.group(2)) \
            and shannon_entropy(m.group(2)) >= 3.5:
        return f"high-entropy value assigned to {m.group(1)}"
    return None


# -- the checks ------------------------------------------------------------------------------------

def check_secrets(root: Path) -> list[Finding]:
    out = []
    for path in _files(root, TEXT_SUFFIXES):
        text = _read(path)
        if text is None:
            continue
        for k, line in enumerate(text.splitlines(), 1):
            what = _secret_in_line(line)
            if what:
                out.append(Finding("secrets", "high", _rel(root, path), k, f"{what} in the file"))
    return out


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=120,
                             errors="replace")
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def check_git_history(root: Path) -> list[Finding]:
    if _git(root, "rev-parse", "--is-inside-work-tree") is None:
        return [Finding("git-history", "info", ".", 0, "not a git repository: history not checked")]
    log = _git(root, "log", "--all", "-p", "--no-color", "--unified=0", "--format=commit %H")
    if log is None:
        return [Finding("git-history", "info", ".", 0, "git log failed: history not checked")]
    out, seen = [], set()
    commit, file = "", ""
    for line in log.splitlines():
        if line.startswith("commit "):
            commit = line[7:19]
        elif line.startswith("+++ "):
            file = line[6:] if line.startswith("+++ b/") else line[4:]
        elif line.startswith("+") and not line.startswith("+++"):
            what = _secret_in_line(line[1:])
            if what and (file, what, line) not in seen:
                seen.add((file, what, line))
                out.append(Finding("git-history", "high", file, 0,
                                   f"{what} added in commit {commit} (still in the history even if deleted since)"))
    return out


def check_dotenv(root: Path) -> list[Finding]:
    out = []
    envs = [p for p in _files(root) if p.name == ".env" or (p.name.startswith(".env.") and
                                                               not p.name.endswith((".example", ".sample", ".template")))]
    in_git = _git(root, "rev-parse", "--is-inside-work-tree") is not None
    tracked = set((_git(root, "ls-files") or "").splitlines()) if in_git else set()
    for path in envs:
        rel = _rel(root, path)
        if rel in tracked:
            out.append(Finding("dotenv", "high", rel, 0, "a .env file is committed to git: its secrets are public "
                                                         "to anyone with the repository"))
        elif in_git and _git(root, "check-ignore", "-q", rel) is None:
            out.append(Finding("dotenv", "medium", rel, 0, "a .env file is not ignored by git: add it to .gitignore"))
    if in_git and not envs and _git(root, "check-ignore", "-q", ".env") is None:
        out.append(Finding("dotenv", "low", ".gitignore", 0, ".env is not in .gitignore (none exists yet)"))
    return out


def _requirements(root: Path) -> list[str]:
    names: list[str] = []
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        import tomllib

        try:
            data = tomllib.loads(pyproject.read_text("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            data = {}
        project = data.get("project", {})
        names += project.get("dependencies", [])
        for extra in project.get("optional-dependencies", {}).values():
            names += extra
    for req in root.glob("requirements*.txt"):
        names += [line for line in (req.read_text("utf-8", "replace").splitlines()) if line.strip()
                  and not line.lstrip().startswith(("#", "-"))]
    return sorted({re.split(r"[\s<>=!~\[;@]", n.strip(), maxsplit=1)[0].lower() for n in names if n.strip()})


def check_dependencies(root: Path, fetch: Callable[[str], dict] | None = None) -> list[Finding]:
    from importlib.metadata import PackageNotFoundError, version

    names = _requirements(root)
    if not names:
        return [Finding("dependencies", "info", ".", 0, "no dependencies declared (pyproject.toml, requirements*.txt)")]
    fetch = fetch or _pypi_json
    index = os.environ.get("MIDSTREAM_PYPI_URL", "https://pypi.org").rstrip("/")  # a mirror serving PyPI's JSON API
    out: list[Finding] = []
    checked = 0
    for name in names:
        try:
            installed = version(name)
        except PackageNotFoundError:
            continue
        try:
            data = fetch(f"{index}/pypi/{name}/{installed}/json")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return out + [Finding("dependencies", "info", ".", 0, "PyPI's vulnerability data could not be reached "
                                  f"({type(exc).__name__}): dependencies NOT checked for known vulnerabilities")]
        checked += 1
        for vuln in data.get("vulnerabilities") or []:
            if vuln.get("withdrawn"):
                continue
            ids = ", ".join([vuln.get("id", "?"), *vuln.get("aliases", [])][:3])
            fixed = ", ".join(vuln.get("fixed_in") or []) or "no fixed release"
            out.append(Finding("dependencies", "high", "pyproject.toml", 0,
                               f"{name} {installed}: {ids} (fixed in {fixed})"))
    out.append(Finding("dependencies", "info", ".", 0, f"{checked} installed dependencies checked against PyPI's "
                                                       "vulnerability data"))
    return out


def _pypi_json(url: str) -> dict:
    if not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise ValueError(f"refusing a plain-http package index: {url.split('/pypi/')[0]}")
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - https, or a local mirror
        return json.loads(resp.read(4 << 20))


def _call_name(node: ast.Call) -> str:
    f = node.func
    parts = []
    while isinstance(f, ast.Attribute):
        parts.append(f.attr)
        f = f.value
    if isinstance(f, ast.Name):
        parts.append(f.id)
    return ".".join(reversed(parts))


def _kw(node: ast.Call, name: str):
    return next((k.value for k in node.keywords if k.arg == name), None)


def _const(node) -> object:
    return node.value if isinstance(node, ast.Constant) else None


_PARSED: dict[Path, list[tuple[Path, str, ast.AST, list[str]]]] = {}


def _python(root: Path) -> list[tuple[Path, str, ast.AST, list[str]]]:
    """Every Python file under ``root``, parsed once per audit: (path, relative name, tree, lines)."""
    if root not in _PARSED:
        parsed = []
        for path in _files(root, {".py"}):
            text = _read(path)
            if text is None:
                continue
            try:
                tree = ast.parse(text)
            except (SyntaxError, ValueError):
                continue
            parsed.append((path, _rel(root, path), tree, text.splitlines()))
        _PARSED[root] = parsed
    return _PARSED[root]


def _calls(root: Path) -> Iterator[tuple[str, list[str], ast.Call, str]]:
    """Every call not marked ``# audit: ignore``: (file, its lines, the call, the called name)."""
    for _path, rel, tree, lines in _python(root):
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and not _ignored(lines, node):
                yield rel, lines, node, _call_name(node)


def _ignored(lines: list[str], node: ast.AST) -> bool:
    k = getattr(node, "lineno", 0)
    return 0 < k <= len(lines) and IGNORE in lines[k - 1]


RISKY_CALLS = {
    "eval": ("high", "eval() runs arbitrary code"),
    "exec": ("high", "exec() runs arbitrary code"),
    "os.system": ("high", "os.system() runs a shell command"),
    "os.popen": ("high", "os.popen() runs a shell command"),
    "pickle.loads": ("high", "pickle.loads() on untrusted data runs code"),
    "pickle.load": ("medium", "pickle.load() on untrusted data runs code"),
    "marshal.loads": ("high", "marshal.loads() on untrusted data"),
    "tempfile.mktemp": ("medium", "tempfile.mktemp() is racy: use mkstemp/NamedTemporaryFile"),
    "hashlib.md5": ("low", "MD5 is broken for security uses"),
    "hashlib.sha1": ("low", "SHA-1 is broken for security uses"),
}


def check_risky_code(root: Path) -> list[Finding]:
    out = []
    for rel, _lines, node, name in _calls(root):
        if name in RISKY_CALLS:
            sev, why = RISKY_CALLS[name]
            if name.startswith("hashlib.") and _const(_kw(node, "usedforsecurity")) is False:
                continue
            out.append(Finding("risky-code", sev, rel, node.lineno, why))
        elif name.split(".")[-1] in ("run", "call", "Popen", "check_output", "check_call") and \
                _const(_kw(node, "shell")) is True:
            out.append(Finding("risky-code", "high", rel, node.lineno, f"{name}(shell=True) runs a shell command"))
        elif name in ("yaml.load", "yaml.load_all") and not any(
                "Safe" in ast.unparse(a) for a in [*node.args[1:], *(k.value for k in node.keywords)]):
            out.append(Finding("risky-code", "high", rel, node.lineno, "yaml.load without a safe loader"))
        elif _const(_kw(node, "verify")) is False:
            out.append(Finding("risky-code", "high", rel, node.lineno, "TLS certificate verification turned off"))
        elif name.endswith("_create_unverified_context"):
            out.append(Finding("risky-code", "high", rel, node.lineno, "an unverified TLS context"))
    return out


def check_input_limits(root: Path) -> list[Finding]:
    out = []
    for rel, lines, node, name in _calls(root):
        if name.endswith("web.Application") or name == "Application" and "aiohttp" in "\n".join(lines[:40]):
            if _kw(node, "client_max_size") is None:
                out.append(Finding("input-limits", "medium", rel, node.lineno,
                                   "aiohttp Application without client_max_size: request bodies default to "
                                   "1 MiB; set the limit the endpoints need, deliberately"))
        elif name.endswith("WebSocketResponse") and _kw(node, "max_msg_size") is None:
            out.append(Finding("input-limits", "medium", rel, node.lineno,
                               "WebSocketResponse without max_msg_size: a client can send 4 MiB messages"))
        elif name.endswith("WebSocketResponse") and _const(_kw(node, "max_msg_size")) == 0:
            out.append(Finding("input-limits", "high", rel, node.lineno, "WebSocket message size unlimited"))
    return out


def check_signaling_auth(root: Path, env: dict[str, str] | None = None) -> list[Finding]:
    env = dict(os.environ) if env is None else env
    dotenv = root / ".env"
    if "MIDSTREAM_SIGNALING_TOKEN" not in env and dotenv.is_file():
        from dotenv import dotenv_values

        env = {**{k: v for k, v in dotenv_values(dotenv).items() if v is not None}, **env}
    token = env.get("MIDSTREAM_SIGNALING_TOKEN")
    out = []
    if token is None:
        out.append(Finding("signaling-auth", "info", ".", 0, "MIDSTREAM_SIGNALING_TOKEN not set: `midstream "
                           "signaling` will serve loopback only and refuse other addresses"))
    elif len(token) < 16 or shannon_entropy(token) < 3.0:
        out.append(Finding("signaling-auth", "high", ".env" if dotenv.is_file() else "environment", 0,
                           f"MIDSTREAM_SIGNALING_TOKEN is weak ({len(token)} characters, "
                           f"{shannon_entropy(token):.1f} bits/char): use 16+ random characters"))
    for rel, _lines, node, name in _calls(root):
        if name.endswith("SignalingServer"):
            tok = _kw(node, "token")
            if isinstance(tok, ast.Constant) and isinstance(tok.value, str):
                out.append(Finding("signaling-auth", "high", rel, node.lineno,
                                   "a signaling token written in the code: read it from the environment"))
    return out


LOOPBACK = ("127.0.0.1", "localhost", "::1")
RATE_LIMITED = re.compile(r"(?i)rate[_ ]?limit|token bucket|_take_token|throttl")
CHECKS_ORIGIN = re.compile(r"""(?i)headers(\.get\(|\[)\s*["']origin["']|_origin_ok|check_origin|same_origin""")


def _module_says(lines: list[str], pattern: re.Pattern) -> bool:
    return any(pattern.search(line) for line in lines)


def check_tls(root: Path) -> list[Finding]:
    out = []
    for rel, _lines, node, full in _calls(root):
        name = full.split(".")[-1]
        host = _kw(node, "host")
        if host is None and name in ("TCPSite", "run_app", "SignalingServer", "OpenAIEmulator") and \
                len(node.args) >= (2 if name == "TCPSite" else 1):
            host = node.args[1] if name == "TCPSite" else node.args[0]
        value = _const(host)
        if isinstance(value, str) and value not in LOOPBACK and value != "" and \
                name in ("TCPSite", "run_app", "SignalingServer", "OpenAIEmulator", "Server", "serve", "run") and \
                _kw(node, "ssl_context") is None and _kw(node, "ssl") is None:
            out.append(Finding("tls", "high" if value in ("0.0.0.0", "::") else "medium", rel, node.lineno,
                               f"{name} binds {value} without TLS: traffic and tokens cross the network in clear"))
    return out


def check_rate_limit(root: Path) -> list[Finding]:
    out = []
    for rel, lines, node, name in _calls(root):
        if name.endswith("WebSocketResponse") and not _module_says(lines, RATE_LIMITED):
            out.append(Finding("rate-limit", "medium", rel, node.lineno,
                               "a WebSocket handler with no rate limiting in its module: one client can flood it"))
        elif name.endswith("SignalingServer"):
            for arg in ("rate", "burst"):
                value = _const(_kw(node, arg))
                if isinstance(value, (int, float)) and value <= 0:
                    out.append(Finding("rate-limit", "high", rel, node.lineno, f"signaling {arg}={value}: "
                                                                                "rate limiting off"))
    return out


def check_error_handling(root: Path) -> list[Finding]:
    out = []
    for _path, rel, tree, lines in _python(root):
        for node in ast.walk(tree):
            if isinstance(node, ast.ExceptHandler) and not _ignored(lines, node):
                if node.type is None:
                    out.append(Finding("error-handling", "medium", rel, node.lineno,
                                       "bare except: also catches KeyboardInterrupt and SystemExit"))
                elif len(node.body) == 1 and isinstance(node.body[0], ast.Pass) and \
                        ast.unparse(node.type) in ("Exception", "BaseException"):
                    out.append(Finding("error-handling", "low", rel, node.lineno,
                                       f"except {ast.unparse(node.type)}: pass silences every error"))
            elif isinstance(node, ast.Call) and not _ignored(lines, node):
                name = _call_name(node)
                if name.split(".")[-1] in ("Response", "json_response", "HTTPInternalServerError") and \
                        "traceback" in ast.unparse(node):
                    out.append(Finding("error-handling", "high", rel, node.lineno,
                                       "a traceback sent to the client: it leaks code paths and values"))
    return out


def check_secret_logging(root: Path) -> list[Finding]:
    out = []
    log_calls = ("print", "debug", "info", "warning", "warn", "error", "exception", "critical", "log")
    for rel, _lines, node, name in _calls(root):
        if name.split(".")[-1] not in log_calls or (name.count(".") and not re.search(r"(?i)log", name)
                                                    and name != "print"):
            continue
        for arg in [*node.args, *(k.value for k in node.keywords if k.arg not in ("file", "sep", "end"))]:
            for sub in ast.walk(arg):
                ident = sub.id if isinstance(sub, ast.Name) else sub.attr if isinstance(sub, ast.Attribute) else ""
                if ident and SECRET_NAME.search(ident) and not re.search(r"(?i)(_env|_name|_len|count|path|file)$",
                                                                        ident):
                    out.append(Finding("secret-logging", "high", rel, node.lineno,
                                       f"{name}() is given {ident}: a secret would be written to the log"))
                    break
            else:
                continue
            break
    return out


def check_cors(root: Path) -> list[Finding]:
    out = []
    for path in _files(root, {".py", ".conf", ".toml", ".yaml", ".yml", ".json"}):
        text = _read(path)
        if text is None:
            continue
        for k, line in enumerate(text.splitlines(), 1):
            if IGNORE not in line and re.search(r"""(?i)access-control-allow-origin["']?\s*[:=,]\s*["']\*""", line):
                out.append(Finding("cors", "medium", _rel(root, path), k,
                                   "Access-Control-Allow-Origin: * lets any web page call this server"))
            if IGNORE not in line and re.search(r"""(?i)allow_origins\s*=\s*\[\s*["']\*["']""", line):
                out.append(Finding("cors", "medium", _rel(root, path), k, "CORS allows every origin"))
    for rel, lines, node, name in _calls(root):
        if name.endswith("WebSocketResponse") and not _module_says(lines, CHECKS_ORIGIN):
            out.append(Finding("cors", "low", rel, node.lineno,
                               "a WebSocket handler that never looks at Origin: browsers send cookies and "
                               "credentials cross-site to WebSockets"))
    return out


CHECKS: dict[str, Callable[[Path], list[Finding]]] = {
    "secrets": check_secrets, "git-history": check_git_history, "dotenv": check_dotenv,
    "dependencies": check_dependencies, "risky-code": check_risky_code, "input-limits": check_input_limits,
    "signaling-auth": check_signaling_auth, "tls": check_tls, "rate-limit": check_rate_limit,
    "error-handling": check_error_handling, "secret-logging": check_secret_logging, "cors": check_cors,
}


IGNORE_FILE = ".audit-ignore"


def load_ignores(root: Path) -> list[tuple[str, str]]:
    """``.audit-ignore``: lines ``CHECK PATH-GLOB  # why``, for what an inline comment cannot reach
    (a line in the git history, a whole generated file)."""
    path = root / IGNORE_FILE
    if not path.is_file():
        return []
    rules = []
    for line in path.read_text("utf-8", "replace").splitlines():
        body = line.split("#", 1)[0].split()
        if len(body) >= 2:
            rules.append((body[0], body[1]))
    return rules


def audit(root: Path, only: list[str] | None = None) -> tuple[list[Finding], int]:
    """Every finding (or those of the checks in ``only``), and how many ``.audit-ignore`` dropped."""
    from fnmatch import fnmatch

    _PARSED.pop(root, None)  # read the tree as it is now
    findings: list[Finding] = []
    for name, check in CHECKS.items():
        if only and name not in only:
            continue
        findings.extend(check(root))
    ignores = load_ignores(root)
    kept = [f for f in findings if not any((c == "*" or c == f.check) and fnmatch(f.file, glob)
                                           for c, glob in ignores)]
    order = {s: k for k, s in enumerate(SEVERITIES)}
    return sorted(kept, key=lambda f: (order[f.severity], f.check, f.file, f.line)), len(findings) - len(kept)


def render(findings: list[Finding], root: Path, ignored: int = 0) -> str:
    from .redact import redact

    counts = Counter(f.severity for f in findings)
    lines = [f"MidStream security audit of {root}: " + ", ".join(f"{counts.get(s, 0)} {s}" for s in SEVERITIES)
             + (f" ({ignored} ignored by {IGNORE_FILE})" if ignored else "")]
    by_check = Counter(f.check for f in findings if f.severity != "info")
    for name in CHECKS:
        lines.append(f"  {'FAIL' if by_check.get(name) else 'pass'}  {name:<15} "
                     f"{by_check.get(name, 0)} finding(s)" if by_check.get(name) else f"  pass  {name}")
    lines.append("")
    width = max([len(f"{f.file}:{f.line}") for f in findings] + [10])
    for f in findings:
        where = f"{f.file}:{f.line}" if f.line else f.file
        lines.append(f"{f.severity:<7} {f.check:<15} {where:<{width}}  {redact(f.message)}")
    return "\n".join(lines) + "\n"


def to_json(findings: list[Finding], root: Path, ignored: int = 0) -> str:
    counts = Counter(f.severity for f in findings)
    return json.dumps({"root": str(root), "counts": {s: counts.get(s, 0) for s in SEVERITIES}, "ignored": ignored,
                       "checks": list(CHECKS), "findings": [asdict(f) for f in findings]}, indent=None)
