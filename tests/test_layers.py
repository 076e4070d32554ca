"""The house's layers, held for every module: which room may import which, and no import cycles.

    core/        the contracts every room shares          imports no other room
    train/       models, data, losses, loops               imports core/
    runtime/     bundle + video -> prediction              imports core/
    export/      checkpoint -> verified bundle             imports core/, train/, runtime/
    benchmarks/  measures the others                       imports anything but tools/
Nothing imports benchmarks/ (but itself) or tools/.
"""
import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "src" / "picojepa"
ROOMS = ("core", "train", "runtime", "export", "benchmarks")
MAY = {"core": {"core"}, "train": {"core", "train"}, "runtime": {"core", "runtime"},
       "export": {"core", "train", "runtime", "export"},
       "benchmarks": {"core", "train", "runtime", "export", "benchmarks"}}


def _room_dir(room: str) -> Path:
    """A room's folder: the package's rooms under src/picojepa/, the tools at the top."""
    return REPO / "tools" if room == "tools" else PKG / room


def _modules() -> dict[str, Path]:
    out = {}
    for room in ROOMS:
        for p in sorted((PKG / room).rglob("*.py")):
            parts = p.relative_to(PKG / room).with_suffix("").parts
            out[".".join(("picojepa", room, *(parts[:-1] if parts[-1] == "__init__" else parts)))] = p
    return out


def _imports(name: str, path: Path) -> set[str]:
    """Every picojepa module `path` imports, at any depth of the file (lazy imports count)."""
    package = name if path.stem == "__init__" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            out.add(base)
            out |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in out if m.startswith("picojepa.")}


def test_every_import_stays_inside_the_rooms_it_may_use():
    mods = _modules()
    offenders = []
    for name, path in mods.items():
        room = name.split(".")[1]
        for target in _imports(name, path):
            other = target.split(".")[1]
            if other not in MAY[room]:
                offenders.append(f"{name} -> {target}")
    assert not offenders, "\n".join(sorted(offenders))


def test_nothing_imports_tools_or_the_benchmarks():
    for name, path in _modules().items():
        if name.startswith("picojepa.benchmarks"):
            continue
        text = path.read_text()
        assert "picojepa.benchmarks" not in text and "import tools" not in text, name


def test_no_import_cycles_between_modules():
    mods = _modules()
    graph = {n: {t for t in _imports(n, p) if t in mods and t != n} for n, p in mods.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(n, stack):
        state[n] = 1
        for t in sorted(graph[n]):
            if state.get(t) == 1:
                cycles.append(" -> ".join(stack[stack.index(t):] + [t]))
            elif t not in state:
                visit(t, stack + [t])
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n, [n])
    # a package's __init__ importing nothing, modules importing their package's siblings: fine
    cycles = [c for c in cycles if not all(part.count(".") == 1 for part in c.split(" -> "))]
    assert not cycles, "\n".join(cycles)


MAX_PARAMS, MAX_LINES = 8, 60


def _is_click_command(fn: ast.AST) -> bool:
    return any(any(w in ast.unparse(d) for w in ("command", "option", "argument", "group"))
               for d in fn.decorator_list)


def test_no_function_outside_a_click_command_takes_more_than_8_parameters_or_60_lines():
    """Long parameter lists and long bodies are where the house hides its hand-offs: options
    travel as small dataclasses, and a long function is split into the steps it is made of."""
    too = []
    for room in (*ROOMS, "tools"):
        for path in sorted(_room_dir(room).rglob("*.py")):
            for fn in ast.walk(ast.parse(path.read_text())):
                if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) or _is_click_command(fn):
                    continue
                a = fn.args
                params = [x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs) if x.arg not in ("self", "cls")]
                lines = fn.end_lineno - fn.lineno + 1
                if len(params) > MAX_PARAMS or lines > MAX_LINES:
                    too.append(f"{path.relative_to(REPO)}:{fn.lineno} {fn.name}: {len(params)} parameters, "
                               f"{lines} lines")
    assert not too, "\n".join(too)


# the files of a run, an ensemble and a bundle, and the one module that spells each name
OWNED = {"core/rundir.py": ("pretrain.pt", "pretrain.jsonl", "pretrain.collapsed.pt", "features.pt", "stacker.pt",
                            "ensemble.json", "random_init_probe.pt", "summary.json", "folds-data", "held_out.json",
                            "answer.json", "report.html"),
         "core/bundle.py": ("manifest.json",)}


def _literals(path: Path) -> set[str]:
    """The string constants of a module (docstrings and comments are not constants of the code)."""
    tree = ast.parse(path.read_text())
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and n.body
            and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in docs}


def test_the_run_directory_and_the_bundle_file_names_are_spelled_in_one_module():
    """The run directory's file names (`core/rundir.py`: RunDir, EnsembleDir) and the bundle's
    manifest (`core/bundle.py`) are asked for, never typed again, in any room or tool; a string
    that holds one (a path, a message) counts too."""
    found = []
    for room in (*ROOMS, "tools"):
        for path in sorted(_room_dir(room).rglob("*.py")):
            rel = str(path.relative_to(PKG if room != "tools" else REPO))
            for owner, names in OWNED.items():
                if rel != owner:
                    found += [f"{rel}: {lit!r} spells {n!r} (owned by {owner})" for lit in sorted(_literals(path))
                              for n in names if n in lit.split("/") or lit == n]
    assert not found, "\n".join(found)
