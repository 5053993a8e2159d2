"""The package's layers, read from its source: data flows one way, and lower layers know nothing of higher ones.

Every import counts, also one inside a function (a lazy import is still a dependency), except those
under ``if TYPE_CHECKING:`` (types only, nothing runs). The rules grow as the relayout (issue 12) lands.
"""

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "midstream_tui"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(path: Path, package: str | None = None) -> set[str]:
    """Absolute names of what the module at ``path`` (in ``package``: by default where it lies) imports at run time."""
    tree = ast.parse(path.read_text("utf-8"))
    if package is None:
        package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def under(*prefixes: str) -> list[str]:
    return [m for m in MODULES if any(m == p or m.startswith(p + ".") for p in prefixes)]


def offenders(modules: list[str], forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    bad = {}
    for mod in modules:
        hits = sorted(i for i in imports_of(MODULES[mod]) if any(i == f or i.startswith(f + ".") for f in forbidden))
        if hits:
            bad[mod] = hits
    return bad


BELOW_THE_TUI = under("midstream_tui.hub", "midstream_tui.analyzers", "midstream_tui.sources", "midstream_tui.headless",
                      "midstream_tui.perception", "midstream_tui.sessions",
                      "midstream_tui.rules", "midstream_tui.events", "midstream_tui.snapshot", "midstream_tui.analysis",
                      "midstream_tui.servers", "midstream_tui.clock", "midstream_tui.config", "midstream_tui.runtime",
                      "midstream_tui.proxy", "midstream_tui.fleet")


def test_the_rules_see_every_module():
    assert len(MODULES) > 40 and "midstream_tui.sources.params" in MODULES and "midstream_tui.hub" in MODULES
    assert set(BELOW_THE_TUI) >= {"midstream_tui.hub", "midstream_tui.sources.media", "midstream_tui.analysis.kernels"}


def test_nothing_below_the_tui_imports_textual_or_the_tui():
    assert offenders(BELOW_THE_TUI, ("textual", "textual_plotext", "midstream_tui.tui", "midstream_tui.cli")) == {}


def test_sources_read_neither_the_configuration_nor_the_cli():
    assert offenders(under("midstream_tui.sources"), ("midstream_tui.config", "midstream_tui.cli", "dotenv")) == {}


def test_the_analysis_imports_nothing_else_of_the_package():
    # the numerics are pure: no events, no sessions, no environment (meta-learning moved to rules/)
    outside = {m: sorted(i for i in imports_of(MODULES[m]) if i.startswith("midstream_tui")
                         and not i.startswith("midstream_tui.analysis"))
               for m in under("midstream_tui.analysis")}
    assert {m: i for m, i in outside.items() if i} == {}
    assert offenders(under("midstream_tui.analysis"), ("os", "sqlite3", "socket", "dotenv", "subprocess")) == {}


def test_analyzers_know_neither_rules_nor_sessions_nor_perception():
    assert offenders(under("midstream_tui.analyzers"), ("midstream_tui.rules", "midstream_tui.sessions",
                                                       "midstream_tui.perception", "midstream_tui.hub")) == {}


SQL = re.compile(r"\b(SELECT\b.+\bFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+TABLE)\b", re.I | re.S)


def sql_in(path: Path) -> list[str]:
    return [node.value[:60] for node in ast.walk(ast.parse(path.read_text("utf-8")))
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value)]


def test_only_the_sessions_package_speaks_sql():
    speaks = sorted(m for m in MODULES if "sqlite3" in imports_of(MODULES[m]))
    assert speaks == ["midstream_tui.sessions.store"]
    queries = {m: sql_in(p) for m, p in MODULES.items() if not m.startswith("midstream_tui.sessions")}
    assert {m: q for m, q in queries.items() if q} == {}
    assert sql_in(MODULES["midstream_tui.sessions.store"])  # (the check does see SQL)


def test_the_checker_sees_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import textual\n"
                   "def f():\n    import sqlite3\n    from .tui import app\n", "utf-8")
    found = imports_of(bad, package="midstream_tui.sources")
    assert "sqlite3" in found and "textual" not in found and "midstream_tui.sources.tui.app" in found


def test_the_learner_parses_no_uris_and_reads_no_environment():
    learning = under("midstream_tui.rules.learning", "midstream_tui.rules.outcomes", "midstream_tui.rules.tuner")
    assert offenders(learning, ("urllib", "dotenv", "midstream_tui.config", "midstream_tui.sources")) == {}
    reads = [m for m in learning if any(isinstance(n, ast.Attribute) and n.attr in ("environ", "getenv")
                                        for n in ast.walk(ast.parse(MODULES[m].read_text("utf-8"))))]
    assert reads == []


ENVIRONMENT_READERS = {
    "midstream_tui.config": "the settings: the one place the configuration is read",
    "midstream_tui.redact": "the secrets' values, to scrub them from output",
    "midstream_tui.data.demo_media": "the XDG cache folder, where the demo's generated clip is kept",
    "midstream_tui.audit": "the environment git runs in, without GIT_* (and a PyPI mirror for the audit)",
    "midstream_tui.rules.engine": "a command action's environment: the user's, plus the stream and rule",
}


def test_only_the_settings_read_the_environment():
    # everything else gets what it needs from a Settings (data folder, keys, tokens, keep limits)
    reads = sorted(m for m, p in MODULES.items()
                   if any(isinstance(n, ast.Attribute) and n.attr in ("environ", "getenv")
                          for n in ast.walk(ast.parse(p.read_text("utf-8")))))
    assert reads == sorted(ENVIRONMENT_READERS)


def test_few_modules_sit_flat_at_the_top_of_the_package():
    flat = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(flat) <= 13, flat
