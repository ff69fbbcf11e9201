"""The README's "Deploying on several machines" has what the multi-host tier runs (no root
needed: this only reads the README). The tier itself runs these very commands (studio.py);
this test says early, and plainly, when an edit to the README leaves it nothing to run."""

from __future__ import annotations

import re
import shlex
import tomllib

import pytest

from .studio import EXAMPLE_SITE, PLACEHOLDERS, ROOT, readme_steps

pytestmark = pytest.mark.multihost

def test_the_readme_deployment_commands_are_what_the_tier_runs():
    steps = readme_steps()
    assert sorted(steps) == [1, 2, 3, 4]
    line = {n: [shlex.split(c.line) for c in cmds] for n, cmds in steps.items()}
    server = line[1]
    assert any(argv[:2] == ["flamenco-server", "create-user"] and "--admin" in argv for argv in server)
    assert any(argv[:3] == ["flamenco-server", "create-project", EXAMPLE_SITE["project"]] for argv in server)
    assert any(argv[:3] == ["flamenco-server", "create-user", EXAMPLE_SITE["artist"]] for argv in server)
    assert any(argv[:3] == ["flamenco-server", "create-manager", EXAMPLE_SITE["manager"]] for argv in server)
    # The last command of steps 1-3 is the service the tier keeps running.
    assert server[-1][:2] == ["flamenco-server", "serve"]
    assert line[2][-1][:2] == ["flamenco-manager", "serve"]
    assert "FLAMENCO_MANAGER_TOKEN" in steps[2][-1].env
    assert line[3][-1][0] == "flamenco-worker"
    assert line[4][-1][0] == "flamenco"

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for n, cmds in steps.items():
        for cmd in cmds:
            assert cmd.program() in scripts, f"step {n}: '{cmd.program()}' is not one of our commands"
            texts = [cmd.line, *cmd.env.values()]
            for placeholder in re.findall(r"<([^<>]+)>", " ".join(texts)):
                assert placeholder in PLACEHOLDERS, f"step {n}: unknown placeholder <{placeholder}>"
