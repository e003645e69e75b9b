"""Fast tests of the image build's pure parts: apt sources, wheel tags, requirement closure, content tags."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from artm_compose.errors import ImageBuildError, RuntimeUnavailable
from artm_compose.images.apt_sources import (DEFAULT_MIRROR, DEFAULT_SECURITY_MIRROR, choose_mirrors, host_sources,
                                             parse_deb822, parse_one_line)
from artm_compose.images.build import image_tags, source_root
from artm_compose.images.closure import Distribution, missing_requirements, read_wheelhouse
from artm_compose.cli import main
from artm_compose.images.fingerprint import Fingerprint
from artm_compose.images.tooling import ensure_compose_plugin
from artm_compose.images.wheelhouse import PythonTarget, build_requirements, platform_tags
from support.images import snapshot_sources
from packaging.version import Version

HOST_DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: http://mirror.example/debian-security/
Suites: bookworm-security
Components: main contrib

Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
Enabled: no
"""


def test_one_line_sources_skip_options_comments_and_sources() -> None:
    text = ("# deb http://commented.example/debian bookworm main\n"
            "deb-src http://src.example/debian bookworm main\n"
            "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian/ bookworm main contrib # note\n"
            "deb http://short.example/debian bookworm\n")
    sources = parse_one_line(text)
    assert [(s.uri, s.suite, s.components) for s in sources] == [
        ("http://mirror.example/debian", "bookworm", ("main", "contrib"))]


def test_deb822_expands_suites_and_skips_disabled_stanzas() -> None:
    sources = parse_deb822(HOST_DEB822)
    assert [(s.uri, s.suite) for s in sources] == [
        ("http://mirror.example/debian", "bookworm"), ("http://mirror.example/debian", "bookworm-updates"),
        ("http://mirror.example/debian-security", "bookworm-security")]


def test_mirrors_follow_the_host() -> None:
    mirrors = choose_mirrors(parse_deb822(HOST_DEB822), "bookworm")
    assert mirrors.mirror == "http://mirror.example/debian"
    assert mirrors.sources_list().splitlines() == [
        "deb http://mirror.example/debian bookworm main",
        "deb http://mirror.example/debian bookworm-updates main",
        "deb http://mirror.example/debian-security bookworm-security main"]


def test_mirrors_fall_back_to_debian_where_the_host_has_no_entry() -> None:
    ubuntu = parse_one_line("deb http://archive.ubuntu.com/ubuntu jammy main\n")
    mirrors = choose_mirrors(ubuntu, "bookworm")
    assert mirrors.mirror == DEFAULT_MIRROR
    assert [s.uri for s in mirrors.sources] == [DEFAULT_MIRROR, DEFAULT_MIRROR, DEFAULT_SECURITY_MIRROR]


def test_host_sources_reads_both_formats_and_ignores_other_files(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text("deb http://one.example/debian bookworm main\n")
    (tmp_path / "sources.list.d" / "debian.sources").write_text(HOST_DEB822)
    (tmp_path / "sources.list.d" / "old.list.disabled").write_text("deb http://off.example/debian bookworm main\n")
    uris = {s.uri for s in host_sources(tmp_path)}
    assert uris == {"http://one.example/debian", "http://mirror.example/debian",
                    "http://mirror.example/debian-security"}


def _target(python: str = "3.11.2", machine: str = "x86_64", glibc: tuple[int, int] = (2, 36)) -> PythonTarget:
    markers = {"python_full_version": python, "python_version": ".".join(python.split(".")[:2]),
               "platform_machine": machine, "sys_platform": "linux", "os_name": "posix",
               "platform_system": "Linux", "implementation_name": "cpython",
               "platform_python_implementation": "CPython", "implementation_version": python,
               "platform_release": "", "platform_version": ""}
    return PythonTarget(markers=tuple(sorted(markers.items())), glibc=glibc)


def test_platform_tags_cover_every_older_glibc() -> None:
    tags = platform_tags(_target())
    assert tags[0] == "manylinux_2_36_x86_64"
    assert "manylinux_2_17_x86_64" in tags and "manylinux_2_16_x86_64" not in tags
    assert tags[-3:] == ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
    arm = platform_tags(_target(machine="aarch64", glibc=(2, 31)))
    assert arm[0] == "manylinux_2_31_aarch64" and arm[-1] == "manylinux2014_aarch64"
    with pytest.raises(ImageBuildError, match="glibc 3.1"):
        platform_tags(_target(glibc=(3, 1)))


REDIS_REQUIRES = ('async-timeout>=4.0.3; python_full_version < "3.11.3"',
                  'hiredis>=3.0.0; extra == "hiredis"')


def test_closure_finds_what_host_markers_left_out() -> None:
    available = {"redis": [Distribution(Version("8.1.0"), REDIS_REQUIRES)]}
    environment = _target("3.11.2").environment
    assert missing_requirements(["redis>=5"], available, environment) == ["async-timeout>=4.0.3"]
    assert missing_requirements(["redis>=5"], available, _target("3.11.7").environment) == []
    available["async-timeout"] = [Distribution(Version("4.0.3"), ())]
    assert missing_requirements(["redis>=5"], available, environment) == []


def test_closure_checks_versions_extras_and_the_top_level() -> None:
    available = {"redis": [Distribution(Version("8.1.0"), REDIS_REQUIRES)],
                 "async-timeout": [Distribution(Version("3.0.1"), ())]}
    environment = _target("3.11.2").environment
    assert missing_requirements(["redis[hiredis]>=5", "click>=8.1"], available, environment) == [
        "async-timeout>=4.0.3", "click>=8.1", "hiredis>=3.0.0"]
    assert missing_requirements(["redis>=9"], available, environment) == ["redis>=9"]


def test_wheelhouse_reading_uses_wheel_metadata(tmp_path: Path) -> None:
    wheel = tmp_path / "Demo_Pkg-1.2.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("demo_pkg/__init__.py", "")
        archive.writestr("demo_pkg-1.2.0.dist-info/METADATA",
                         "Metadata-Version: 2.1\nName: Demo-Pkg\nVersion: 1.2.0\n"
                         "Requires-Dist: click>=8\nRequires-Dist: numpy; python_version < \"3.0\"\n")
    assert read_wheelhouse(tmp_path) == {"demo-pkg": [Distribution(Version("1.2.0"),
                                                                   ("click>=8", 'numpy; python_version < "3.0"'))]}


def test_build_requirements_default_when_undeclared(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\n')
    assert build_requirements(pyproject) == ["setuptools>=40.8.0", "wheel"]
    assert build_requirements(source_root() / "pyproject.toml")  # this project declares its own


def test_fingerprint_separates_inputs_and_ignores_file_location(tmp_path: Path) -> None:
    assert Fingerprint().add_text("a", "bc").hexdigest() != Fingerprint().add_text("ab", "c").hexdigest()
    first, second = tmp_path / "one", tmp_path / "two"
    for directory in (first, second):
        (directory / "pkg" / "__pycache__").mkdir(parents=True)
        (directory / "pkg" / "mod.py").write_text("x = 1\n")
    (second / "pkg" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"\0")
    assert Fingerprint().add_tree("t", first).hexdigest() == Fingerprint().add_tree("t", second).hexdigest()


def test_tags_follow_content_not_location(tmp_path: Path) -> None:
    copy = snapshot_sources(tmp_path / "copy")
    original = image_tags(root=copy)
    assert original == image_tags(root=snapshot_sources(tmp_path / "other"))
    assert original.redis.startswith("artm-compose/redis:") and original.artm.startswith("artm-compose/artm:")

    entrypoint = copy / "docker" / "artm-redis-entrypoint"
    entrypoint.write_text(entrypoint.read_text() + "\n# changed\n")
    changed = image_tags(root=copy)
    assert changed.redis != original.redis and changed.artm == original.artm

    (copy / "artm_compose" / "extra_module.py").write_text("VALUE = 1\n")
    grown = image_tags(root=copy)
    assert grown.artm != changed.artm and grown.redis == changed.redis


def test_compose_plugin_check_without_docker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeUnavailable, match="--runtime local"):
        ensure_compose_plugin()


def test_build_without_a_reachable_daemon_is_one_clear_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/absent.sock")
    with pytest.raises(SystemExit) as exited:
        main(["build"])
    # A missing prerequisite is found before anything starts: main's exit code for bad input.
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--runtime local" in err and "Traceback" not in err
