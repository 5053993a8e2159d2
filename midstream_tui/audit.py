"""``midstream audit [PATH]``: a security audit of a Python project and of MidStream's own configuration.

Eleven checks, each a function that reads the tree (and its git history, and the
environment for MidStream's own settings) and returns findings with a severity:

  secrets          keys, tokens, private keys and passwords (detect-secrets' plugins and filters,
                   a few formats it lacks, and MidStream's verdict on generic values) in every file
                   git would take (tracked, or untracked and not ignored; every file outside git)
                   and in what the git index holds when it differs from the file on disk
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

Nothing of the audited folder is ever run: git is called with textconv, external diff drivers,
fsmonitor, hooks, signature checking and pagers turned off, and never writes the index.
Findings name the kind of secret and where it is, never its value.

A line holding ``# audit: ignore`` (or detect-secrets' ``pragma: allowlist secret``) is not reported; ``.audit-ignore``
at the root takes ``CHECK PATH-GLOB  # reason`` lines for what a comment cannot reach (history).
Severities: high, medium, low, info; the exit code is 1 when any finding is high.
"""

from __future__ import annotations

import ast
import contextlib
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
MAX_FILE = 1 << 20
IGNORE = "audit: ignore"
SECRET_NAME = re.compile(r"(?i)(api[_-]?key|secret|token|passw(or)?d|private[_-]?key|access[_-]?key|auth)")

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
            try:  # (a named pipe or a device is no file to read: reading a pipe named x.py waited for ever)
                if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_FILE:
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


# -- secrets: detect-secrets' plugins and filters, and what is MidStream's own ------------------------
#
# The detectors are detect-secrets' plugins, used as a library, plus the few token formats it has no
# plugin for. What is MidStream's own is around them: which files, index entries and history lines
# are read (and that nothing from the audited repository is ever run), the verdict on generic hits
# (a value must look like a credential, not a placeholder, a reference, a word or a hash), the
# ``# audit: ignore`` marker, and that no finding ever carries the secret itself.

# Token formats detect-secrets 1.5 has no plugin for: (label, pattern). Kept short on purpose.
OWN_FORMATS = [
    ("OpenAI API key", re.compile(r"\bsk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,}|[A-Za-z0-9]{48}\b)")),
    ("Anthropic API key", re.compile(r"\bsk-ant-(?:api|admin)\d\d-[A-Za-z0-9_\-]{80,}")),
    ("GitHub fine-grained token", re.compile(r"\bgithub_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}\b")),
    ("Hugging Face token", re.compile(r"\b(?:hf|api_org)_[A-Za-z]{34}\b")),
    ("npm token", re.compile(r"\bnpm_[A-Za-z0-9]{36}\b")),
    ("Google API key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}(?![0-9A-Za-z_\-])")),
    ("Azure shared access key", re.compile(r"(?i)\bSharedAccessKey=([A-Za-z0-9+/]{42,43}=)")),
]
# Generic shapes: a value is reported only when it looks like a credential (see _credential_like).
URL_CREDENTIALS = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]{1,20}://([^\s:/@{}$<>\"']*):([^\s@/{}<>\"']+)@[\w.\-\[]")
BEARER = re.compile(r"(?i)\bbearer\s+([A-Za-z0-9._~+/\-]{16,}=*)")
CURL_USER = re.compile(r"\bcurl\b.*?\s(?:-u|--user)[\s=]+[\"']?[^\s:\"']*:([^\s\"'@]+)")
BASIC = re.compile(r"(?i)\bbasic\s+([A-Za-z0-9+/]{12,}={0,2})")
NAMED_VALUE = re.compile(  # NAME = value, NAME: value, "name": "value", define('NAME', 'value'), <name>value</name>
    # (a name begins where a word does, and is at most 64 characters either side of its keyword: unanchored and
    # unbounded, a line of 20,000 letters took 34 s, every start tried against every end)
    r"""(?i)(?<![\w.\-])([\w.\-]{0,64}(?:token|secret|passw(?:or)?d|pwd|api[_.\-]?key|apikey|access[_.\-]?key|auth"""
    r"""|credential|private[_.\-]?key|conn(?:ection)?[_.\-]?str(?:ing)?|[_.\-]key|(?-i:[a-z0-9]Key))[\w.\-]{0,64})"""
    r"""["'\]]{0,2}"""
    r"""(\s*(?::=|=>|[:=,]|>)\s*)(["'`]?)([^\s"'`,;<>]{8,})\3""")
NOT_SECRET_NAME = re.compile(r"(?i)public|publishable|(?:^|[_.\-])(?:id|url|uri|name|file|path|type|header|field|len(?:gth)?"
                             r"|size|count|prefix|env|var|hash|digest|format|mode|algorithm|label|policy|rotation"
                             r"|hint|prompt|message|msg|error|title|help|placeholder|cmd|command|version|at|date"
                             r"|changed|expires|expiry|ttl|days|re|regex|pattern|widget|template|param|strength|code"
                             r"|reset|status|time)$"
                             # counts of an LLM's tokens (max_tokens=500, completion_tokens: 12), not credentials
                             r"|(?:^|[_.\-])(?:max|min|completion|prompt|output|input|total|reasoning|cached)"
                             r"(?:[_.\-]?(?:completion|output|new))?[_.\-]?tokens$"
                             r"|(?-i:[a-z](?:Id|Url|Name|File|Path|Type|Hash|Code|Status|Reset|Time|Msg|Message|Hint"
                             r"|Label|Prompt|Error|Policy)$)"
                             # "auth" in an author's name, "_key" in a data structure's (a review, 2026-12-06: rated
                             # high; detect-secrets is silent on them)
                             r"|(?:^|[_.\-])author(?:s|ity|ities|ed|ship)?(?:[_.\-]|$)"
                             r"|(?:^|[_.\-])(?:sort|cache|partition|primary|foreign|row|group|lookup|dict|map|routing"
                             r"|shard|composite|dedupe?|idempotency|index|unique|natural|surrogate|cluster(?:ing)?"
                             r"|range|hotkey|object)[_.\-]?keys?$")
# Files whose values stand unquoted (NAME=value): there a bare value after a secret name is a value,
# while in code it is an expression.
CONFIG_SUFFIXES = {".env", ".ini", ".cfg", ".conf", ".cnf", ".properties", ".toml", ".yaml", ".yml", ".sh", ".bash",
                   ".zsh", ".txt", ".md", ".rst", ".npmrc", ".pypirc", ".netrc", ".http", ".rest", ".tfvars", ""}
PLACEHOLDER = re.compile(r"(?i)example|x{4,}|\*{3,}|\.{3}|…|<[^>]*>|\$\{|\{[^{}]*\}|%\(|%[A-Z_][A-Z0-9_]*%|^\$\w"
                         r"|(.)\1{5,}"
                         r"|(?<![a-z])(?:your|sample|dummy|fake|placeholder|changeme|change[-_]me|redacted|insert"
                         r"|replace|todo|fixme|test|here)(?![a-z])")
_WORD = r"(?:[A-Z]?[a-z]+(?:[A-Z][a-z]{2,})*|[A-Z]{2,})[0-9]{0,2}"  # word, camelCase, CAPS, word2
WORDS = re.compile(rf"{_WORD}(?:[-_./: ]{_WORD})*")  # names and phrases: api-key-here, MY_APP_TOKEN, user:cache:v2
HASHY = re.compile(r"(?i)^(?:sha(?:1|224|256|384|512)[-:]|md5[-:]|\$2[aby]?\$|\$argon2|\$pbkdf2|\$6\$|\$5\$)")
NOT_A_VALUE = re.compile(r"^(?:\w+://|/|\./|~/)|^[A-Za-z_][\w.]*[(\[].*[)\]]$|^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+$"
                         r"|^--[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")  # (the last: a command-line option after another,
                         # "--tokens", "--algorithm": its own audit called that a credential given to --tokens)
TOKEN_CHARS = re.compile(r"[A-Za-z0-9_\-+/=.]*")
GENERIC = {"Secret Keyword", "Base64 High Entropy String", "Hex High Entropy String", "Basic Auth Credentials"}
SKIPPED_PLUGINS = {"IPPublicDetector"}  # an address is not a secret


PHRASE = re.compile(r"[^\W\d_]+(?:[\s\-'’.,:;!?/()]+[^\W\d_]+)*[\s.,:;!?)]*")
"""Words of any script and what separates them: a phrase or a translated word when it has a space or a letter
outside A-Z ("Jelszó változtatása", "Parolă", "OTP驗證碼"): a review found 940 such lines of a web app's
translations reported as credentials."""


def _words(value: str) -> bool:
    """A word or a phrase, in any language (``WORDS``, ``PHRASE``), not a value chosen or generated as a secret."""
    return bool(WORDS.fullmatch(value.strip(":?!. ")) or PHRASE.fullmatch(value)
                and (not value.isascii() or re.search(r"\s", value))
                or len(re.findall(r"\s+", value.strip())) >= 2)  # prose: "Mora biti dugačka najmanje 6 znaků"


def _credential_like(value: str, min_len: int = 8) -> bool:
    """Whether a value found next to a secret-sounding name (or in a URL, after Bearer) looks like a real
    credential: not a placeholder, reference, word, path or hash, and random enough."""
    if len(value) < min_len or PLACEHOLDER.search(value) or _words(value) or HASHY.search(value) \
            or NOT_A_VALUE.search(value):
        return False
    if sum(ord(b) - ord(a) != 1 for a, b in zip(value, value[1:])) <= len(value) // 4:
        return False  # runs of a sequence: abcdefgh12345678
    classes = sum(bool(re.search(p, value)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^A-Za-z0-9]"))
    entropy = shannon_entropy(value)
    return (classes >= 2 and entropy >= 3.0) or (len(value) >= 20 and entropy >= 3.5)


PASSWORD_SLOT = re.compile(r"""(?i)(?<![\w.\-])([\w.\-]{0,24}(?:passw(?:or)?d|pwd|passphrase)[\w.\-]{0,24})"""
                           r"""["'\]]{0,2}\s*(?::=|=>|[:=])\s*["'`]?$""")
"""What stands right before a value given as a password (``DB_PASSWORD = "``, ``"password": "``, ``pwd=``)."""


NOT_A_PASSWORD = re.compile(r"\s|^\d{4}-\d\d-\d\d|^v?\d+(?:\.\d+)+(?:[-+.]\w+)?$")
"""A hint or a command (spaces: passphrases are not told from them), a date or time, a version number."""


ASSIGNED_TO = re.compile(r"""(?<![\w.\-])([\w.\-]{1,64})["'\]]{0,2}\s*(?::=|=>|[:=])\s*["'`]?$""")
"""The name a value is given to, right before it."""


def _password_slot(before: str) -> bool:
    """Whether ``before`` ends where a password's value begins, after a name that is not a password's label,
    length, hint, date... (``NOT_SECRET_NAME``)."""
    m = PASSWORD_SLOT.search(before)
    return bool(m) and not NOT_SECRET_NAME.search(m.group(1).strip(".-_"))


def _password_like(value: str) -> bool:
    """Whether a value in a password's place (after a password's name, or in a URL's login) is one: people choose
    passwords, so they are often not random (``Summer2024``, ``P@ssw0rd!``, ``hunter2hunter2``), and the entropy
    test of other credentials let them through (a review, 2026-12-06: detect-secrets reported them, the audit did
    not). Still not: placeholders, words and phrases (``password``, ``Password:``), references, hashes, runs of a
    sequence, a value of one kind of character."""
    if len(value) < 6 or PLACEHOLDER.search(value) or _words(value) or HASHY.search(value) \
            or NOT_A_VALUE.search(value) or NOT_A_PASSWORD.search(value):
        return False
    if sum(ord(b) - ord(a) != 1 for a, b in zip(value, value[1:])) <= len(value) // 4:
        return False
    # a value in a filter or an expression: pwdReset=TRUE)), (objectClass=person) — a chosen password may have an
    # unbalanced bracket, and is then missed
    if value.rstrip(")]}.,;:").lower() in ("true", "false", "null", "none", "yes", "no") \
            or value.count("(") != value.count(")"):
        return False
    classes = sum(bool(re.search(p, value)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^A-Za-z0-9]"))
    return classes >= 2 and len(set(value)) >= 4


class _Context:
    """What detect-secrets' allowlist filter reads of a line's neighbourhood."""

    def __init__(self, previous_line: str):
        self.previous_line = previous_line


class SecretScanner:
    """Finds secrets in lines of text with detect-secrets' plugins and filters, MidStream's few own formats,
    and MidStream's verdict on generic hits. Reports labels, never values."""

    def __init__(self) -> None:
        from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
        from detect_secrets.filters import allowlist, heuristic
        from detect_secrets.plugins.keyword import REGEX_BY_FILETYPE
        from detect_secrets.util.filetype import FileType

        self.plugins = [cls() for cls in get_mapping_from_secret_type_to_class().values()
                        if cls.__name__ not in SKIPPED_PLUGINS]
        self.heuristic, self.allowlist = heuristic, allowlist
        self.config_keywords = REGEX_BY_FILETYPE[FileType.CONFIG]

    # - file level
    def skips(self, filename: str) -> bool:
        h = self.heuristic
        return h.is_non_text_file(filename) or h.is_lock_file(filename) or h.is_swagger_file(filename)

    @staticmethod
    def config_like(filename: str) -> bool:
        name = filename.rsplit("/", 1)[-1].lower()
        suffix = "." + name.rsplit(".", 1)[-1] if "." in name.lstrip(".") else ("" if not name.startswith(".") else name)
        return name.startswith(".env") or name.endswith(".env") or suffix in CONFIG_SUFFIXES \
            or name in ("dockerfile", ".git-credentials")

    # - line level
    def scan_text(self, filename: str, text: str) -> list[tuple[int, str]]:
        """(line number, label) of each line of ``text`` that holds a secret."""
        if self.skips(filename):
            return []
        lines = text.splitlines()
        out = []
        for k, line in enumerate(lines):
            label = self.scan_line(filename, line, lines[k - 1] if k else "", lines[k + 1] if k + 1 < len(lines) else "")
            if label:
                out.append((k + 1, label))
        return out

    def scan_line(self, filename: str, line: str, previous: str = "", following: str = "") -> str | None:
        """The label of the secret ``line`` holds, or None. ``previous``/``following`` are its neighbours."""
        if IGNORE in line or len(line) < 8:
            return None
        line = line[:LONG_LINE]
        hits = self._hits(filename, line)
        if not hits:
            return None
        if self.allowlist.is_line_allowlisted(filename, line, _Context(previous)):
            return None
        if self.heuristic.is_indirect_reference(line):  # secret = get_secret(): keep only literal values
            hits = [h for h in hits if not h[2] or f'"{h[1]}' in line or f"'{h[1]}" in line]
        for label, value, generic in sorted(hits, key=lambda h: h[2]):  # known formats first
            if self._kept(label, value, generic, line, following):
                return label if not generic else self._generic_label(label)
        return None

    def _hits(self, filename: str, line: str) -> list[tuple[str, str, bool]]:
        """(label, value, generic) for every candidate in the line."""
        hits = []
        for plugin in self.plugins:
            if plugin.secret_type == "Secret Keyword" and self.config_like(filename):
                values = set(plugin.analyze_string(line, denylist_regex_to_group=self.config_keywords))
            else:
                values = {s.secret_value for s in plugin.analyze_line(filename=filename, line=line)}
            hits += [(plugin.secret_type, v, plugin.secret_type in GENERIC) for v in values if v]
        for label, shape in OWN_FORMATS:
            for m in shape.finditer(line):
                hits.append((label, m.group(m.lastindex or 0), False))
        for m in URL_CREDENTIALS.finditer(line):
            hits.append(("Basic Auth Credentials", m.group(2), True))
        for m in BEARER.finditer(line):
            hits.append(("bearer token", m.group(1), True))
        for m in CURL_USER.finditer(line):
            hits.append(("Basic Auth Credentials", m.group(1), True))
        for m in BASIC.finditer(line):
            hits.append(("basic auth header", m.group(1), True))
        config = self.config_like(filename)
        for m in NAMED_VALUE.finditer(line):
            name, sep, quote, value = m.groups()
            value = re.sub(r"(?:\\[nrt])+$", "", value)  # "NAME=value\n" in a string literal
            quoted_name = m.start(1) > 0 and line[m.start(1) - 1] in "'\"" and line[m.end(1)] in "'\""
            if NOT_SECRET_NAME.search(name.strip(".-_")) or "," in sep and not (quote and quoted_name) \
                    or not quote and not config and re.search(r"[()\[\]{}]", value):
                continue
            # In code a bare value is an expression, unless it sits in a string: NAME=value; or NAME=value"
            bare_ok = config or sep == "=" and re.match(r"[;\"'&]|$", line[m.end():])
            if quote or bare_ok:
                hits.append((f"a credential assigned to {name[:40]}", value, True))
        return hits

    def _kept(self, label: str, value: str, generic: bool, line: str, following: str) -> bool:
        h = self.heuristic
        if h.is_templated_secret(value) or h.is_sequential_string(value) or h.is_potential_uuid(value) \
                or h.is_not_alphanumeric_string(value) or (generic and h.is_prefixed_with_dollar_sign(value)):
            return False
        if label == "Private Key":  # a key block, not a mention of one: key material follows the header
            return bool(re.search(r"[A-Za-z0-9+/=]{40,}|^(?:Proc-Type|Version|Comment):", following.strip())
                        or re.search(r"KEY[A-Z ]*-----(?:\\n|\s)*[A-Za-z0-9+/=]{40,}", line))
        if not generic:  # a known format: only placeholders are dropped (ghp_xxxx..., AKIA...EXAMPLE)
            start = max(line.find(value), 0)
            token = line[start:start + len(value)] + TOKEN_CHARS.match(line, start + len(value)).group(0)
            return not PLACEHOLDER.search(re.sub(r"^[a-z]{2,8}[_\-]", "", token))
        if h.is_likely_id_string(value, line):
            return False
        if label == "basic auth header":
            import base64
            import binascii

            try:
                user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
            return bool(_) and _credential_like(password, 6)
        if label in ("Base64 High Entropy String", "Hex High Entropy String"):
            return bool(SECRET_NAME.search(line[:line.find(value)])) and _credential_like(value)
        before = line[max(0, line.find(value) - 64):line.find(value)]
        named = ASSIGNED_TO.search(before)
        if label == "Secret Keyword" and named and NOT_SECRET_NAME.search(named.group(1).strip(".-_")):
            return False  # password_hint = "At least 8 characters", password_hash_algorithm: argon2id
        if label == "Basic Auth Credentials" or _password_slot(before):
            return _password_like(value) or _credential_like(value, 6 if label == "Basic Auth Credentials" else 8)
        return _credential_like(value, 6 if label == "Basic Auth Credentials" else 8)

    @staticmethod
    def _generic_label(label: str) -> str:
        return {"Secret Keyword": "a credential assigned to a secret-sounding name",
                "Base64 High Entropy String": "a high-entropy value assigned to a secret-sounding name",
                "Hex High Entropy String": "a high-entropy value assigned to a secret-sounding name",
                "Basic Auth Credentials": "a password in a URL"}.get(label, label)


_SCANNER: SecretScanner | None = None


def scanner() -> SecretScanner:
    global _SCANNER
    if _SCANNER is None:
        _SCANNER = SecretScanner()
    return _SCANNER


# -- git, without running anything of the audited repository ---------------------------------------
#
# A repository's own .git/config can name commands git runs while reading it: diff textconv filters
# and external diff drivers (git log -p), an fsmonitor hook (anything that refreshes the index), a
# GPG program (log.showSignature), hooks (post-index-change), a pager. The audit reads an untrusted
# folder, so every git call turns these off and never writes the index.

GIT_SAFE = ["-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null", "-c", "log.showSignature=false",
            "-c", "diff.external=", "-c", "core.pager=cat", "-c", "core.quotePath=false", "-c", "gc.auto=0",
            "-c", "core.untrackedCache=false", "--no-pager"]


def _git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_PAGER="cat", GIT_EXTERNAL_DIFF="", GIT_OPTIONAL_LOCKS="0", GIT_TERMINAL_PROMPT="0")
    return env


def _git(root: Path, *args: str, binary: bool = False) -> str | bytes | None:
    try:
        out = subprocess.run(["git", "-C", str(root), *GIT_SAFE, *args], capture_output=True, timeout=120,
                             env=_git_env(), stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return out.stdout if binary else out.stdout.decode("utf-8", "replace")


def _in_git(root: Path) -> bool:
    return (_git(root, "rev-parse", "--is-inside-work-tree") or "").strip() == "true"


def _is_venv(path: Path) -> bool:
    return (path / "pyvenv.cfg").is_file()


def _secret_files(root: Path) -> Iterator[tuple[str, Path]]:
    """Every file the secrets check reads: in a git repository, what is tracked or could be (untracked and
    not ignored), plus ignored .env files; elsewhere every file but caches and virtual environments."""
    if _in_git(root):
        listing = _git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard", binary=True)
        ignored_envs = _git(root, "ls-files", "-z", "--others", "--ignored", "--exclude-standard", binary=True) or b""
        if listing is not None:
            # (names as the file system has them: one that is no UTF-8, decoded with "replace", named no file,
            # and its key went unread without a word)
            names = {os.fsdecode(n) for n in listing.split(b"\0") if n}
            names |= {n for n in (os.fsdecode(n) for n in ignored_envs.split(b"\0") if n)
                      if n.rsplit("/", 1)[-1].startswith(".env") and not any(
                          part in SKIP_DIRS for part in n.split("/")[:-1])}
            for rel in sorted(names):
                yield rel, root / rel
            return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in (".git", "node_modules", "__pycache__", ".pytest_cache",
                                                        ".mypy_cache", ".tox", ".hypothesis")
                       and not d.endswith(".egg-info") and not _is_venv(Path(dirpath) / d)]
        for name in filenames:
            path = Path(dirpath) / name
            yield _rel(root, path), path


def _git_blob_id(data: bytes) -> str:
    import hashlib

    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def _read_file(path: Path) -> bytes | None:
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_FILE:
            return None
        return path.read_bytes()
    except OSError:
        return None


def _text(data: bytes | None) -> str | None:
    if data is None or b"\0" in data[:4096]:
        return None
    return data.decode("utf-8", "replace")


def _staged(root: Path) -> Iterator[tuple[str, str]]:
    """(path, text) of every index entry whose content is not the file on disk (staged, then changed or
    deleted): read from git's object store, so no clean/smudge filter runs."""
    listing = _git(root, "ls-files", "-z", "--stage", binary=True)
    if not listing:
        return
    wanted = []
    for entry in listing.split(b"\0"):
        if not entry or b"\t" not in entry:
            continue
        meta, name = entry.split(b"\t", 1)
        mode, blob, _stage = meta.split()
        rel = os.fsdecode(name)  # (as the file system has it: see _secret_files)
        if mode not in (b"100644", b"100755"):
            continue
        data = _read_file(root / rel)
        if data is None or _git_blob_id(data) != blob.decode():
            wanted.append((rel, blob.decode()))
    if not wanted:
        return
    try:
        out = subprocess.run(["git", "-C", str(root), *GIT_SAFE, "cat-file", "--batch"], capture_output=True,
                             timeout=120, env=_git_env(), input="".join(f"{b}\n" for _r, b in wanted).encode())
    except (OSError, subprocess.TimeoutExpired):
        return
    data, pos = out.stdout, 0
    for rel, _blob in wanted:
        end = data.find(b"\n", pos)
        if end < 0:
            return
        header = data[pos:end].split()
        pos = end + 1
        if len(header) != 3:
            continue
        size = int(header[2])
        body, pos = data[pos:pos + size], pos + size + 1
        text = _text(body) if size <= MAX_FILE else None
        if text is not None:
            yield rel, text


# -- the checks ------------------------------------------------------------------------------------

LONG_LINE = 20_000
"""A line is scanned to this many characters (the secret plugins' cost grows with it)."""


def check_secrets(root: Path) -> list[Finding]:
    scan = scanner()
    out = []
    unread: dict[str, list[str]] = {"larger than 1 MiB": [], "binary (a NUL byte in the first 4 KB)": [],
                                    f"with a line longer than {LONG_LINE:,} characters, scanned to there": []}
    for rel, path in _secret_files(root):
        if scan.skips(rel):
            continue
        data = _read_file(path)
        with contextlib.suppress(OSError):
            if data is None and path.is_file() and not path.is_symlink() and path.stat().st_size > MAX_FILE:
                unread["larger than 1 MiB"].append(rel)
        text = _text(data)
        if text is None:
            if data is not None:
                unread["binary (a NUL byte in the first 4 KB)"].append(rel)
            continue
        if any(len(line) > LONG_LINE for line in text.splitlines()):
            unread[f"with a line longer than {LONG_LINE:,} characters, scanned to there"].append(rel)
        for k, label in scan.scan_text(rel, text):
            out.append(Finding("secrets", "high", rel, k, f"{label} in the file"))
    # (said, not skipped in silence: detect-secrets reads them all; a key in such a file is not seen here)
    for why, names in unread.items():
        if names:
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            out.append(Finding("secrets", "info", names[0], 0, f"{len(names)} file(s) not scanned in full, {why}: "
                                                               f"{shown}"))
    if _in_git(root):
        for rel, text in _staged(root):
            for k, label in scan.scan_text(rel, text):
                out.append(Finding("secrets", "high", rel, k, f"{label} staged in the git index (the file on "
                                                              "disk differs: it would be committed as staged)"))
    return out


def check_git_history(root: Path) -> list[Finding]:
    if not _in_git(root):
        return [Finding("git-history", "info", ".", 0, "not a git repository: history not checked")]
    if _git(root, "rev-parse", "--verify", "-q", "HEAD") is None and not (_git(root, "rev-list", "--all") or "").strip():
        return []  # no commit yet: no history
    log = _git(root, "log", "--all", "-p", "--no-color", "--no-textconv", "--no-ext-diff", "--unified=0",
               "--no-renames", "--format=commit %H")
    if log is None:
        return [Finding("git-history", "info", ".", 0, "git log failed: history not checked")]
    scan = scanner()
    out, seen = [], set()
    commit, file, previous = "", "", ""
    lines = log.splitlines()
    for k, line in enumerate(lines):
        if line.startswith("commit "):
            commit = line[7:19]
        elif line.startswith("+++ "):
            file = line[6:] if line.startswith("+++ b/") else line[4:]
            previous = ""
        elif line.startswith("+"):
            added = line[1:]
            following = lines[k + 1][1:] if k + 1 < len(lines) and lines[k + 1].startswith("+") else ""
            key = (file, added)
            if key not in seen and not scan.skips(file):
                seen.add(key)
                what = scan.scan_line(file, added, previous, following)
                if what:
                    out.append(Finding("git-history", "high", file, 0, f"{what} added in commit {commit} (still in "
                                                                       "the history even if deleted since)"))
            previous = added
        else:
            previous = ""
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
            except (RecursionError, MemoryError):  # (x=1+1+1... 5,000 deep ended the audit with a traceback)
                _UNPARSED.setdefault(root, []).append(_rel(root, path))
                continue
            parsed.append((path, _rel(root, path), tree, text.splitlines()))
        _PARSED[root] = parsed
    return _PARSED[root]


_UNPARSED: dict[Path, list[str]] = {}
"""Python files of a root nested too deeply for Python's own parser: not checked, and said (by ``risky-code``)."""


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
    unparsed = _UNPARSED.get(root, [])
    if unparsed:
        out.append(Finding("risky-code", "info", unparsed[0], 0, f"{len(unparsed)} Python file(s) nested too deeply "
                                                                  "for Python's parser: their code not checked"))
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
    from .servers.base import weak_token  # (aiohttp's import only for this check)

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
    elif weak_token(token):  # the rule `midstream signaling` applies off loopback
        out.append(Finding("signaling-auth", "high", ".env" if dotenv.is_file() else "environment", 0,
                           f"MIDSTREAM_SIGNALING_TOKEN: {weak_token(token)}"))
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
                if ident and SECRET_NAME.search(ident) and not NOT_SECRET_NAME.search(ident.strip(".-_")) \
                        and not re.search(r"(?i)(_env|_name|_len|count|path|file)$|author|tokeni[sz]", ident):
                    # (a count of tokens, an author, a tokenizer: no secret — `print(book.author)` was "high")
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
    _UNPARSED.pop(root, None)
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


def render(findings: list[Finding], root: Path, ignored: int = 0, only: list[str] | None = None) -> str:
    """The report as text; ``only``: the checks that ran (the others are listed as not run, never as passed)."""
    from .redact import redact

    from .display import escaped  # (names from the folder audited: a file name's ESC ] 0 ; ... retitled the window)

    counts = Counter(f.severity for f in findings)
    lines = [f"MidStream security audit of {escaped(root)}: " + ", ".join(f"{counts.get(s, 0)} {s}" for s in SEVERITIES)
             + (f" ({ignored} ignored by {IGNORE_FILE})" if ignored else "")]
    by_check = Counter(f.check for f in findings if f.severity != "info")
    for name in CHECKS:
        if only and name not in only:
            lines.append(f"  -     {name:<15} not run (--check)")
        else:
            lines.append(f"  {'FAIL' if by_check.get(name) else 'pass'}  {name:<15} "
                         f"{by_check.get(name, 0)} finding(s)" if by_check.get(name) else f"  pass  {name}")
    lines.append("")
    width = max([len(escaped(f"{f.file}:{f.line}")) for f in findings] + [10])
    for f in findings:
        where = escaped(f"{f.file}:{f.line}" if f.line else f.file)
        lines.append(f"{f.severity:<7} {f.check:<15} {where:<{width}}  {escaped(redact(f.message))}")
    return "\n".join(lines) + "\n"


def to_json(findings: list[Finding], root: Path, ignored: int = 0, only: list[str] | None = None) -> str:
    """The report as JSON; ``checks`` lists the checks that ran."""
    counts = Counter(f.severity for f in findings)
    return json.dumps({"root": str(root), "counts": {s: counts.get(s, 0) for s in SEVERITIES}, "ignored": ignored,
                       "checks": [c for c in CHECKS if not only or c in only],
                       "findings": [asdict(f) for f in findings]}, indent=None)
