"""`relais rpc` against a running `relais serve directory` on the real broker: arguments are strings as written."""

from __future__ import annotations

import json
import subprocess

from click.testing import CliRunner

from app.cli import main
from relais.runtime.call_args import CallArgumentError, call_arguments
from tests import aaf_builder as aaf
from tests.ops_helpers import RELAIS, Service


def test_numeric_looking_ids_and_uais_reach_the_method_as_strings(settings_env, tmp_path):
    school = aaf.write(tmp_path, "P_Complet_20260901_EtabEducNat_0000.xml", aaf.school("52006", "0750001A"))
    pupils = aaf.write(tmp_path, "P_Complet_20260901_Eleve_0000.xml", aaf.pupil("007", structure="52006"),
                       aaf.pupil("2605692", structure="52006", klass="3B"))
    imported = CliRunner().invoke(main, ["directory", "import", str(school), str(pupils)])
    assert imported.exit_code == 0, imported.output
    service = Service("directory", settings_env, tmp_path / "directory.log").wait_alive()
    try:
        service.wait_ready()

        def rpc(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([RELAIS, "rpc", "directory", *args], env=service.env, capture_output=True,
                                  text=True, timeout=60)

        by_id, by_uai = rpc("get_structure", "52006"), rpc("get_structure", "0750001A")
        assert by_id.returncode == 0, by_id.stderr
        assert json.loads(by_id.stdout)["uai"] == "0750001A"
        assert json.loads(by_uai.stdout) == json.loads(by_id.stdout)
        person = rpc("get_person", "007")  # as JSON, 007 is not even a number
        assert person.returncode == 0 and json.loads(person.stdout)["jointure"] == "007", person.stderr
        in_3b = rpc("members", "52006", "3B")
        assert [p["jointure"] for p in json.loads(in_3b.stdout)] == ["2605692"], in_3b.stderr
        everyone = rpc("members", "52006", "json:null")  # a typed value: no class given
        assert sorted(p["jointure"] for p in json.loads(everyone.stdout)) == ["007", "2605692"], everyone.stderr

        bad = rpc("get_structure", "json:{52006")
        assert bad.returncode == 2 and "argument 1 ('json:{52006'): what follows json: is not JSON" in bad.stderr
        unknown = rpc("no_such_method")
        assert unknown.returncode == 1 and "relais rpc directory no_such_method: MethodNotFound" in unknown.stderr
        too_many = rpc("get_structure", "52006", "0750001A")
        assert too_many.returncode == 1 and ("relais rpc directory get_structure: TypeError: Directory.get_structure() "
                                             "takes 2 positional arguments but 3 were given") in too_many.stderr
        assert "Traceback" not in unknown.stderr + too_many.stderr
    finally:
        assert service.stop() == 0


def test_the_argument_syntax():
    assert call_arguments(["52006", "0750001A", "007", "-1", "true", "null", "", "json:3", "json:true",
                           "json:null", 'json:["6A","6B"]', 'json:"json:x"']) == [
        "52006", "0750001A", "007", "-1", "true", "null", "", 3, True, None, ["6A", "6B"], "json:x"]
    try:
        call_arguments(["a", "json:"])
    except CallArgumentError as exc:
        assert str(exc).startswith("argument 2 ('json:'): what follows json: is not JSON: Expecting value")
    else:
        raise AssertionError("json: without a value was taken")
    usage = CliRunner().invoke(main, ["rpc", "directory", "get_structure", "json:[1,"])
    assert usage.exit_code == 2 and "argument 1 ('json:[1,'): what follows json: is not JSON" in usage.output
    assert "52006, 0750001A and 007" in CliRunner().invoke(main, ["rpc", "--help"]).output
