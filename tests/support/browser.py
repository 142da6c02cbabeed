"""Launching Debian's Chromium for browser tests (never a downloaded browser)."""

CHROMIUM = "/usr/bin/chromium"
# Root needs --no-sandbox; the network flags keep Chromium from calling out of a closed network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def launch_chromium(playwright):
    """A headless Chromium browser from a running ``sync_playwright()``."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
