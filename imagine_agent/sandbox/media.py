"""Real, playable media for finished sandbox tasks: an H.264 MP4 and its first frame as PNG.

The frames show the prompt on a gradient with a ball rolling across, so a human watching a demo can
tell videos apart. PyAV and Pillow are imported on first use: the CLI's ``--help`` should not pay for them.
"""

from __future__ import annotations

import functools
import hashlib
import io
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL.Image import Image

__all__ = ["FPS", "HEIGHT", "WIDTH", "frame_count", "render_mp4", "render_png"]

WIDTH, HEIGHT, FPS = 320, 180, 6  # small and slow on purpose: it lasts the paid duration, cheaply


def frame_count(seconds: float) -> int:
    return max(1, round(seconds * FPS))


def _colors(prompt: str) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    digest = hashlib.sha256(prompt.encode("utf-8", "replace")).digest()
    dark = (digest[0] % 80, digest[1] % 80, 40 + digest[2] % 80)
    light = (120 + digest[3] % 120, 80 + digest[4] % 120, 120 + digest[5] % 120)
    return dark, light


def _background(prompt: str) -> Image:
    from PIL import Image as PILImage
    from PIL import ImageDraw, ImageFont, ImageOps

    dark, light = _colors(prompt)
    gradient = PILImage.linear_gradient("L").rotate(90).resize((WIDTH, HEIGHT))
    image = ImageOps.colorize(gradient, black=dark, white=light)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=15)
    lines = textwrap.wrap(" ".join(prompt.split()), width=34)[:5] or [""]
    y = 16
    for line in lines:
        draw.text((13, y + 1), line, fill=(0, 0, 0), font=font)
        draw.text((12, y), line, fill=(255, 255, 255), font=font)
        y += 20
    draw.text((12, HEIGHT - 22), "imagine sandbox", fill=(230, 230, 230), font=ImageFont.load_default(size=11))
    return image


def _frames(prompt: str, seconds: float) -> Iterator[Image]:
    from PIL import ImageDraw

    background = _background(prompt)
    count = frame_count(seconds)
    radius = 14
    for i in range(count):
        frame = background.copy()
        draw = ImageDraw.Draw(frame)
        t = i / max(1, count - 1)
        x = int(radius + t * (WIDTH - 2 * radius))
        y = HEIGHT - 50
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(255, 210, 60), outline=(0, 0, 0))
        draw.rectangle((0, HEIGHT - 4, int(t * WIDTH), HEIGHT), fill=(255, 255, 255))
        yield frame


# Rendering is a pure function of (prompt, seconds): a video downloaded again, or the same prompt bought again
# (a demo, or a suite running one scenario against many sandboxes), reuses the bytes instead of encoding again.
# The one cache of rendered files in the process (each sandbox state kept its own, by task, before).
RENDER_CACHE_ENTRIES = 64


@functools.lru_cache(maxsize=RENDER_CACHE_ENTRIES)
def render_png(prompt: str) -> bytes:
    """The first frame, as the preview image."""
    frame = next(_frames(prompt, 1.0))
    out = io.BytesIO()
    frame.save(out, format="PNG")
    return out.getvalue()


@functools.lru_cache(maxsize=RENDER_CACHE_ENTRIES)
def render_mp4(prompt: str, seconds: float) -> bytes:
    """A 320x180 H.264 MP4 of ``seconds`` at 6 fps (about 0.1 s of CPU per 4 s of video)."""
    import av

    # faststart (index before data, so players can start while downloading) needs a real file.
    with tempfile.TemporaryDirectory(prefix="imagine-sandbox-") as tmp:
        path = Path(tmp) / "video.mp4"
        _encode(av, str(path), prompt, seconds)
        return path.read_bytes()


def _encode(av: Any, path: str, prompt: str, seconds: float) -> None:
    with av.open(path, mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=FPS, options={"preset": "veryfast", "crf": "30"})
        stream.width = WIDTH
        stream.height = HEIGHT
        stream.pix_fmt = "yuv420p"
        for image in _frames(prompt, seconds):
            frame = av.VideoFrame.from_image(image)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
