"""A local simulator of the useapi.net MiniMax API (``videos/agent-create`` and its neighbours, a CDN, faults).

It is the embedded default every demo, test and benchmark of this project runs on; docs/SIMULATOR.md describes
its endpoints, faults, counters and guesses. ``python -m minimax_dagster.simulator --help`` serves it from a shell.

>>> import json, urllib.request
>>> with MiniMaxSimulator(accounts={"100001": 2, "100002": 1}, accounts_without_video=["100002"]) as sim:
...     request = urllib.request.Request(f"{sim.base_url}/accounts", headers={"Authorization": f"Bearer {sim.token}"})
...     accounts = json.load(urllib.request.urlopen(request, timeout=10))
>>> {account: body["supportVideo"] for account, body in accounts.items()}
{'100001': True, '100002': False}
"""

from .config import SimulatorConfig
from .faults import Fault
from .server import MiniMaxSimulator

__all__ = ["Fault", "MiniMaxSimulator", "SimulatorConfig"]
