"""`relais` loads only what a command runs: a health probe every few seconds must not load every service."""

import ast
import subprocess
import sys


def loaded_services(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\n"
                          "print(sorted(m for m in sys.modules if m.split('.')[0] in ('services', 'connectors')))"],
                         capture_output=True, text=True, check=True, timeout=60)
    return ast.literal_eval(out.stdout)


def test_the_command_loads_no_service_until_one_of_its_commands_runs():
    assert loaded_services("import app.cli") == []


def test_a_service_group_loads_that_service_only():
    loaded = loaded_services("from click.testing import CliRunner\nfrom app.cli import main\n"
                             "assert CliRunner().invoke(main, ['vault', '--help']).exit_code == 0")
    assert "services.vault.cli" in loaded
    assert [m for m in loaded if m.startswith("services.") and not m.startswith("services.vault")] == []
