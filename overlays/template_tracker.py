"""A small single-object tracker by template matching (normalised cross-correlation).

It needs nothing beyond OpenCV's core (every wheel has it), is deterministic, and says when it
has lost its object (the best match scores low), which OpenCV's MIL does not. It searches a window
around the last box at three scales and updates its template slowly while matches are good.
The interface is OpenCV's: ``init(image, (x, y, w, h))`` and ``update(image) -> (ok, box)``.
"""

from __future__ import annotations

import cv2
import numpy as np

#: The template is matched at most this large (longer side, pixels); larger objects are matched
#: on a downscaled image, which keeps each step to a few milliseconds.
TEMPLATE_SIDE = 48
_SCALES = (0.95, 1.0, 1.05)
_SEARCH = 1.0  # the search window reaches this many box sizes beyond the box on each side
_MIN_SCORE = 0.35  # below: the object is not in the search window
_LEARN_SCORE = 0.7  # above: the template adapts a little to what it sees now
_LEARN_RATE = 0.1


class TemplateTracker:
    """Follows one box through frames; ``update`` gives ``(False, box)`` once it is lost."""

    def init(self, image: np.ndarray, box: tuple[int, int, int, int]) -> None:
        x, y, w, h = (float(v) for v in box)
        self.zoom = min(1.0, TEMPLATE_SIDE / max(w, h))
        gray = self._gray(image)
        self.box = (x * self.zoom, y * self.zoom, w * self.zoom, h * self.zoom)
        self.template = _patch(gray, self.box)
        self.score = 1.0

    def update(self, image: np.ndarray) -> tuple[bool, tuple[float, float, float, float]]:
        gray = self._gray(image)
        x, y, w, h = self.box
        best = (-1.0, x, y, w, h)
        for scale in _SCALES:
            tw, th = max(4, round(w * scale)), max(4, round(h * scale))
            template = cv2.resize(self.template, (tw, th), interpolation=cv2.INTER_AREA)
            cx, cy = x + w / 2, y + h / 2
            mx, my = _SEARCH * tw + 2, _SEARCH * th + 2
            x0 = max(0, int(cx - tw / 2 - mx))
            y0 = max(0, int(cy - th / 2 - my))
            x1 = min(gray.shape[1], int(cx + tw / 2 + mx) + 1)
            y1 = min(gray.shape[0], int(cy + th / 2 + my) + 1)
            window = gray[y0:y1, x0:x1]
            if window.shape[0] < th or window.shape[1] < tw:
                continue
            scores = cv2.matchTemplate(window, template, cv2.TM_CCOEFF_NORMED)
            _, score, _, (bx, by) = cv2.minMaxLoc(scores)
            # A small preference for the unchanged size keeps the box from breathing on noise.
            score = float(score) - (0.0 if scale == 1.0 else 0.01)
            if score > best[0]:
                best = (score, float(x0 + bx), float(y0 + by), float(tw), float(th))
        score, nx, ny, nw, nh = best
        self.score = max(score, 0.0)
        z = self.zoom
        if score < _MIN_SCORE:
            return False, (x / z, y / z, w / z, h / z)
        self.box = (nx, ny, nw, nh)
        if score > _LEARN_SCORE:
            seen = cv2.resize(
                _patch(gray, self.box),
                self.template.shape[::-1],
                interpolation=cv2.INTER_AREA,
            )
            self.template = cv2.addWeighted(self.template, 1 - _LEARN_RATE, seen, _LEARN_RATE, 0)
        return True, (nx / z, ny / z, nw / z, nh / z)

    def verify(self, image: np.ndarray, box: tuple[float, float, float, float]) -> float:
        """How well what ``box`` (x, y, w, h) shows matches the object (best normalised
        correlation within a few pixels of it, -1..1); another tracker's box is checked this
        way. A good match also updates the template and the box."""
        gray = self._gray(image)
        z = self.zoom
        x, y, w, h = box[0] * z, box[1] * z, box[2] * z, box[3] * z
        th, tw = self.template.shape
        scale = (w / tw + h / th) / 2
        tw, th = max(4, round(tw * scale)), max(4, round(th * scale))
        template = cv2.resize(self.template, (tw, th), interpolation=cv2.INTER_AREA)
        mx, my = 0.15 * tw + 2, 0.15 * th + 2
        x0, y0 = max(0, int(x - mx)), max(0, int(y - my))
        x1 = min(gray.shape[1], int(x + w + mx) + 1)
        y1 = min(gray.shape[0], int(y + h + my) + 1)
        window = gray[y0:y1, x0:x1]
        if window.shape[0] < th or window.shape[1] < tw:
            return -1.0
        _, score, _, (bx, by) = cv2.minMaxLoc(
            cv2.matchTemplate(window, template, cv2.TM_CCOEFF_NORMED)
        )
        if score > _LEARN_SCORE:
            self.box = (float(x0 + bx), float(y0 + by), float(tw), float(th))
            seen = cv2.resize(
                _patch(gray, self.box), self.template.shape[::-1], interpolation=cv2.INTER_AREA
            )
            self.template = cv2.addWeighted(self.template, 1 - _LEARN_RATE, seen, _LEARN_RATE, 0)
        return float(score)

    def _gray(self, image: np.ndarray) -> np.ndarray:
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        if self.zoom < 1:
            size = (
                max(1, round(gray.shape[1] * self.zoom)),
                max(1, round(gray.shape[0] * self.zoom)),
            )
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        return gray.astype(np.float32)


def _patch(gray: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    x, y, w, h = box
    x0, y0 = max(0, round(x)), max(0, round(y))
    x1 = min(gray.shape[1], max(x0 + 1, round(x + w)))
    y1 = min(gray.shape[0], max(y0 + 1, round(y + h)))
    return np.ascontiguousarray(gray[y0:y1, x0:x1])
