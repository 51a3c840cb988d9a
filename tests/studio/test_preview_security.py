"""The code preview is a sandbox: hostile documents run in it and none of them gets anywhere.

Each payload in payloads.py runs twice: inline (the studio's own `mountPreview`, an
`<iframe sandbox="allow-scripts">` on /preview/{id}) and at the top level of a tab
(/preview/{id}/tab, what "Open" shows). Proof that nothing succeeded:
- the canary (another loopback port, TCP and UDP) received not one byte: no HTTP request, no
  WebSocket handshake, no STUN/TURN datagram (WebRTC is not covered by CSP; the server's guard
  script takes it away, see `prepare_preview`). Chromium may still open a TCP connection and send
  nothing, when a nested frame's navigation is about to be blocked; those are counted, not failed;
- the studio's server saw no request but the previews themselves (recorded by the test server);
- the studio page kept its URL, title, DOM, cookie and localStorage; no dialog, popup or
  download appeared.
And the payloads did run: their documents loaded and their scripts reached the end.
"""

from __future__ import annotations

import re
import time

from .conftest import shoot
from .payloads import PAYLOADS, render

SECRET = "s3cret-value"
SETTLE_SECONDS = 2.5  # timers, sockets and ICE gathering get this long to try
TAB_SETTLE_SECONDS = 1.5  # the same in tabs (fewer at once: the inline run already waited)
TAB_BATCH = 22  # new-tab previews open this many at a time (each is a renderer)


def expected_request(r: dict, ids: set[str]) -> bool:
    """A request the previews are allowed to cause: creating them and loading them. (And the
    browser's own favicon check for the studio's tab, which it sometimes repeats while many frames
    load: same-origin, so not from a preview, whose opaque origin makes every request cross-site.)"""
    path, method, site = r["path"], r["method"], r["headers"].get("sec-fetch-site")
    if method == "POST" and path == "/api/preview":
        return site == "same-origin"
    if method == "GET" and path == "/health":  # the status pill's poll: same-origin, so the studio's own
        return site == "same-origin"
    if method == "GET" and path == "/favicon.ico":
        return site == "same-origin" and r["headers"].get("sec-fetch-dest") == "image" and "origin" not in r["headers"]
    m = re.fullmatch(r"/preview/([\w-]{22})(/tab)?", path)
    return (
        method == "GET"
        and m is not None
        and m.group(1) in ids
        and r["headers"].get("sec-fetch-site") in ("same-origin", "none")
    )


def frame_marks(page) -> list[dict]:
    out = []
    for frame in page.frames:
        if "/preview/" not in frame.url or frame.url.endswith("/tab"):
            continue
        try:
            out.append(
                frame.evaluate(
                    "() => ({title: document.title, ran: document.documentElement.dataset.ran || null,"
                    " loaded: document.documentElement.dataset.loaded || null, r: window.__r || []})"
                )
            )
        except Exception:  # a frame that navigated (and was blocked) has no document of ours left
            pass
    return out


def test_no_payload_escapes_the_preview(context, studio, canary):
    assert len(PAYLOADS) >= 50
    page = context.new_page()
    page.set_default_timeout(30_000)
    events = {"dialogs": [], "downloads": [], "popups": []}
    page.on("dialog", lambda d: (events["dialogs"].append(d.message), d.dismiss()))
    page.on("download", lambda d: events["downloads"].append(d.suggested_filename))
    page.goto(studio.url + "/#/preview")
    page.wait_for_selector("#server-state.ok")
    page.evaluate(
        f"() => {{ localStorage.setItem('unmask.secret', '{SECRET}'); document.cookie = 'unmask_secret={SECRET}; path=/'; }}"
    )
    context.on("page", lambda p: events["popups"].append(p.url))
    before = page.evaluate(
        "() => ({url: location.href, title: document.title, cookie: document.cookie, ls: localStorage.getItem('unmask.secret')})"
    )
    mark = studio.recorder.mark()
    docs = [render(p, canary.url, studio.url) for p in PAYLOADS]

    # Inline: the studio's own preview code, every payload in its own sandboxed frame.
    tab_urls = page.evaluate(
        """async docs => {
        const { mountPreview } = await import('/js/preview.js');
        const area = document.createElement('div');
        area.id = 'payload-area';
        document.body.append(area);
        const urls = [];
        for (const doc of docs) {
            const box = document.createElement('div');
            area.append(box);
            urls.push((await mountPreview(box, doc)).tabUrl);
        }
        return urls;
    }""",
        docs,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and sum(1 for m in frame_marks(page) if m["loaded"]) < len(PAYLOADS) // 2:
        page.wait_for_timeout(200)
    page.wait_for_timeout(SETTLE_SECONDS * 1000)
    marks = frame_marks(page)
    shoot(page, "security-payloads")

    # At the top level of a tab, a few at a time: a pool of tabs, each sent to the next preview.
    popups_before_tabs = len(events["popups"])
    pool = []
    for _ in range(min(TAB_BATCH, len(tab_urls))):
        tab = context.new_page()
        tab.on("dialog", lambda d: (events["dialogs"].append(d.message), d.dismiss()))
        tab.on("download", lambda d: events["downloads"].append(d.suggested_filename))
        pool.append(tab)
    for i in range(0, len(tab_urls), TAB_BATCH):
        batch = list(zip(pool, tab_urls[i : i + TAB_BATCH]))
        for tab, url in batch:
            response = tab.goto(studio.url + url, wait_until="commit")
            assert response.status == 200, f"{url}: {response.status}"
        for tab, _ in batch:
            tab.wait_for_load_state("load")
        time.sleep(TAB_SETTLE_SECONDS)
        for tab, url in batch:
            assert tab.url == studio.url + url, tab.url  # the tab is still the preview
            assert not any(f.url.startswith(canary.url) for f in tab.frames)
    for tab in pool:
        tab.close()
    opened_by_tabs = events["popups"][popups_before_tabs:]

    after = page.evaluate(
        "() => ({url: location.href, title: document.title, cookie: document.cookie, ls: localStorage.getItem('unmask.secret')})"
    )
    body = page.evaluate("() => document.body.innerText")
    ids = {u.split("/")[2] for u in tab_urls}
    unexpected = [
        f"{r['method']} {r['path']} origin={r['headers'].get('origin')} site={r['headers'].get('sec-fetch-site')}"
        for r in studio.recorder.since(mark)
        if not expected_request(r, ids)
    ]

    assert canary.hits == [], f"the canary was reached: {canary.hits}"
    if canary.idle_connections:
        print(f"idle TCP connections to the canary (no bytes sent): {len(canary.idle_connections)}")
    assert unexpected == [], f"the studio's server got requests from previews: {unexpected}"
    assert after == before
    assert "PWNED" not in body and "PWNED" not in page.title()
    assert events["dialogs"] == [] and events["downloads"] == []
    # The test's own tabs are the only pages opened; no payload opened one.
    assert len(opened_by_tabs) == len(pool), opened_by_tabs
    # The payloads did run: documents loaded and scripts got to their end.
    loaded = [m for m in marks if m["loaded"]]
    assert len(loaded) >= len(PAYLOADS) - sum(p.navigates for p in PAYLOADS), marks
    assert sum(1 for m in marks if m["ran"]) >= 40


def test_preview_routes_send_the_sandbox_headers(studio):
    import httpx

    with httpx.Client(base_url=studio.url) as http:
        made = http.post("/api/preview", json={"html": "<p>hi</p>"}).json()
        doc = http.get(made["url"])
        tab = http.get(made["tab_url"])
        studio_index = http.get("/")
        missing = http.get("/preview/AAAAAAAAAAAAAAAAAAAAAA")
        foreign = http.post("/api/preview", json={"html": "x"}, headers={"Origin": "null"})
    csp = doc.headers["content-security-policy"]
    assert csp.startswith("sandbox allow-scripts;") and "allow-same-origin" not in csp
    for directive in (
        "default-src 'none'",
        "connect-src 'none'",
        "form-action 'none'",
        "frame-src 'none'",
        "base-uri 'none'",
    ):
        assert directive in csp
    assert doc.text == "<p>hi</p>" and doc.headers["x-content-type-options"] == "nosniff"
    tab_csp = tab.headers["content-security-policy"]
    assert f"frame-src {studio.url}/preview/{made['id']};" in tab_csp and "script-src 'none'" in tab_csp
    assert 'sandbox="allow-scripts"' in tab.text and "allow-same-origin" not in tab.text
    studio_csp = studio_index.headers["content-security-policy"]
    assert f"frame-src {studio.url}/preview/;" in studio_csp and "script-src 'self';" in studio_csp
    assert studio_index.headers["x-frame-options"] == "DENY"
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "preview_not_found"
    assert foreign.status_code == 403  # a sandboxed document (Origin: null) cannot store previews
