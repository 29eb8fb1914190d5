"""The fake camera's size for browser tests: several pages on a 2-core box must stay cheap.

Module name is unique across tests/ (there are no ``__init__.py`` files); test modules
in this folder import it directly.
"""

from __future__ import annotations

import json


def init_script_camera(
    width: int, height: int, fps: int | None = None, *, exact: bool = False
) -> str:
    """An init script that makes every ``getUserMedia`` camera request ask for this size.

    ``exact``: insist (a simulcast test needs a known top layer); else ``ideal``.
    """
    key = "exact" if exact else "ideal"
    size: dict[str, object] = {"width": {key: width}, "height": {key: height}}
    if fps is not None:
        size["frameRate"] = {"ideal": fps}
    return """
(() => {
  const md = navigator.mediaDevices;
  if (!md || md.__parleyCamera) return;
  const gum = md.getUserMedia.bind(md);
  md.getUserMedia = (c) => {
    if (c && c.video) {
      const v = typeof c.video === "object" ? c.video : {};
      c = { ...c, video: { ...v, ...SIZE } };
    }
    return gum(c);
  };
  md.__parleyCamera = true;
})();
""".replace("SIZE", json.dumps(size))
