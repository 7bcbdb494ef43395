"""The README, the front page: every command in it runs and prints what it shows."""

import contextlib
import io
import re
import shlex
import subprocess

import pytest

import inception_kit as ik
from conftest import CLI, ROOT
from inception_kit.kinds import fmt_shape

README = ROOT / "README.md"
MAX_LINES = 200


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def _console_blocks() -> list[list[tuple[str, list[str]]]]:
    """Each ```console block as (command, the lines shown after it) pairs."""
    out = []
    for block in re.findall(r"```console\n(.*?)```", README.read_text(encoding="utf-8"), re.S):
        pairs: list[tuple[str, list[str]]] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                pairs.append((line[2:], []))
            else:
                pairs[-1][1].append(line)
        out.append(pairs)
    return out


def test_readme_is_a_front_page():
    assert len(README.read_text(encoding="utf-8").splitlines()) <= MAX_LINES


def test_readme_python_example_prints_what_its_comments_say(monkeypatch):
    monkeypatch.chdir(ROOT)
    code = next(block for block in _python_blocks() if "analysis.naive.macs" in block)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    promised = re.findall(r"^print\(.*\)\s+# (.*)$", code, re.M)
    assert len(promised) == 2 and out.getvalue().splitlines() == promised


@pytest.mark.parametrize(
    "command,shown",
    [pair for block in _console_blocks() for pair in block],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_readme_console_commands_print_what_they_show(command, shown, tmp_path):
    argv = shlex.split(command)
    assert argv[0] == "inception-kit"
    # Run where nothing is in the way (a command that writes writes there); presets need no path.
    r = subprocess.run(
        [*CLI, *argv[1:]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert r.returncode == 0, r.stderr
    assert (r.stdout + r.stderr).splitlines() == shown
    if "--out" in argv:
        assert (tmp_path / argv[argv.index("--out") + 1]).stat().st_size > 10_000


def test_readme_opens_with_the_two_setup_commands_and_ci_runs_the_second():
    text = README.read_text(encoding="utf-8")
    first_block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert text.index(first_block.group(0)) < text.index("```console")  # before any other example
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["make demo", "make test"]
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.startswith("make ")]
    assert ci[-1].split()[:2] == ["make", "test"]


def test_make_demo_recipe_is_what_the_readme_says():
    # `make -n` prints the recipe without running it (or installing anything).
    r = subprocess.run(["make", "-n", "demo"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    said = re.search(r"make demo .*then: (.*)", README.read_text(encoding="utf-8")).group(1)
    ran = [line.split("/bin/", 1)[1] for line in r.stdout.splitlines() if "/bin/inception-kit " in line]
    assert said == "inception-kit report googlenet; export googlenet (build, verify)"
    assert [" ".join(c.split()[:3]) for c in ran] == [
        "inception-kit report googlenet",
        "inception-kit export googlenet",
    ]


def test_readme_presets_table_holds_the_real_figures():
    text = README.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)` \| (.*) \|$", text, re.M)
    assert [name for name, _ in rows] == ik.list_presets()
    for name, cells in rows:
        a = ik.analyse(name)
        assert cells.split(" | ") == [
            fmt_shape(a.plan.input_shape),
            f"{a.total.params:,}",
            f"{a.total.macs:,}",
            f"{a.naive.macs:,}",
            str(len(a.blocks)),
        ], name


def test_readme_links_lead_to_files_in_the_repository():
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README.read_text(encoding="utf-8"))
    assert links and all((ROOT / link).is_file() for link in links), [
        l for l in links if not (ROOT / l).is_file()
    ]


def test_add_a_kind_example_gives_the_figures_it_states():
    import inception_kit as ik
    from inception_kit.kinds import registry_scope

    page = (ROOT / "docs" / "how-to" / "add-a-kind.md").read_text(encoding="utf-8")
    (code,) = [block for block in re.findall(r"```python\n(.*?)```", page, re.S) if "register_kind" in block]
    with registry_scope():  # the example's kind is gone after the test
        exec(compile(code, "add-a-kind.md", "exec"), {})
        spec = ik.ModelSpec(
            "lb",
            (28, 28, 192),
            [ik.LayerSpec("pointwise", filters=16), ik.LayerSpec("conv", filters=32, kernel=5)],
        )
        a = ik.analyse(ik.load(spec))
        assert f"{a.rows[0].cost.macs:,} MACs for the pointwise layer" in page
        assert f"classic {a.naive.macs:,} naive MACs" in page
        assert (a.rows[0].cost.macs, a.naive.macs) == (2_408_448, 120_422_400)
    assert "pointwise" not in ik.list_kinds()
