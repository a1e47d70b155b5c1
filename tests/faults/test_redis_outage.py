"""Redis stopped and restarted while the web and the scheduler run."""

from __future__ import annotations

import time

import pytest

from processes import article_line

from .readers import HOSTS, Readers, served_titles, wait_for_title

TURKEY = "/feeds/news/turkey/rss.xml"


@pytest.mark.parametrize("persistent", [True, False], ids=["keeps-its-data", "comes-back-empty"])
def test_redis_restart_loses_no_feed_and_no_change(deployment, private_redis, tmp_path,
                                                    persistent):
    """While Redis is down the web serves its in-process copies (or renders from the store),
    and an import goes into the store; once Redis is back the scheduler resumes — from its
    watermark, or with a full rebuild when Redis came back empty — and the change imported
    during the outage is served on every address, with every article published before it."""
    server = private_redis(persistent=persistent)
    deployed = deployment(server, refresh_interval=1, leader_lease=2)
    deployed.scheduler()
    deployed.wait_for_refresh()
    port = deployed.web(workers=2)
    before = served_titles(port, TURKEY, HOSTS[0])
    with Readers(port) as readers:
        time.sleep(1)
        server.stop()
        at_stop = readers.requests
        batch = tmp_path / "outage.jsonl"
        batch.write_text(article_line("during-outage", "Imported while Redis was down"))
        deployed.import_(batch)
        time.sleep(2)
        served_during = readers.requests - at_stop
        server.start()
        after = wait_for_title(port, TURKEY, "Imported while Redis was down", 15)
        time.sleep(1)
    readers.assert_clean(at_least=10)
    assert served_during >= 3  # while Redis was down
    assert after[0] == "Imported while Redis was down"
    assert after[1:] == before[: len(after) - 1]  # nothing published before is lost
