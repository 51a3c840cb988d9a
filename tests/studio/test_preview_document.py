"""`prepare_preview`: every inline script and handler of a preview is guard-prefixed and allowed by
hash; nothing else may run (no 'unsafe-inline'), so what the parser misses fails closed."""

from __future__ import annotations

import base64
import hashlib

import pytest

from unmask.server.studio import PREVIEW_GUARD, PREVIEW_MAX_SCRIPTS, prepare_preview


def sha(code: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(code.encode()).digest()).decode() + "'"


def test_scripts_and_handlers_are_guarded_and_allowed_by_hash():
    doc, csp = prepare_preview(
        '<!doctype html><button onclick="go()">x</button><script>let a = 1</script>'
        '<script type="module">b()</script><script type="application/json">{"k": 1}</script>'
    )
    assert doc.count(PREVIEW_GUARD) == 2 and 'onclick="(function(g)' in doc
    assert (
        f"<script>{PREVIEW_GUARD}let a = 1</script>" in doc
        and f'<script type="module">{PREVIEW_GUARD}b()</script>' in doc
    )
    assert '<script type="application/json">{"k": 1}</script>' in doc  # data, not code: untouched
    assert sha(PREVIEW_GUARD + "let a = 1") in csp and sha(PREVIEW_GUARD + "go()") in csp and "'unsafe-hashes'" in csp
    assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    assert csp.startswith("sandbox allow-scripts;") and "connect-src 'none'" in csp


def test_a_document_without_scripts_may_run_none():
    doc, csp = prepare_preview("<svg><circle r='4'/></svg>")
    assert doc == "<svg><circle r='4'/></svg>" and "script-src 'none'" in csp


def test_hashes_are_of_the_text_the_browser_sees():
    doc, csp = prepare_preview("<script>a()\r\nb()\r</script>")
    assert "\r" not in doc and sha(PREVIEW_GUARD + "a()\nb()\n") in csp


def test_what_the_parser_does_not_see_as_a_script_is_not_allowed():
    # Browsers end this comment at `<!-->` and run the script; Python's parser reads one comment.
    # Either way, unguarded code has no hash in the policy, so the browser refuses it.
    doc, csp = prepare_preview("<!--><script>alert(1)</script>-->")
    assert sha("alert(1)") not in csp
    doc, csp = prepare_preview("<script>x()</script ><script src=//evil></script>")
    assert sha(PREVIEW_GUARD + "x()") in csp and "evil" not in csp


def test_an_unclosed_script_is_guarded_to_the_end():
    doc, csp = prepare_preview("<p>hi<script>open()")
    assert doc.endswith(PREVIEW_GUARD + "open()") and sha(PREVIEW_GUARD + "open()") in csp


def test_the_number_of_scripts_is_bounded():
    with pytest.raises(ValueError, match="at most"):
        prepare_preview("<i onclick=x></i>" * (PREVIEW_MAX_SCRIPTS + 1))
