"""The package as an index and an installer see it: one version, a license matching the metadata,
every subpackage installed, and README links that work off the repository too."""
import importlib.metadata
import pathlib
import re

import pytest

import tinypix

ROOT = pathlib.Path(__file__).resolve().parent.parent
tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")


@pytest.fixture(scope="module")
def project():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_one_version(project):
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "tinypix.__version__"}
    assert importlib.metadata.version("tinypix") == tinypix.__version__
    assert f"## [{tinypix.__version__}]" in (ROOT / "CHANGELOG.md").read_text()


def test_license_file_matches_the_metadata(project):
    assert project["project"]["license"] == "MIT"
    assert project["project"]["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")


def test_every_subpackage_is_installed(project):
    """The package list is explicit (kernels/ installs as tinypix.kernels): a new folder must join it."""
    listed = set(project["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "tinypix").rglob("__init__.py")}
    found |= {"tinypix.kernels." + ".".join(p.parent.relative_to(ROOT / "kernels").parts)
              for p in (ROOT / "kernels").rglob("__init__.py")}
    assert {name.rstrip(".") for name in found} == listed
    assert project["tool"]["setuptools"]["package-dir"] == {"tinypix.kernels": "kernels"}


def test_readme_links_work_on_a_package_index(project):
    """An index shows the README without the repository, so links are absolute; those into the
    repository name files that exist, under the project's own address."""
    home = project["project"]["urls"]["Homepage"]
    owner_repo = home.removeprefix("https://github.com/")
    text = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    assert targets, "the README has no links to check"
    relative = [t for t in targets if not re.match(r"[a-z]+://|#|mailto:", t)]
    assert not relative, f"relative links break on a package index: {relative}"
    prefixes = (f"https://raw.githubusercontent.com/{owner_repo}/main/", f"{home}/blob/main/", f"{home}/tree/main/")
    for target in targets:
        for prefix in prefixes:
            if target.startswith(prefix):
                path = target[len(prefix):].split("#")[0]
                assert (ROOT / path).exists(), f"README links to {path}, which is not in the repository"
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert pictures and all(p.startswith(prefixes[0]) for p in pictures)
