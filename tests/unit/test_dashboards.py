import json
import subprocess
import sys

from lab import REPO

DASHBOARDS = REPO / "grafana/dashboards"
DATASOURCE_UIDS = {"prometheus", "loki", "tempo"}


def test_checked_in_dashboards_match_their_generator(tmp_path):
    copy = tmp_path / "generate.py"
    copy.write_text((DASHBOARDS / "generate.py").read_text())
    subprocess.run([sys.executable, str(copy)], check=True)
    for generated in tmp_path.glob("*.json"):
        assert generated.read_text() == (DASHBOARDS / generated.name).read_text(), generated.name


def test_dashboards_have_stable_uids_known_datasources_and_no_ids():
    boards = [json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))]
    assert {b["title"] for b in boards} == {"Agent Performance", "LLM Cost", "Service Overview", "Lab Health",
                                            "Data Pipeline"}
    assert len({b["uid"] for b in boards}) == 5 and all(b["uid"].startswith("obslab-") for b in boards)
    for board in boards:
        assert "id" not in board
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] in DATASOURCE_UIDS
            assert all(t["datasource"]["uid"] in DATASOURCE_UIDS for t in panel["targets"])
