"""The demo's embedded services: the launcher of :mod:`minimax_dagster.embedded`, seeded with three prompt datasets.

>>> with demo_services(generation_seconds=0.1) as services:
...     listed = services.s3_client().list_objects_v2(Bucket=services.bucket, Prefix="minimax/datasets/")
>>> [o["Key"].rsplit("/", 1)[1] for o in listed["Contents"]]
['autumn-campaign.json', 'city-timelapse.json', 'product-launch.json']
"""

from typing import Any

from minimax_dagster.embedded import EmbeddedServices

#: Prompt datasets the demo seeds into S3 (one dynamic partition each).
DEMO_DATASETS: dict[str, list[Any]] = {
    "autumn-campaign": [
        {"id": "leaves", "prompt": "Maple leaves falling over a quiet lake"},
        {"id": "harvest", "prompt": "A farmer's market at dawn, steam rising from cider"},
        {
            "id": "scarf",
            "prompt": "A knitted red scarf blowing in the wind",
            "template_id": "394100000000000003",
        },
    ],
    "product-launch": [
        {
            "id": "watch",
            "prompt": "A titanium watch turning slowly on a pedestal",
            "template_id": "394100000000000005",
        },
        {"id": "headphones", "prompt": "Wireless headphones floating in zero gravity"},
    ],
    "city-timelapse": [
        {"id": "tokyo", "prompt": "Tokyo crossing from dusk to night", "template_id": "394100000000000010"},
        {
            "id": "lisbon",
            "prompt": "Lisbon trams climbing a hill at sunset",
            "template_id": "394100000000000010",
        },
    ],
}


def demo_services(**options: Any) -> EmbeddedServices:
    """The simulator and S3 server with the bucket ``minimax-demo`` and :data:`DEMO_DATASETS` seeded (one
    dynamic partition each), publicly readable so the UI's video links open; ``options`` go to :class:`~minimax_dagster.embedded.EmbeddedServices`."""
    return EmbeddedServices(
        **{"bucket": "minimax-demo", "datasets": DEMO_DATASETS, "public_read": True, **options}
    )
