"""The simulator's catalogue of agent templates.

Only two ids come from MiniMax's own template table: ``392747428568649728`` "Diving" (image required, no
text) and ``393769180141805569`` "Run for Life" (image + text). Every other id, name, credit price and output
format below is INVENTED for the simulator (GUESS), chosen so that every input kind is represented:

* ``text``: the prompt is required, no image;
* ``text?``: the prompt is optional, no image;
* ``image``: an image (fileID + ossPath) is required, no prompt allowed;
* ``image+text``: an image and a prompt are both required;
* ``image+text?``: an image is required, the prompt is optional.

Output sizes are multiples of 16 and clips are short, so rendering stays fast.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DOCS_EXAMPLE_TEMPLATE",
    "TEMPLATES",
    "TEMPLATES_BY_ID",
    "Template",
    "get_template",
    "recommended_for",
]


@dataclass(frozen=True)
class Template:
    """One agent template and what it takes (``prompt``: "required", "optional" or "none").

    >>> diving = get_template("392747428568649728")
    >>> diving.name, diving.input_kind, diving.resolution, diving.asset_id != diving.template_id
    ('Diving', 'image', 1, True)
    """

    template_id: str
    name: str
    desc: str
    prompt: str  # "required" | "optional" | "none"
    image_required: bool
    prompt_placeholder: str
    credits: int
    width: int
    height: int
    duration: float  # seconds
    fps: int
    tags: tuple[str, ...] = ()
    create_time: int = 1_750_000_000_000  # ms; invented

    @property
    def allows_prompt(self) -> bool:
        return self.prompt != "none"

    @property
    def requires_prompt(self) -> bool:
        return self.prompt == "required"

    @property
    def input_kind(self) -> str:
        text = {"required": "text", "optional": "text?", "none": ""}[self.prompt]
        if self.image_required:
            return "image" + (f"+{text}" if text else "")
        return text or "none"

    @property
    def aspect_ratio(self) -> str:
        from math import gcd

        g = gcd(self.width, self.height)
        return f"{self.width // g}:{self.height // g}"

    @property
    def resolution(self) -> int:
        # doc: a number (the example lists 1 for a 1280x720 template). What the number means is
        # undocumented: 1 up to 720p and 2 above is a GUESS.
        return 1 if min(self.width, self.height) <= 720 else 2

    @property
    def asset_id(self) -> str:
        # doc: videoAsset.id differs from the template id; this derived 18-digit id is a GUESS.
        digest = hashlib.sha256(f"asset:{self.template_id}".encode()).digest()
        return str(300_000_000_000_000_000 + int.from_bytes(digest[:8], "big") % 10**17)


def _t(*args: Any, **kwargs: Any) -> Template:
    return Template(*args, **kwargs)


TEMPLATES: tuple[Template, ...] = (
    # From MiniMax's template table (2nd-hand source): image required, no text.
    _t(
        "392747428568649728",
        "Diving",
        "Your photo dives into a crystal-clear sea.",
        "none",
        True,
        "",
        30,
        720,
        1280,
        5.0,
        24,
        ("sport", "water"),
    ),
    # From MiniMax's template table (2nd-hand source): image + text.
    _t(
        "393769180141805569",
        "Run for Life",
        "The person in your photo runs through the scene you describe.",
        "required",
        True,
        "Describe where the run takes place",
        40,
        1280,
        720,
        6.0,
        25,
        ("action",),
    ),
    # Everything below is invented (GUESS).
    _t(
        "394100000000000001",
        "Futuristic Sports Car",
        "A car of your description races through a neon city.",
        "required",
        False,
        "Describe the car",
        30,
        1280,
        720,
        5.0,
        24,
        ("car", "sci-fi"),
    ),
    _t(
        "394100000000000002",
        "Vlog Interview",
        "A street interview on the topic you give.",
        "required",
        False,
        "What is the interview about?",
        40,
        720,
        1280,
        6.0,
        30,
        ("vlog",),
    ),
    _t(
        "394100000000000003",
        "Transformers",
        "A vehicle turns into a giant robot; the prompt may name the vehicle.",
        "optional",
        False,
        "Optional: which vehicle transforms",
        50,
        1280,
        720,
        5.0,
        24,
        ("robot", "sci-fi"),
    ),
    _t(
        "394100000000000004",
        "Ocean Sunrise",
        "A calm sunrise over the ocean; an optional prompt sets the mood.",
        "optional",
        False,
        "Optional: mood or weather",
        20,
        960,
        960,
        4.0,
        24,
        ("nature",),
    ),
    _t(
        "394100000000000005",
        "Product Spin",
        "A 360 degree turntable shot of the product described.",
        "required",
        False,
        "Describe the product",
        30,
        960,
        960,
        4.0,
        30,
        ("commerce",),
    ),
    _t(
        "394100000000000006",
        "Dance Challenge",
        "The person in your photo performs a viral dance.",
        "none",
        True,
        "",
        40,
        720,
        1280,
        6.0,
        30,
        ("dance", "trend"),
    ),
    _t(
        "394100000000000007",
        "Old Photo Revival",
        "Brings an old photo to life.",
        "none",
        True,
        "",
        20,
        960,
        960,
        4.0,
        24,
        ("memories",),
    ),
    _t(
        "394100000000000008",
        "Pet Superhero",
        "Your pet becomes a superhero; an optional prompt names the power.",
        "optional",
        True,
        "Optional: the super power",
        40,
        720,
        1280,
        5.0,
        24,
        ("pets", "fun"),
    ),
    _t(
        "394100000000000009",
        "Anime Me",
        "Your photo redrawn as an anime opening; the prompt sets the story.",
        "required",
        True,
        "Describe the story",
        50,
        1280,
        720,
        5.0,
        24,
        ("anime",),
    ),
    _t(
        "394100000000000010",
        "Time-lapse City",
        "A day-to-night time-lapse of a city skyline.",
        "optional",
        False,
        "Optional: which city",
        20,
        1280,
        720,
        4.0,
        30,
        ("city",),
    ),
    _t(
        "394100000000000011",
        "Fireworks Greeting",
        "Fireworks spelling out the greeting you type.",
        "required",
        False,
        "Type the greeting",
        30,
        1024,
        576,
        4.0,
        24,
        ("holiday",),
    ),
    _t(
        "394100000000000012",
        "Astronaut Portrait",
        "You, floating in a space station; the prompt may describe the view.",
        "optional",
        True,
        "Optional: what is outside the window",
        50,
        576,
        1024,
        5.0,
        25,
        ("space",),
    ),
)

#: The placeholder id used by the examples of the useapi.net documentation page ("1122334455667788" with
#: prompt "text prompt"), present so that those examples run unchanged against the simulator (invented).
DOCS_EXAMPLE_TEMPLATE = _t(
    "1122334455667788",
    "Docs Example",
    "The template id used by the examples of the useapi.net documentation.",
    "optional",
    False,
    "Optional: any text prompt",
    10,
    960,
    960,
    3.0,
    24,
    ("example",),
)

TEMPLATES = (*TEMPLATES, DOCS_EXAMPLE_TEMPLATE)

TEMPLATES_BY_ID: dict[str, Template] = {t.template_id: t for t in TEMPLATES}


def get_template(template_id: str) -> Template | None:
    """The template with this id, or None.

    >>> get_template("393769180141805569").name
    'Run for Life'
    >>> get_template("0") is None
    True
    """
    return TEMPLATES_BY_ID.get(str(template_id))


def recommended_for(template_id: str, salt: str) -> list[Template]:
    """2-3 other templates, chosen deterministically from ``salt`` (e.g. the video id).

    >>> picks = recommended_for("392747428568649728", "42")
    >>> 2 <= len(picks) <= 3 and all(t.template_id != "392747428568649728" for t in picks)
    True
    """
    others = [t for t in TEMPLATES if t.template_id != template_id]
    digest = hashlib.sha256(f"{template_id}:{salt}".encode()).digest()
    count = 2 + digest[0] % 2
    start = digest[1] % len(others)
    return [others[(start + i * 5) % len(others)] for i in range(count)]
