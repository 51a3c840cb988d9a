"""Rewrite versions survive a reload (issue 17): each kept rewrite names the run it replaced, so after
a reload (or opened again from the run history) Undo still brings back the versions before it, in
order. Real Chromium, a real server, the real story model; at 1400x900 and 390x844.
"""

from __future__ import annotations

import pytest

from .conftest import DESKTOP, PHONE, shoot
from .test_finish import run_now, run_value
from .test_history import LILY, history_items, rewrite_middle, wait_history
from .test_studio import answer, dial


def reload(page) -> None:
    page.reload()
    page.wait_for_selector("#server-state.ok")
    page.wait_for_selector("#view-diffuse .canvas-body:not([hidden]) .tok[data-i]")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1400x900", "390x844"])
def test_rewrite_versions_and_their_undo_survive_a_reload(page, viewport):
    page.set_viewport_size(viewport)
    page.fill("#view-diffuse .prompt-input", LILY)
    dial(page, "diffuse", length=48, steps=24)
    run_now(page)
    wait_history(page, 1)
    versions = [(run_value(page, "run.id"), answer(page))]
    for kept in (2, 3):
        rewrite_middle(page)
        wait_history(page, kept)  # kept, with the key of the version it replaced
        versions.append((run_value(page, "run.id"), answer(page)))
    assert len({v[0] for v in versions}) == 3

    undo = page.locator("#view-diffuse .undo-btn")
    reload(page)
    wait_history(page, 3)
    assert (run_value(page, "run.id"), answer(page)) == versions[2], "the last rewrite is shown again"
    page.wait_for_selector("#view-diffuse .undo-btn:not([hidden])")
    assert undo.inner_text() == "Undo rewrite (2)"
    shoot(page, f"rewrite-versions-after-reload-{viewport['width']}", full_page=True)
    undo.click()
    assert (run_value(page, "run.id"), answer(page)) == versions[1]
    assert undo.inner_text() == "Undo rewrite"
    page.click("#view-diffuse .canvas-body")
    page.keyboard.press("Control+z")
    assert (run_value(page, "run.id"), answer(page)) == versions[0]
    assert not undo.is_visible(), "the first version has nothing before it"

    # Opened from the history after another reload, the first rewrite undoes to the original, and
    # the original (no rewrite) offers no undo.
    reload(page)
    wait_history(page, 3)
    items = history_items(page)  # the newest first: rewrite 2, rewrite 1, the original
    items.nth(1).locator(".history-open").click()
    assert run_value(page, "run.id") == versions[1][0]
    page.wait_for_selector("#view-diffuse .undo-btn:not([hidden])")
    assert undo.inner_text() == "Undo rewrite"
    undo.click()
    assert (run_value(page, "run.id"), answer(page)) == versions[0]
    items.nth(2).locator(".history-open").click()
    page.wait_for_timeout(300)  # the history is read asynchronously: give a wrong undo time to appear
    assert run_value(page, "run.id") == versions[0][0] and not undo.is_visible()
