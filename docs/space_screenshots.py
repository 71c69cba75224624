"""Screenshots of the Space's three tabs for the README (docs/images/space_*.png).

    python docs/space_screenshots.py [--dataset D --model M] [--out docs/images]

Serves the Space in this process (the embedded world by default: built on first use, then cached),
then drives it with Playwright in the system Chromium (headless, no downloads): the Overview as it
opens, the Explorer on the first kept row, and Score a sample on a picture of the embedded world.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv=None) -> None:
    from playwright.sync_api import expect, sync_playwright

    from rap_hf.demo import Loader, build_demo, first_image

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset")
    parser.add_argument("--model")
    parser.add_argument("--out", default="docs/images")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    loader = Loader(args.dataset, args.model)
    data = loader.wait()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = build_demo(loader)
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port)
    kept_row = next(i for i, row in enumerate(data.scored) if row["rap_planted"] == "visual" and not row["rap_error"]
                    and row["rap_acc_image"] > row["rap_acc_text"]) if "rap_planted" in data.scored.column_names else 0
    picture = first_image(data.scored[kept_row])
    upload = Path(tempfile.mkdtemp()) / "sample.png"
    picture.save(upload)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium, headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                      "--disable-component-update", "--disable-sync", "--no-first-run"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/")
            expect(page.locator("#kept-count")).to_contain_text("Kept", timeout=120_000)
            page.wait_for_timeout(1500)
            page.screenshot(path=str(out / "space_overview.png"), full_page=True)

            page.get_by_role("tab", name="Explorer").click()
            row = data.scored[kept_row]
            expect(page.locator("#row-about")).to_contain_text("Question", timeout=60_000)  # the first row
            pick = page.locator("#row-pick input")
            pick.fill(row["rap_id"])
            pick.press("Enter")
            expect(page.locator("#row-about")).to_contain_text(row["rap_id"], timeout=60_000)
            # Shaded, or why not (a window too short for ACE's guard).
            expect(page.locator("#attention-caption")).to_contain_text(re.compile("Shade|ACE scores nothing"),
                                                                        timeout=60_000)
            page.wait_for_timeout(1000)
            page.screenshot(path=str(out / "space_explorer.png"), full_page=True)

            page.get_by_role("tab", name="Score a sample").click()
            page.locator("#upload input[type=file]").set_input_files(str(upload))
            page.locator("#question textarea").fill(row["question"])
            page.locator("#answer textarea").fill(row["answer"])
            page.wait_for_timeout(1500)
            page.get_by_role("button", name="Score with the loaded model").click()
            expect(page.locator("#score-summary")).to_contain_text("Decision:", timeout=120_000)
            page.wait_for_timeout(1500)
            page.screenshot(path=str(out / "space_score.png"), full_page=True)
            browser.close()
    finally:
        demo.close()
    print(f"Wrote {', '.join(str(out / f'space_{t}.png') for t in ('overview', 'explorer', 'score'))}")


if __name__ == "__main__":
    main()
