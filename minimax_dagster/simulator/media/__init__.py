"""Pure-Python media for the MiniMax simulator: a playable H.264 MP4 title card and a PNG poster.

Nothing here needs numpy, ffmpeg or any other non-stdlib package. One module per layer:
:mod:`.card` draws the title card, :mod:`.png` writes it as a poster, :mod:`.h264` encodes it as an
H.264 bitstream and :mod:`.mp4` wraps that in an MP4 file (and reads MP4 headers back).

>>> video = render_video(VideoSpec(320, 240, 2.0, 24, "A red fox in the snow"))
>>> info = read_mp4_info(video.read_all())
>>> (info["width"], info["height"], info["duration_s"], info["frames"])
(320, 240, 2.0, 48)
>>> render_poster_png(32, 32, "poster")[:4]
b'\\x89PNG'
"""

from .card import render_title_card_rgb, title_card_background
from .mp4 import MAX_READ_ALL_BYTES, RenderedVideo, VideoSpec, render_video
from .mp4_info import read_mp4_info
from .png import render_poster_png

__all__ = [
    "MAX_READ_ALL_BYTES",
    "RenderedVideo",
    "VideoSpec",
    "read_mp4_info",
    "render_poster_png",
    "render_title_card_rgb",
    "render_video",
    "title_card_background",
]
