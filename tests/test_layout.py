"""The packages stack in floors, read from the source with ``ast`` (no imports, so it costs nothing):
alexnet_spec < alexnet_training < alexnet_torch / alexnet_keras < parity < alexnet_cli. Each floor
imports only the floors below it and its own framework; every import counts, the ones inside
functions included. ``tests/test_isolation.py`` checks the same in fresh interpreters."""

import ast
import pathlib
import sys

import pytest

from tests.reference import ROOT

PACKAGES = ("alexnet_spec", "alexnet_training", "alexnet_torch", "alexnet_keras", "parity", "alexnet_cli")
STDLIB = frozenset(sys.stdlib_module_names)
NUMPY_FLOOR = {"numpy", "safetensors"}


def imports(path: pathlib.Path, package: str) -> list[tuple[str, int, bool]]:
    """(top-level module name, line, inside a function or class?) for every import in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []

    def visit(node, nested):
        for child in ast.iter_child_nodes(node):
            inner = nested or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((alias.name.split(".")[0], child.lineno, nested) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                # a relative import stays inside its own package
                name = package if child.level else child.module.split(".")[0]
                found.append((name, child.lineno, nested))
            visit(child, inner)

    visit(tree, False)
    return found


def modules(package: str) -> list[pathlib.Path]:
    paths = sorted(p for p in (ROOT / package).rglob("*.py") if "__pycache__" not in p.parts)
    assert paths, f"no modules found under {package}"
    return paths


def third_party(name: str) -> bool:
    return name not in STDLIB and name != "__future__"


# The numpy floors list what they may import besides the standard library: (anywhere, only inside
# functions). The floors above list what they must not import.
ALLOWED = {
    "alexnet_spec": ({"alexnet_spec"} | NUMPY_FLOOR, set()),
    "alexnet_training": ({"alexnet_spec", "alexnet_training"} | NUMPY_FLOOR, {"PIL", "sklearn", "tqdm"}),
}
FORBIDDEN = {
    "alexnet_torch": {"alexnet_keras", "parity", "alexnet_cli", "tensorflow", "keras", "jax"},
    "alexnet_keras": {"alexnet_torch", "parity", "alexnet_cli", "torch", "torchvision"},
    "parity": {"alexnet_cli"},
    "alexnet_cli": set(),
}
# A program launcher, not library code: ``python -m parity`` runs alexnet_cli's command.
EXCEPTIONS = {("parity", "__main__.py"): {"alexnet_cli"}}


def layout_errors(package: str) -> list[str]:
    errors = []
    for path in modules(package):
        rel = path.relative_to(ROOT / package).as_posix()
        excused = EXCEPTIONS.get((package, rel), set())
        for name, line, nested in imports(path, package):
            if not third_party(name) or name in excused:
                continue
            where = f"{package}/{rel}:{line} imports {name}"
            if package in ALLOWED:
                anywhere, lazily = ALLOWED[package]
                if name in anywhere or (nested and name in lazily):
                    continue
                why = "may import it only inside a function" if name in lazily else "must not import it"
                errors.append(f"{where}: {package} {why}")
            elif name in FORBIDDEN[package]:
                errors.append(f"{where}: {package} must not import it (a floor above, beside, or another framework)")
    return errors


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_imports_only_the_floors_below_it(package):
    errors = layout_errors(package)
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_says_what_it_is(package):
    tree = ast.parse((ROOT / package / "__init__.py").read_text())
    doc = ast.get_docstring(tree)
    assert doc and len(doc.split()) >= 5, f"{package}/__init__.py needs a docstring saying what the package holds"


def test_the_checker_sees_imports_inside_functions(tmp_path):
    source = "import os\n\ndef f():\n    import torch\n    from . import sibling\n\nclass C:\n    import keras\n"
    (tmp_path / "m.py").write_text(source)
    assert imports(tmp_path / "m.py", "pkg") == [("os", 1, False), ("torch", 4, True), ("pkg", 5, True),
                                                 ("keras", 8, True)]
