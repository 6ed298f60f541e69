"""Two fronts on one host: docker-compose.yml with docker-compose.multi.yml
(a second nginx and Redis), brought up by tests/containers/run.sh over the
stack test_compose.py left. Besides test_compose.py's variables:

  PL_CT_URL2   the second front's published HTTPS port
"""
import json
import os
import subprocess
import time
import uuid

import requests
import websocket

URL1 = os.environ["PL_CT_URL"]
URL2 = os.environ["PL_CT_URL2"]
CA = os.environ["PL_CT_CA"]
FIGURES = os.environ["PL_CT_FIGURES"]
PROJECT = os.environ["COMPOSE_PROJECT_NAME"]
PASSWORD = "correct horse battery staple"


def call(url, method, path, token=None, body=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, url + path, headers=headers, json=body, verify=CA, timeout=15)


def test_both_fronts_serve_every_service():
    for url in (URL1, URL2):
        for svc in ("accounts", "projects", "chat"):
            r = call(url, "GET", f"/api/{svc}/health")
            assert r.status_code == 200, (url, svc, r.text)


def test_the_gateway_name_is_both_fronts():
    """The services' PL_GATEWAY_URL names `nginx`: nginx2's alias makes it both."""
    out = subprocess.run(["podman", "exec", f"{PROJECT}_chat_1", "getent", "ahostsv4", "nginx"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    assert len({line.split()[0] for line in out.splitlines()}) == 2, out


def test_a_message_posted_through_one_front_is_live_on_the_other():
    email = f"multi-{uuid.uuid4().hex[:12]}@example.com"
    r = call(URL1, "POST", "/api/accounts/signup", body={"email": email, "password": PASSWORD, "display_name": "Two"})
    assert r.status_code == 201, r.text
    r = call(URL2, "POST", "/api/accounts/login", body={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    # a room of its own (the lobby may be resyncing after test_compose.py's faults)
    r = call(URL1, "POST", "/api/projects", token, {"name": "two fronts", "description": ""})
    assert r.status_code == 201, r.text
    room = f"project-{r.json()['project']['id']}"
    for sub, post in ((URL2, URL1), (URL1, URL2)):
        r = call(sub, "POST", f"/api/chat/rooms/{room}/ticket", token)
        assert r.status_code == 201, r.text
        ws = websocket.create_connection(sub.replace("https://", "wss://") + r.json()["url"], timeout=5,
                                         sslopt={"ca_certs": CA})
        try:
            started = time.monotonic()
            r = call(post, "POST", f"/api/chat/rooms/{room}/messages", token, {"body": f"from {post}"})
            assert r.status_code == 201, r.text
            ws.settimeout(5)
            got = json.loads(ws.recv())
            got.pop("prev_id")  # (live events name the message before; the POST's answer does not)
            seconds = time.monotonic() - started
        finally:
            ws.close()
        assert got == r.json()["message"], (sub, post)
        with open(FIGURES, "a") as f:
            f.write(json.dumps({"figure": "chat message across fronts (compose, Redis)", "posted": post,
                                "subscribed": sub, "seconds": round(seconds, 3)}) + "\n")
