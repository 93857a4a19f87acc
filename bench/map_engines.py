"""Leaflet (/carte) or MapLibre GL JS (our style) for the web map: frames per second while panning.

    .venv/bin/python bench/map_engines.py URL USERNAME TOKEN [SECONDS]

Opens, in Debian's headless Chromium (software WebGL: SwiftShader, as on a workstation without
a graphics card), `/carte` (Leaflet, VectorGrid, our tiles) and a MapLibre page on our
`/styles/carte` (tests/clients/maplibre.html), at the same place and zooms, pans each map by
20 px every animation frame for SECONDS, and prints the frames drawn per second. Both maps
load the same tiles from the same server; only the drawing engine differs. A measurement, not a
test: it asserts nothing.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

PAGE = Path(__file__).resolve().parents[1] / "tests" / "clients" / "maplibre.html"
PLACES = {"points (niveau 10, Gironde)": (-0.58, 44.84, 10), "regroupements (niveau 6)": (2.5, 46.6, 6)}
PAN = """async ([seconds, get]) => {
  const map = eval(get);
  let frames = 0;
  const end = performance.now() + seconds * 1000;
  await new Promise((done) => {
    const step = () => {
      frames += 1;
      map.panBy([20, 0], get.includes("carte.map") ? { animate: false } : { duration: 0 });
      if (performance.now() < end) requestAnimationFrame(step); else done();
    };
    requestAnimationFrame(step);
  });
  return frames / seconds;
}"""


def main() -> None:
    url, username, token = sys.argv[1:4]
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 5.0
    basic = base64.b64encode(f"{username}:{token}".encode()).decode()
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"],
        )
        context = browser.new_context(
            base_url=url,
            extra_http_headers={"Authorization": f"Basic {basic}"},
            viewport={"width": 1400, "height": 900},
        )
        context.route(
            "**/essai-maplibre**",
            lambda route: route.fulfill(body=PAGE.read_text(encoding="utf-8"), content_type="text/html"),
        )
        for label, (lon, lat, zoom) in PLACES.items():
            page = context.new_page()
            page.goto("/carte")
            page.wait_for_function("() => window.carte && window.carte.map", timeout=60_000)
            page.evaluate(f"() => window.carte.map.setView([{lat}, {lon}], {zoom}, {{animate: false}})")
            page.wait_for_timeout(4000)
            leaflet = page.evaluate(PAN, [seconds, "window.carte.map"])
            page.close()
            page = context.new_page()
            page.goto(f"/essai-maplibre?style={url}/styles/carte&lon={lon}&lat={lat}&zoom={zoom}")
            page.wait_for_function("() => document.body.dataset.done === '1'", timeout=90_000)
            maplibre = page.evaluate(PAN, [seconds, "window.maplibreMap"])
            page.close()
            print(f"{label}: Leaflet {leaflet:.1f} images/s, MapLibre {maplibre:.1f} images/s")
        browser.close()


if __name__ == "__main__":
    main()
