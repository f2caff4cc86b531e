"""Text in pictures: any file name, in any script, drawn legibly (OpenCV's fonts know only ASCII).

Text is drawn with Pillow in DejaVu Sans, the font matplotlib ships, so every figure and plot uses one
font. A character that font has no glyph for is shown as its code point (``\\u65e5``) rather than as a
box or a question mark, so a name stays identifiable.
"""

from __future__ import annotations

import os
from functools import lru_cache

import matplotlib
import numpy as np
from matplotlib import ft2font


@lru_cache(maxsize=1)
def font_path() -> str:
    return os.path.join(matplotlib.get_data_path(), "fonts", "ttf", "DejaVuSans.ttf")


@lru_cache(maxsize=1)
def _glyphs() -> ft2font.FT2Font:
    return ft2font.FT2Font(font_path())


def displayable(text: str) -> str:
    """``text`` with every character the font cannot draw replaced by its ``\\uXXXX`` escape."""
    font = _glyphs()
    return "".join(c if c.isspace() or font.get_char_index(ord(c)) else f"\\u{ord(c):04x}" for c in text)


@lru_cache(maxsize=8)
def _font(size: int):
    from PIL import ImageFont

    return ImageFont.truetype(font_path(), size)


def text_bar(text: str, width: int, height: int = 32, size: int = 16, margin: int = 6) -> np.ndarray:
    """A white ``height × width`` RGB bar with ``text`` in black, shrunk (down to 9 pt) to fit the width."""
    from PIL import Image, ImageDraw

    shown = displayable(text)
    while True:
        font = _font(size)
        left, top, right, bottom = font.getbbox(shown)
        if right - left <= width - 2 * margin or size <= 9:
            break
        size -= 1
    image = Image.new("RGB", (width, height), "white")
    ImageDraw.Draw(image).text((margin, (height - (bottom - top)) // 2 - top), shown, fill="black", font=font)
    return np.asarray(image)


def draw_label(image: np.ndarray, text: str, xy: tuple[int, int], colour: tuple[int, int, int],
               size: int = 14) -> np.ndarray:
    """A copy of RGB ``image`` with ``text`` in ``colour`` on a dark box whose top-left corner is ``xy``."""
    from PIL import Image, ImageDraw

    shown = displayable(text)
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    left, top, right, bottom = draw.textbbox(xy, shown, font=_font(size))
    draw.rectangle((left - 2, top - 2, right + 2, bottom + 2), fill=(0, 0, 0))
    draw.text(xy, shown, fill=tuple(colour), font=_font(size))
    return np.asarray(canvas)
