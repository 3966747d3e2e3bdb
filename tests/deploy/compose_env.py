"""The container set-up, tested without a container engine: the environment compose.yaml
gives footfall, applied to the footfall binary with a config written by `footfall init`
(as compose.yaml's comment says) and a real Redis. It must start, answer the Dockerfile's
HEALTHCHECK path and /readyz (Redis reached), keep the demo off, and serve the API to the
generated token only.

Run: python3 tests/deploy/compose_env.py BINARY (scripts/test.sh does).
"""

import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/debug/footfall"))
REDIS = os.environ.get("FOOTFALL_TEST_REDIS_URL", "redis://127.0.0.1:6379")
# What `footfall init --public-url` writes; compose must not replace it.
PUBLIC_URL = "https://t.shop.example"


def fail(message):
    print(f"compose environment FAILED: {message}", flush=True)
    sys.exit(1)


def compose_environment(port):
    """footfall's environment in compose.yaml, ${VAR:-default} resolved to the default,
    the Redis service's host name pointed at the test's Redis."""
    with open(os.path.join(ROOT, "compose.yaml")) as f:
        compose = yaml.safe_load(f)
    env = {k: str(v) for k, v in compose["services"]["footfall"]["environment"].items()}
    resolved = {}
    for key, value in env.items():
        value = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)
        if "${" in value:
            fail(f"{key} needs a variable without a default: {value}")
        resolved[key] = value
    if resolved.get("FOOTFALL__STORE__REDIS_URL") != "redis://redis:6379":
        fail(f"compose.yaml's footfall does not use the redis service: {resolved}")
    resolved["FOOTFALL__STORE__REDIS_URL"] = REDIS
    # The container's port 8080 is published; here a free port of the loopback.
    resolved["FOOTFALL__SERVER__BIND"] = f"127.0.0.1:{port}"
    # A key space of this test's own on the shared Redis.
    resolved["FOOTFALL__STORE__KEY_PREFIX"] = f"ffcompose{secrets.token_hex(4)}"
    return resolved


def healthcheck_path():
    with open(os.path.join(ROOT, "Dockerfile")) as f:
        text = f.read()
    m = re.search(r"HEALTHCHECK[^\n]*\\?\n?\s*CMD curl -fsS http://127\.0\.0\.1:8080(/\S+)", text)
    if not m:
        fail("the Dockerfile has no HEALTHCHECK with curl on port 8080")
    return m.group(1)


def get(url, token=None):
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def main():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        config = os.path.join(tmp, "config.toml")
        init = subprocess.run(
            [BIN, "--config", config, "init", "--redis-url", "redis://redis:6379", "--public-url", PUBLIC_URL],
            capture_output=True, text=True, stdin=subprocess.DEVNULL,
        )
        if init.returncode != 0:
            fail(f"footfall init: {init.stderr}")
        token = re.search(r'^token = "([^"]+)"', open(config).read(), re.M).group(1)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL__")}
        compose = compose_environment(port)
        env.update(compose)
        check = subprocess.run([BIN, "--config", config, "check-config"], env=env, capture_output=True, text=True)
        if check.returncode != 0:
            fail(f"check-config with compose's environment: {check.stderr}")
        log = open(os.path.join(tmp, "footfall.log"), "w+")
        child = subprocess.Popen([BIN, "--config", config], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(200):
                try:
                    if get(base + healthcheck_path())[0] == 200:
                        break
                except OSError:
                    pass
                if child.poll() is not None:
                    break
                time.sleep(0.1)
            log.seek(0)
            lines = log.read().splitlines()
            status, _ = get(base + healthcheck_path())
            if status != 200:
                fail(f"the HEALTHCHECK path {healthcheck_path()} answered {status}: {lines[-5:]}")
            if get(base + "/readyz")[0] != 200:
                fail("/readyz: Redis not reached with compose's environment")
            if not all(line.startswith("{") for line in lines):
                fail(f"compose asks for JSON logs: {lines[:3]}")
            listening = [json.loads(line) for line in lines if "footfall is listening" in line]
            if not listening or listening[0].get("public_url") != PUBLIC_URL:
                fail(f"the public URL is not the one init wrote: {listening}")
            if get(base + "/demo")[0] == 200:
                fail("the demo is on")
            if get(base + "/api/v4/sites", "demo-token-change-me")[0] != 401:
                fail("the shipped demo token is accepted")
            status, body = get(base + "/api/v4/leads/pipelines", token)
            if status != 200:
                fail(f"the generated token is refused: {status} {body}")
            print(f"compose environment ({len(compose)} variables): 1 passed, 0 failed", flush=True)
        finally:
            child.terminate()
            child.wait(timeout=10)


if __name__ == "__main__":
    main()
