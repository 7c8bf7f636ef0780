"""Server under hostile loads: memory and latency, this code against a baseline commit.

Each load runs against a fresh ``vipstudio``-style server process (uvicorn on 127.0.0.1, the
`tiny` random model) built from this checkout and from ``--baseline`` (default: the commit before
the server's admission checks, extracted with ``git archive``), in the same run:

- pixels: C clients at once, each a blank W×H PNG (default 12 × 49 MP, ~190 KB each); clients
  retry a 503 after its Retry-After, as our RemoteEngine does. Peak and settled RSS of the server.
- long question: a 10 MB question and, beside it, a normal request: how long each waits.
- poisoned batch: 7 good requests and one with a 1e308 arrow, sent together.
- slow body: headers and 1 byte of a 1000-byte body, then nothing: how long the server holds it.
- browser: a cross-site ``text/plain`` POST; a DNS-rebinding ``Host``; what ``/health`` shows.

``--clients 24`` reproduces the issue's load (needs ~8 GB free for the baseline).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
#: The last commit before the server checked requests before batching (issue 9 §4).
BEFORE = "262d0a4"
JSON = {"content-type": "application/json"}

RUNNER = r"""
import dataclasses, json, sys
import torch
torch.set_num_threads(1)
from vip_model.hf import HFEngine
from vip_model.server import ServerConfig, ServerThread, create_app
model, wanted = sys.argv[1], json.loads(sys.argv[2])
known = {f.name for f in dataclasses.fields(ServerConfig)}
config = ServerConfig(model_name=model, **{k: v for k, v in wanted.items() if k in known})
with HFEngine(model) as engine, ServerThread(create_app(engine, config)) as url:
    print(url, flush=True)
    sys.stdin.read()
"""


@dataclass
class Server:
    url: str
    process: subprocess.Popen[str]

    def rss_mb(self, field: str = "VmRSS") -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def reset_peak(self) -> None:
        # Linux: writing 5 resets the peak RSS (VmHWM) of a process we own.
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")


@contextmanager
def server(code: Path, model: Path, **config: Any) -> Iterator[Server]:
    env = {**os.environ, "PYTHONPATH": str(code)}
    # The server's own log (a hung-up slow client makes the baseline print a traceback) is kept
    # apart, and shown only when the server does not start.
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", RUNNER, str(model), json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
            cwd=code,
        )
        try:
            assert process.stdout is not None
            url = process.stdout.readline().strip()
            if not url.startswith("http"):
                log.seek(0)
                raise RuntimeError(f"the server from {code} did not start:\n{log.read()[-2000:]}")
            small = _body(Image.new("RGB", (64, 48)), "warm up")
            httpx.post(f"{url}/v1/ask", content=json.dumps(small), headers=JSON, timeout=120)
            yield Server(url, process)
        finally:
            assert process.stdin is not None
            process.stdin.close()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _body(image: Image.Image | str, question: str = "What is in the red rectangle?") -> dict:
    if isinstance(image, Image.Image):
        buf = io.BytesIO()
        image.save(buf, "PNG")
        image = base64.b64encode(buf.getvalue()).decode()
    return {
        "image": image,
        "question": question,
        "prompts": [{"kind": "rectangle", "box": [5, 5, 30, 30]}],
        "settings": {"max_new_tokens": 4},
        "stream": False,
    }


def _post(url: str, body: dict, retry_503: bool = False) -> tuple[int, float]:
    """(final status, seconds) of one request; with ``retry_503``, a 503 is retried after its
    Retry-After, as RemoteEngine does (up to 20 times)."""
    content = json.dumps(body)
    t0 = time.perf_counter()
    with httpx.Client(timeout=600) as http:
        for _ in range(20):
            try:
                r = http.post(f"{url}/v1/ask", content=content, headers=JSON)
            except httpx.HTTPError:
                return 0, time.perf_counter() - t0
            if r.status_code == 503 and retry_503 and "retry-after" in r.headers:
                time.sleep(float(r.headers["retry-after"]))
                continue
            return r.status_code, time.perf_counter() - t0
    return r.status_code, time.perf_counter() - t0


def _all_at_once(url: str, bodies: list[dict], retry_503: bool = False) -> list[tuple[int, float]]:
    out: list[tuple[int, float]] = [(0, 0.0)] * len(bodies)

    def run(i: int) -> None:
        out[i] = _post(url, bodies[i], retry_503)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def _statuses(results: list[tuple[int, float]]) -> str:
    counts = Counter(status for status, _ in results)
    return " ".join(f"{n}×{s}" for s, n in sorted(counts.items()))


def load_pixels(code: Path, model: Path, clients: int, side: int) -> dict[str, Any]:
    buf = io.BytesIO()
    Image.new("RGB", (side, side), 0).save(buf, "PNG")
    png = base64.b64encode(buf.getvalue()).decode()
    with server(code, model, max_batch_size=8) as s:
        s.reset_peak()
        base = s.rss_mb()
        t0 = time.perf_counter()
        results = _all_at_once(s.url, [_body(png)] * clients, retry_503=True)
        wall = time.perf_counter() - t0
        peak = s.rss_mb("VmHWM")
        time.sleep(2)
        settled = s.rss_mb()
    return {
        "status": _statuses(results),
        "wall_s": wall,
        "slowest_s": max(t for _, t in results),
        "rss_before_mb": base,
        "peak_mb": peak,
        "settled_mb": settled,
        "png_kb": len(buf.getvalue()) / 1024,
    }


def load_long_question(code: Path, model: Path) -> dict[str, Any]:
    small = Image.new("RGB", (64, 48), (200, 100, 50))
    with server(code, model, max_wait_ms=20) as s:
        s.reset_peak()
        long_body = _body(small, "Why? " * 2_000_000)  # 10 MB
        out: dict[str, tuple[int, float]] = {}
        t = threading.Thread(target=lambda: out.update(long=_post(s.url, long_body)))
        t.start()
        time.sleep(0.5)  # the long one is parsed and queued first
        out["normal"] = _post(s.url, _body(small))
        t.join()
        peak = s.rss_mb("VmHWM")
    return {"long": out["long"], "normal": out["normal"], "peak_mb": peak}


def load_poisoned(code: Path, model: Path) -> dict[str, Any]:
    small = Image.new("RGB", (64, 48), (200, 100, 50))
    good = _body(small)
    bad = {**good, "prompts": [{"kind": "arrow", "tail": [-1e308, -1e308], "tip": [1e308, 1e308]}]}
    with server(code, model, max_wait_ms=300) as s:
        results = _all_at_once(s.url, [good] * 3 + [bad] + [good] * 4)
    good_results = results[:3] + results[4:]
    return {"good": _statuses(good_results), "bad": _statuses([results[3]])}


def load_slow_body(code: Path, model: Path, give_up_s: float = 10.0) -> dict[str, Any]:
    with server(code, model, body_timeout_s=2.0) as s:
        port = int(s.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.settimeout(give_up_s)
            sock.sendall(
                f"POST /v1/ask HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{".encode()
            )
            t0 = time.perf_counter()
            try:
                reply = sock.recv(200).decode(errors="replace")
                status = reply.split(" ", 2)[1] if reply else "closed"
            except TimeoutError:
                status = "no answer, still held"
            held = time.perf_counter() - t0
    return {"status": status, "held_s": held}


def load_browser(code: Path, model: Path) -> dict[str, Any]:
    small = Image.new("RGB", (64, 48), (200, 100, 50))
    content = json.dumps(_body(small))
    with server(code, model) as s:
        port = s.url.rsplit(":", 1)[1]
        plain = httpx.post(
            f"{s.url}/v1/ask", content=content, headers={"content-type": "text/plain"}
        )
        rebound = httpx.post(
            f"{s.url}/v1/ask", content=content, headers={**JSON, "host": f"evil.example:{port}"}
        )
        health = httpx.get(f"{s.url}/health").json()["model"]
    return {"text/plain": plain.status_code, "rebound Host": rebound.status_code, "health": health}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BEFORE, help="git commit to compare with ('none')")
    parser.add_argument("--clients", type=int, default=12, help="concurrent large-image clients")
    parser.add_argument("--side", type=int, default=7000, help="the large PNGs' side (7000: 49 MP)")
    args = parser.parse_args()

    from vip_model.tiny import make_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        model = make_tiny_model(Path(tmp) / "tiny", "tiny", seed=0).path
        trees = {"after": ROOT}
        if args.baseline != "none":
            before = Path(tmp) / "before"
            before.mkdir()
            archive = subprocess.run(
                ["git", "archive", args.baseline], cwd=ROOT, capture_output=True, check=False
            )
            if archive.returncode != 0:
                print(f"baseline {args.baseline} not found: measuring this code only")
            else:
                subprocess.run(["tar", "-x", "-C", str(before)], input=archive.stdout, check=True)
                trees = {"before": before, "after": ROOT}
        for name, code in trees.items():
            print(
                f"\n--- {name} ({'this checkout' if code == ROOT else args.baseline})", flush=True
            )
            p = load_pixels(code, model, args.clients, args.side)
            print(
                f"pixels: {args.clients} × {args.side * args.side / 1e6:.0f} MP blank PNG "
                f"({p['png_kb']:.0f} KB): {p['status']} in {p['wall_s']:.1f} s "
                f"(slowest {p['slowest_s']:.1f} s); server RSS {p['rss_before_mb']:.0f} → peak "
                f"{p['peak_mb']:.0f} MB, {p['settled_mb']:.0f} MB 2 s later",
                flush=True,
            )
            q = load_long_question(code, model)
            print(
                f"long question (10 MB): {q['long'][0]} after {q['long'][1]:.2f} s; a normal "
                f"request beside it: {q['normal'][0]} after {q['normal'][1]:.2f} s; "
                f"peak RSS {q['peak_mb']:.0f} MB",
                flush=True,
            )
            b = load_poisoned(code, model)
            print(f"poisoned batch: 7 good → {b['good']}; the 1e308 arrow → {b['bad']}", flush=True)
            w = load_slow_body(code, model)
            print(f"slow body: {w['status']} after {w['held_s']:.1f} s", flush=True)
            x = load_browser(code, model)
            print(
                f"browser: cross-site text/plain POST → {x['text/plain']}; DNS-rebinding Host → "
                f"{x['rebound Host']}; /health model = {x['health']!r}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
