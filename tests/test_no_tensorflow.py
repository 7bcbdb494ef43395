"""validate, report, diff and fit are plain Python: they never import TensorFlow or Keras."""

import subprocess
import sys

from conftest import ROOT

CODE = """
import sys, inception_kit as ik
a = ik.analyse(ik.load("specs/googlenet.yaml"))
for fmt in ("table", "markdown", "csv", "json"):
    ik.render(a, fmt)
from inception_kit import cli
from inception_kit.spec import schema
cli.main(["report", "specs/googlenet.yaml", "--format", "json"])
d = ik.diff("specs/googlenet.yaml", "specs/inception_3a.yaml")
for fmt in ("table", "markdown", "csv", "json"):
    d.render(fmt)
cli.main(["diff", "specs/googlenet.yaml", "specs/inception_3a.yaml", "--format", "csv"])
from inception_kit.design.fit import fit, sweep
fit("specs/inception_v3.yaml", macs="5G").diff.render("table")
cli.main(["fit", "specs/googlenet.yaml", "--macs", "1.2G"])
cli.main(["fit", "specs/googlenet.yaml", "--sweep"])
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "numpy"))
print("HEAVY", heavy)
"""


def test_validate_report_diff_and_fit_do_not_import_tensorflow():
    r = subprocess.run([sys.executable, "-c", CODE], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "HEAVY []"
