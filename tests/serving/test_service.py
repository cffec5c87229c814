"""`lmrec-serve` through a real HTTP client against a live server on localhost; the page in a headless browser."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import uvicorn

from lmrec.serving.recommender import load
from lmrec.serving.service import create_app


@pytest.fixture(scope="module")
def server(trained_runs):
    """The history-tower run served by uvicorn in a thread; yields (base url, its Recommender)."""
    rec = load(trained_runs["history"])
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(rec), host="127.0.0.1", port=port, log_level="warning")
    live = uvicorn.Server(config)
    thread = threading.Thread(target=live.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not live.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live.started
    yield url, rec
    live.should_exit = True
    thread.join(timeout=10)


def same(answer: list[dict], expected: list) -> bool:
    """The same items in the same order with the same scores (to float32's last digits: the server scores on its
    own threads, whose math library may sum in another order)."""
    expected = [r.as_dict() for r in expected]
    ids = [a["item_id"] for a in answer] == [e["item_id"] for e in expected]
    titles = [a["title"] for a in answer] == [e["title"] for e in expected]
    scores = all(
        a["score"] == pytest.approx(e["score"], rel=1e-5, abs=1e-6) for a, e in zip(answer, expected, strict=True)
    )
    return ids and titles and scores


def test_recommend_similar_explain_and_items_answer_as_the_api(server):
    url, rec = server
    user = rec.users[2]
    with httpx.Client(base_url=url) as client:
        got = client.post("/recommend", json={"user": int(user), "k": 5}).json()["items"]
        assert same(got, rec.recommend(user=user, k=5))
        batch = client.post("/recommend", json={"users": [int(u) for u in rec.users[:3]], "k": 4}).json()
        assert [r["user"] for r in batch["results"]] == [int(u) for u in rec.users[:3]]
        assert same(batch["results"][2]["items"], rec.recommend(user=rec.users[2], k=4))
        history = [int(rec.item_id(i)) for i in (1, 2, 3)]
        assert same(
            client.post("/recommend", json={"history": history, "k": 3}).json()["items"],
            rec.recommend(history=history, k=3),
        )
        similar = client.post("/similar", json={"item": history[0], "k": 3}).json()["items"]
        assert same(similar, rec.similar(item=history[0], k=3))
        why = client.post("/explain", json={"user": int(user), "item": got[0]["item_id"]}).json()
        assert why["method"] == "exact" and why["score"] == pytest.approx(got[0]["score"], rel=1e-6)
        item = client.get(f"/items/{history[0]}").json()
        assert item["item_id"] == history[0] and item["title"] == rec.titles[1]
        health = client.get("/health").json()
        assert health["status"] == "ok" and health["items"] == len(rec.items)
        assert "/recommend" in client.get("/openapi.json").json()["paths"]


BAD_REQUESTS = [
    ({"user": "no-such-user"}, 404, "is not a user of this run's data"),
    ({"user": 1, "k": 0}, 422, "k: Input should be greater than or equal to 1"),
    ({"user": 1, "k": 5000}, 422, "k: Input should be less than or equal to 1000"),
    ({"usr": 1}, 422, "usr: Extra inputs are not permitted"),
    ({"history": [1] * 10_001}, 422, "history: List should have at most 10000 items"),
    ({"history": ["no-such-item"]}, 404, "is not an item of this run's catalogue"),
    ({}, 400, "give exactly one of user, history or text"),
    ({"users": [1], "text": "x"}, 400, "users=[...] is answered alone"),
    ({"text": "a film"}, 400, "has no text item tower"),
]


@pytest.mark.parametrize(("body", "status", "message"), BAD_REQUESTS)
def test_bad_requests_get_a_4xx_with_one_line(server, body, status, message):
    url, _ = server
    response = httpx.post(f"{url}/recommend", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert message in error and "\n" not in error and "Traceback" not in response.text


def test_malformed_bodies_and_unknown_items_are_4xx(server):
    url, _ = server
    broken = httpx.post(f"{url}/recommend", content=b'{"user": 1, "k": ', headers={"content-type": "application/json"})
    assert broken.status_code == 422 and broken.json()["error"].startswith("the body is not valid JSON")
    assert httpx.post(f"{url}/recommend", json=[1, 2]).status_code == 422
    missing = httpx.get(f"{url}/items/no-such-item")
    assert missing.status_code == 404 and "is not an item" in missing.json()["error"]
    assert httpx.post(f"{url}/explain", json={"item": 1}).status_code == 400


def test_concurrent_requests_get_their_own_answers(server):
    url, rec = server
    users = [int(u) for u in rec.users[:16]]
    expected = {u: rec.recommend(user=u, k=10) for u in users}

    def ask(user: int) -> tuple[int, list]:
        with httpx.Client(base_url=url) as client:
            return user, [client.post("/recommend", json={"user": user, "k": 10}).json()["items"] for _ in range(5)]

    with ThreadPoolExecutor(8) as pool:
        for user, answers in pool.map(ask, users * 2):
            assert all(same(answer, expected[user]) for answer in answers)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs a chromium binary (apt-get install chromium)")
def test_the_page_shows_a_users_recommendations_in_a_browser(server, tmp_path):
    url, rec = server
    user = int(rec.users[1])
    expected = [r.title for r in rec.recommend(user=user, k=5)]
    browser = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=15000"]
    page = f"{url}/?user={user}&k=5"
    dom = subprocess.run([*browser, "--dump-dom", page], capture_output=True, text=True, timeout=120).stdout
    assert 'data-state="done"' in dom
    shown = [title for title in expected if f"<td>{title.replace('&', '&amp;')}</td>" in dom]
    assert shown == expected
    assert "exact (contributions to this model" in dom  # the first item's explanation is shown beside them
    shot = tmp_path / "page.png"
    subprocess.run([*browser, "--window-size=1200,800", f"--screenshot={shot}", page], capture_output=True, timeout=120)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    assert json.loads(httpx.get(f"{url}/health").text)["status"] == "ok"
