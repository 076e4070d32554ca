"""The commands the README and the user guide show must be commands the tools accept: every
`picojepa-*` and `make` invocation in their shell blocks names a command that exists, only options
it takes, and recipe files that are there. A renamed flag then breaks this test, not a user."""
from __future__ import annotations

import configparser
import importlib
import re
import shlex
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parents[1]
# the pages a user reads; docs/bad-inputs.md lists wrong command lines on purpose
DOCS = [ROOT / "README.md"] + sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "bad-inputs.md")
SHELL = ("bash", "sh", "shell", "console")
SEPARATORS = {"&&", "||", ";", "|", "&", "(", ")"}


def entry_points() -> dict[str, click.Command]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    out = {}
    for line in cfg["options.entry_points"]["console_scripts"].strip().splitlines():
        name, target = (s.strip() for s in line.split("="))
        module, attr = target.split(":")
        out[name] = getattr(importlib.import_module(module), attr)
    return out


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return {m.group(1) for m in re.finditer(r"^([A-Za-z0-9_.-]+):(?!=)", text, re.M)}


def shell_blocks(path: Path) -> list[tuple[int, str]]:
    """(first line number, text) of each fenced shell block of a Markdown file."""
    blocks, current, start, lang = [], None, 0, ""
    for n, line in enumerate(path.read_text().splitlines(), 1):
        fence = re.match(r"^\s*```(\w*)", line)
        if fence and current is None:
            current, start, lang = [], n + 1, fence.group(1)
        elif fence:
            if lang in SHELL:
                blocks.append((start, "\n".join(current)))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def invocations(text: str) -> list[list[str]]:
    """The simple commands of a shell block (continuations joined, comments dropped), split at
    &&, ||, ;, | and &; leading VAR=value assignments and a `$ ` prompt removed."""
    commands = []
    for line in text.replace("\\\n", " ").splitlines():
        lex = shlex.shlex(line, posix=True, punctuation_chars=True)
        lex.commenters = "#"
        current = []
        for tok in list(lex) + [";"]:
            if tok in SEPARATORS:
                if current:
                    commands.append(current)
                current = []
            else:
                current.append(tok)
    out = []
    for words in commands:
        while words and (re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]) or words[0] in ("$", "sudo", "time")):
            words = words[1:]
        if words:
            out.append(words)
    return out


def option_table(cmd: click.Command) -> dict[str, bool]:
    """Every option name of a command -> whether it takes a value."""
    table = {"--help": False}
    for p in cmd.params:
        if isinstance(p, click.Option):
            takes = not (p.is_flag or p.count)
            for name in p.opts + p.secondary_opts:
                table[name] = takes
    return table


def check_options(cmd: click.Command, words: list[str], where: str) -> list[str]:
    """Problems with `words` (the arguments after the command's name)."""
    if isinstance(cmd, click.Group):
        if not words or words[0] in ("--help", "-h"):
            return []
        sub = cmd.commands.get(words[0])
        if sub is None:
            return [f"{where}: no subcommand {words[0]!r} (known: {', '.join(sorted(cmd.commands))})"]
        return check_options(sub, words[1:], f"{where} {words[0]}")
    table, problems, i = option_table(cmd), [], 0
    while i < len(words):
        w = words[i]
        if w == "--":
            break
        if w.startswith("-") and len(w) > 1 and not re.match(r"^-\d", w):
            name = w.split("=", 1)[0]
            if name not in table:
                problems.append(f"{where}: no option {name!r}")
            elif table[name] and "=" not in w:
                i += 1  # its value
        i += 1
    for w in words:
        for ref in re.findall(r"configs/[\w.-]+\.ya?ml", w):
            if not (ROOT / ref).is_file():
                problems.append(f"{where}: names {ref}, which does not exist")
    return problems


def inline_commands(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of each inline code span of a Markdown file that is a command line
    (`picojepa-... ` or `make ...`), outside fenced blocks."""
    out, fenced = [], False
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if re.match(r"^\s*```", line):
            fenced = not fenced
        elif not fenced:
            out += [(n, m) for m in re.findall(r"`((?:picojepa-[a-z]+|make) [^`]+)`", line)]
    return out


def doc_problems(paths: list[Path]) -> list[str]:
    tools, targets, problems = entry_points(), make_targets(), []
    for path in paths:
        for line, block in shell_blocks(path) + inline_commands(path):
            for words in invocations(block):
                where = f"{path.name}:{line}: {words[0]}"
                if words[0] in tools:
                    problems += check_options(tools[words[0]], words[1:], where)
                elif words[0] == "make":
                    for w in words[1:]:
                        if not w.startswith("-") and "=" not in w and w not in targets:
                            problems.append(f"{where}: no make target {w!r}")
                elif words[0].startswith("picojepa-"):
                    problems.append(f"{where}: no such command (setup.cfg installs {', '.join(sorted(tools))})")
    return problems


def test_every_documented_command_is_one_the_tools_accept():
    assert len(DOCS) > 1
    assert not doc_problems(DOCS), "\n".join(doc_problems(DOCS))


def test_the_docs_check_catches_a_renamed_option_a_missing_target_and_recipe(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```bash\n"
                    "picojepa-train all --config configs/demo.yaml --out runs/x --resume   # fine\n"
                    "picojepa-run --bundle b --windw 2 clip.mp4 && make demoo\n"
                    "picojepa-train classify --config configs/nope.yaml \\\n    --data d\n"
                    "RECIPE=real make train | tee log; picojepa-trian all\n"
                    "```\n"
                    "Inline too: `picojepa-data index src --out d --held-out-prefx test__` and `make train`.\n")
    bad = doc_problems([page])
    assert any("no option '--windw'" in p for p in bad), bad
    assert any("no make target 'demoo'" in p for p in bad), bad
    assert any("configs/nope.yaml" in p for p in bad), bad
    assert any("picojepa-trian" in p for p in bad), bad
    assert any("no option '--held-out-prefx'" in p for p in bad), bad
    assert len(bad) == 5, bad


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_each_page_of_the_guide_is_reachable_from_the_readme(path):
    if path.name == "README.md":
        return
    readme = (ROOT / "README.md").read_text()
    assert f"docs/{path.name}" in readme, f"README.md does not link docs/{path.name}"


def _commands():
    for name, cmd in entry_points().items():
        yield name, cmd
        if isinstance(cmd, click.Group):
            for sub, c in cmd.commands.items():
                yield f"{name} {sub}", c


@pytest.mark.parametrize("name,cmd", list(_commands()), ids=lambda x: x if isinstance(x, str) else "")
def test_every_commands_help_opens_with_one_line_and_ends_with_examples_that_parse(name, cmd):
    first = (cmd.help or "").strip().split("\n\n")[0]
    assert first and "\n" not in first and len(first) <= 100, f"{name}: first paragraph {first!r}"
    assert cmd.epilog and "Examples:" in cmd.epilog, f"{name}: no examples in --help"
    lines = [line.strip() for line in cmd.epilog.split("Examples:", 1)[1].splitlines() if line.strip()]
    assert lines and all(line.split()[0] == name.split()[0] for line in lines), lines
    tools = entry_points()
    for line in lines:
        words = shlex.split(line)
        assert not check_options(tools[words[0]], words[1:], name), line


def test_the_example_systemd_unit_runs_a_command_the_tools_accept():
    units = sorted((ROOT / "tools" / "systemd").glob("*.service"))
    assert units
    tools = entry_points()
    for unit in units:
        lines = [line.split("=", 1)[1] for line in unit.read_text().splitlines() if line.startswith("ExecStart=")]
        assert lines, unit
        for line in lines:
            words = shlex.split(line)
            name = Path(words[0]).name
            assert name in tools, line
            assert not check_options(tools[name], words[1:], unit.name), line
