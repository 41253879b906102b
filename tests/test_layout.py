"""docs/LAYOUT.md stays true: its layers are the folders of bench/ and the import order of the code,
no two modules import each other, and the top of bench/ holds only its face."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "bench"
FACE = {"__init__.py", "api.py", "errors.py"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Every bench module -> the bench modules it imports (at the top or inside functions)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("bench"):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    found.add(sub if sub in modules else node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("bench")}
        edges[name] = {m for m in found if m in modules and m != name}
    return edges


def layers() -> list[list[str]]:
    """The module prefixes of each row of the layer table, top row first."""
    text = (ROOT / "docs" / "LAYOUT.md").read_text()
    table = text[text.index("| layer | modules |"):].split("\n\n")[0].splitlines()[2:]
    rows = []
    for line in table:
        cells = line.split("|")[2]
        rows.append(["bench." + re.sub(r"(\.py|/)$", "", m).replace("/", ".") for m in re.findall(r"`([^`]+)`", cells)])
    return rows


def layer_of(module: str, rows: list[list[str]]) -> int | None:
    for i, row in enumerate(rows):
        if any(module == p or module.startswith(p + ".") for p in row):
            return i
    return None


def test_every_module_has_a_layer_and_imports_only_downwards():
    rows = layers()
    assert len(rows) >= 5
    edges = imports()
    unplaced = sorted(m for m in edges if m != "bench" and layer_of(m, rows) is None)
    assert unplaced == [], "modules missing from docs/LAYOUT.md"
    upwards = [(a, b) for a, bs in edges.items() if a != "bench" for b in bs if layer_of(a, rows) > layer_of(b, rows)]
    assert upwards == [], "imports against the layer order of docs/LAYOUT.md"


def test_no_two_modules_import_each_other():
    edges = imports()
    mutual = sorted({tuple(sorted((a, b))) for a, bs in edges.items() for b in bs if a in edges.get(b, ())})
    assert mutual == []


def test_the_top_of_the_package_is_only_its_face_and_every_folder_is_a_layer():
    top = {p.name for p in PACKAGE.glob("*.py")}
    assert top == FACE
    rows = layers()
    folders = {"bench." + p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert {f for f in folders if any(f in row for row in rows)} == folders, "a folder that is not a layer"


def test_no_line_is_longer_than_120_characters():
    long = [f"{p.relative_to(ROOT)}:{i}" for p in [*PACKAGE.rglob("*.py"), *(ROOT / "tests").glob("*.py")]
            for i, line in enumerate(p.read_text().splitlines(), 1) if len(line) > 120]
    assert long == []
